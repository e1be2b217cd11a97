// `node bench/ab.js [--runs N] LABEL=PATH/bin/agentctl.js ...`: the end-to-end pipeline of the CLI
// benchmark (20,000 calls) run by several builds of agentctl and by the raw undici loop in a fresh
// process, interleaved (the order rotates every round), each run on fresh servers. Single runs on
// a shared machine swing by 15 %: compare medians of several rounds, never one run. To compare
// a change, build the other version in its own checkout (`git worktree add ../before HEAD~1`,
// `npm ci` there) and pass both bins.
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { rawUndiciInFreshProcess, runCli, servicesYaml, writeCallsPipeline } from "./cli.js";
import { onFreshServers, rawUndici } from "./core.js";

const args = process.argv.slice(2);
let rounds = 6;
if (args[0] === "--runs") {
  rounds = Number(args[1]);
  args.splice(0, 2);
}
const builds = args.map((a) => a.split("=")).map(([label, bin]) => [label, bin && resolve(bin)]);
if (builds.length === 0 || builds.some((b) => b.length !== 2) || !(rounds >= 1)) {
  console.error("usage: node bench/ab.js [--runs N] LABEL=PATH/bin/agentctl.js ...");
  process.exit(2);
}

const dir = mkdtempSync(join(tmpdir(), "agentctl-ab-"));
writeCallsPipeline(join(dir, "calls.yaml"));
// The warm raw loop is the benchmark's target (agentctl run >= 0.8x of it); the cold one, in a
// fresh process like every CLI run, shows how much of the gap is JIT warm-up.
const contenders = [["warm raw undici", "warm"], ["cold raw undici", undefined], ...builds];
const runs = new Map(contenders.map(([label]) => [label, []]));
try {
  for (let r = 0; r < rounds; r++) {
    for (let i = 0; i < contenders.length; i++) {
      const [label, bin] = contenders[(i + r) % contenders.length];
      const ms = await onFreshServers(async (urls) => {
        if (bin === "warm") return rawUndici(urls, 20_000, 64);
        if (bin === undefined) return rawUndiciInFreshProcess(urls, 20_000, 64);
        writeFileSync(join(dir, "services.yaml"), servicesYaml(urls));
        const run = await runCli("calls.yaml", dir, [], bin);
        if (run.summary.succeeded !== 1) throw new Error(`${label}: the run failed`);
        return run.runMs;
      });
      runs.get(label).push(ms);
    }
  }
} finally {
  rmSync(dir, { recursive: true, force: true });
}

const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
const warm = median(runs.get("warm raw undici"));
const raw = median(runs.get("cold raw undici"));
console.log(`20,000 calls at concurrency 64, median of ${rounds} rounds (ms of the run itself):`);
for (const [label, ms] of runs) {
  const m = median(ms);
  console.log(
    `  ${label.padEnd(16)} ${m.toFixed(0).padStart(6)} ms = ${(warm / m).toFixed(3)} of warm raw, ${(raw / m).toFixed(3)} of cold raw   [${ms.map((x) => x.toFixed(0)).join(" ")}]`,
  );
}
