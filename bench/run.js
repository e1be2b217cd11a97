// `npm run bench`: every speed target, measured as ratios within one run (the machine is
// shared and noisy; absolute rates swing by 2x). Loopback only; every loop is bounded.
import { coreBenchmark, makespanBenchmark } from "./core.js";

const only = process.argv[2];
const pct = (x) => `${(x * 100).toFixed(1)}%`;
const rate = (x) => `${Math.round(x).toLocaleString("en-US")} calls/s`;

async function main() {
  if (!only || only === "core") {
    const c = await coreBenchmark();
    console.log("core: 20,000 echo calls at concurrency 64, 2 server processes (best of 3)");
    console.log(`  (a) raw undici Pool loop        ${rate(c.rawRate)}`);
    console.log(`  (b) Coordinator.executeParallel ${rate(c.coordRate)}`);
    console.log(`  b/a = ${c.ratio.toFixed(3)}   (target >= 0.90)`);
    const m = await makespanBenchmark();
    console.log("makespan: 1,000 calls, 200 ms server latency, concurrency 100");
    console.log(
      `  ideal ${m.ideal} ms, coordinator ${Math.round(m.coord)} ms, raw undici ${Math.round(m.raw)} ms`,
    );
    console.log(
      `  efficiency vs ideal = ${pct(m.efficiency)} (target >= 95%), raw undici vs ideal = ${pct(m.rawEfficiency)}, coordinator vs raw = ${m.vsRaw.toFixed(3)}`,
    );
  }
  if (!only || only === "cli") {
    const { cliBenchmark } = await import("./cli.js");
    await cliBenchmark();
  }
}

main().catch((err) => {
  console.error(err);
  process.exitCode = 1;
});
