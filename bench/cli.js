// CLI benchmark (issue: the agentctl CLI): startup time, peak memory on huge pipelines, and
// end-to-end throughput of `agentctl run` against raw undici, all as ratios within one run.
import { spawn, spawnSync } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { onFreshServers, rawUndici } from "./core.js";
import { startServers } from "./servers.js";

const ROOT = fileURLToPath(new URL("..", import.meta.url));
const BIN = join(ROOT, "bin/agentctl.js");
const RSS = join(ROOT, "bench/report-rss.cjs");

function median(xs) {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)];
}

function timeOnce(args) {
  const t0 = performance.now();
  const r = spawnSync(process.execPath, args, { stdio: "ignore" });
  if (r.status !== 0) throw new Error(`${args.join(" ")} exited ${r.status}`);
  return performance.now() - t0;
}

/** Median wall time of each command, runs interleaved so load drifts hit all alike. */
function startup() {
  const cmds = {
    "node -e 0": ["-e", "0"],
    "agentctl --version": [BIN, "--version"],
    "agentctl validate": [BIN, "validate", join(ROOT, "pipelines/demo.yaml")],
  };
  const times = Object.fromEntries(Object.keys(cmds).map((k) => [k, []]));
  for (let i = 0; i < 15; i++) for (const [k, a] of Object.entries(cmds)) times[k].push(timeOnce(a));
  return Object.fromEntries(Object.entries(times).map(([k, v]) => [k, median(v)]));
}

/**
 * Runs the CLI (`bin`, default this checkout's) on a pipeline; resolves with wall time, peak RSS
 * and the parsed summary.
 */
export function runCli(pipeline, cwd, extra = [], bin = BIN) {
  return new Promise((resolve, reject) => {
    const t0 = performance.now();
    const child = spawn(
      process.execPath,
      ["-r", RSS, bin, "run", pipeline, "--output", "json", "--quiet", ...extra],
      {
        cwd,
        stdio: ["ignore", "pipe", "pipe"],
      },
    );
    const out = [];
    let err = "";
    child.stdout.on("data", (d) => out.push(d));
    child.stderr.on("data", (d) => {
      err += d;
    });
    child.on("exit", (code) => {
      const ms = performance.now() - t0;
      const rss = Number(/PEAK_RSS_KB (\d+)/.exec(err)?.[1] ?? Number.NaN) / 1024;
      let report;
      try {
        report = JSON.parse(Buffer.concat(out).toString("utf8"));
      } catch {
        return reject(new Error(`run exited ${code} without JSON: ${err.slice(-500)}`));
      }
      resolve({ code, ms, runMs: report.duration_ms, rssMb: rss, summary: report.summary });
    });
  });
}

/** The raw loop of the core benchmark, timed inside a new Node process: its JIT starts cold. */
export function rawUndiciInFreshProcess(urls, calls, concurrency) {
  const core = new URL("core.js", import.meta.url).href;
  const code = `import { rawUndici } from ${JSON.stringify(core)};
    process.stdout.write(String(await rawUndici(${JSON.stringify(urls)}, ${calls}, ${concurrency})));`;
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ["--input-type=module", "-e", code], {
      stdio: ["ignore", "pipe", "inherit"],
    });
    let out = "";
    child.stdout.on("data", (d) => {
      out += d;
    });
    child.on("exit", (code) =>
      code === 0 ? resolve(Number(out)) : reject(new Error(`raw loop exited ${code}`)),
    );
  });
}

export function servicesYaml(urls) {
  return `services:\n  bench:\n    instances:\n${urls.map((u) => `      - endpoint: ${u}\n`).join("")}`;
}

/** The end-to-end pipeline: 20,000 echo calls, a `for_each` at concurrency 64. */
export function writeCallsPipeline(path) {
  writeFileSync(
    path,
    `name: twenty-thousand\nservices: ./services.yaml\nconcurrency: 64\ntasks:\n  - id: calls\n    service: bench\n    agent: echo\n    for_each: ${JSON.stringify(Array.from({ length: 20_000 }, (_, i) => i))}\n    input: { task: "benchmark call", context: { n: "\${{ item }}" } }\n`,
  );
}

export async function cliBenchmark() {
  const dir = mkdtempSync(join(tmpdir(), "agentctl-bench-"));
  const servers = await startServers(2);
  const urls = servers.map((s) => s.url);
  try {
    writeFileSync(join(dir, "services.yaml"), servicesYaml(urls));

    const s = startup();
    const base = s["node -e 0"];
    console.log("startup (median of 15, interleaved):");
    console.log(
      `  node -e 0 ${base.toFixed(0)} ms; --version ${s["agentctl --version"].toFixed(0)} ms = ${(s["agentctl --version"] / base).toFixed(2)}x; validate ${s["agentctl validate"].toFixed(0)} ms = ${(s["agentctl validate"] / base).toFixed(2)}x   (target <= 1.5x)`,
    );

    // 10,000 task entries: one call each.
    const tasks = Array.from(
      { length: 10_000 },
      (_, i) => `  - { id: t${i}, service: bench, agent: wordcount, input: { task: "task ${i}" } }`,
    );
    writeFileSync(
      join(dir, "tasks.yaml"),
      `name: ten-thousand\nservices: ./services.yaml\nconcurrency: 64\ntasks:\n${tasks.join("\n")}\n`,
    );
    const big = await runCli("tasks.yaml", dir);
    console.log(
      `10,000 tasks: ${big.summary.succeeded}/${big.summary.total} succeeded in ${(big.ms / 1000).toFixed(1)} s, peak RSS ${big.rssMb.toFixed(0)} MB   (target < 300 MB)`,
    );

    // 100,000-item fan-out.
    writeFileSync(
      join(dir, "fanout.yaml"),
      `name: fan-out\nservices: ./services.yaml\nconcurrency: 64\nvars: { n: 100000 }\ntasks:\n  - id: items\n    service: bench\n    agent: wordcount\n    for_each: ${JSON.stringify(Array.from({ length: 100_000 }, (_, i) => i))}\n    input: { task: "item \${{ index }}" }\n`,
    );
    const fan = await runCli("fanout.yaml", dir);
    console.log(
      `100,000-item for_each: ${fan.summary.succeeded}/${fan.summary.total} tasks succeeded in ${(fan.ms / 1000).toFixed(1)} s, peak RSS ${fan.rssMb.toFixed(0)} MB   (target < 300 MB)`,
    );

    // End to end: a 20,000-call pipeline against the raw undici loop, on equally fresh servers, at
    // the same concurrency.
    writeCallsPipeline(join(dir, "calls.yaml"));
    const rawMs = [];
    const coldRawMs = [];
    const processMs = [];
    const runMs = [];
    for (let r = 0; r < 3; r++) {
      rawMs.push(await onFreshServers((fresh) => rawUndici(fresh, 20_000, 64)));
      coldRawMs.push(await onFreshServers((fresh) => rawUndiciInFreshProcess(fresh, 20_000, 64)));
      const run = await onFreshServers((fresh) => {
        writeFileSync(join(dir, "services.yaml"), servicesYaml(fresh));
        return runCli("calls.yaml", dir);
      });
      if (run.summary.succeeded !== 1) throw new Error("the 20,000-call run failed");
      processMs.push(run.ms);
      runMs.push(run.runMs);
    }
    const rate = (ms) => (20_000 / Math.min(...ms)) * 1000;
    const raw = rate(rawMs);
    console.log("end to end, a 20,000-call pipeline at concurrency 64 (best of 3):");
    console.log(`  raw undici ${Math.round(raw)} calls/s`);
    console.log(
      `  agentctl run, the run itself (its duration_ms: runner, journal, expressions, calls): ${Math.round(rate(runMs))} calls/s = ${(rate(runMs) / raw).toFixed(3)}   (target >= 0.8)`,
    );
    console.log(
      `  agentctl run, the whole process (startup, parsing 20,000 items, health checks, output): ${Math.round(rate(processMs))} calls/s = ${(rate(processMs) / raw).toFixed(3)}`,
    );
    const coldRaw = rate(coldRawMs);
    console.log(
      `  for scale: the same raw undici loop in a fresh process (cold JIT, like every CLI run) ${Math.round(coldRaw)} calls/s = ${(coldRaw / raw).toFixed(3)}; agentctl run / that = ${(rate(runMs) / coldRaw).toFixed(3)}`,
    );
  } finally {
    await Promise.all(servers.map((s) => s.stop()));
    rmSync(dir, { recursive: true, force: true });
  }
}
