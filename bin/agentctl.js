#!/usr/bin/env node
// `--version` answers without loading the CLI: scripts call it often and it must start fast.
const args = process.argv.slice(2);
if (args.length === 1 && (args[0] === "--version" || args[0] === "-V")) {
  const { readFileSync } = await import("node:fs");
  const pkg = JSON.parse(readFileSync(new URL("../package.json", import.meta.url), "utf8"));
  process.stdout.write(`${pkg.version}\n`);
} else {
  const { main } = await import("../dist/cli-bundle/main.js");
  main(args).then(
    (code) => {
      process.exitCode = code;
    },
    (err) => {
      process.stderr.write(`agentctl: internal error: ${err?.stack ?? err}\n`);
      process.exitCode = 1;
    },
  );
}
