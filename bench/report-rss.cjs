// Preloaded into a benchmarked CLI run: reports the process's peak RSS on exit (stderr).
process.on("exit", () => {
  require("node:fs").writeSync(2, `\nPEAK_RSS_KB ${process.resourceUsage().maxRSS}\n`);
});
