// Core engine benchmark (issue: core engine): the coordinator against a raw undici loop on the
// same servers, in the same process run, so the figures are ratios unaffected by machine noise.

import { randomBytes, randomUUID } from "node:crypto";
import { Pool } from "undici";
import { Client, Coordinator, Registry, VERSION } from "../dist/index.js";
import { startServers } from "./servers.js";

const BODY = JSON.stringify({
  task: "benchmark call",
  context: { n: 1 },
  timestamp: new Date().toISOString(),
});
const TRACE = randomBytes(16).toString("hex");

let span = 0;

/**
 * The headers agentctl sends, so the server does the same work for both loops (it remembers a
 * fresh idempotency key, for instance). Span ids come from a counter: the baseline should pay
 * no more per call than it must (a random read per call cost it ~7 µs).
 */
function headers() {
  span++;
  return {
    "content-type": "application/json",
    accept: "application/json",
    "user-agent": `agentctl/${VERSION}`,
    traceparent: `00-${TRACE}-${span.toString(16).padStart(16, "0")}-01`,
    "idempotency-key": randomUUID(),
  };
}

/** Raw undici: `calls` POSTs at `concurrency`, round robin over the endpoints. */
export async function rawUndici(urls, calls, concurrency) {
  const pools = urls.map((u) => new Pool(u, { connections: concurrency }));
  let next = 0;
  const worker = async () => {
    for (let i = next++; i < calls; i = next++) {
      const { statusCode, body } = await pools[i % pools.length].request({
        path: "/api/v1/agents/echo/execute",
        method: "POST",
        headers: headers(),
        body: BODY,
      });
      await body.json();
      if (statusCode !== 200) throw new Error(`status ${statusCode}`);
    }
  };
  const t0 = performance.now();
  await Promise.all(Array.from({ length: concurrency }, worker));
  const ms = performance.now() - t0;
  await Promise.all(pools.map((p) => p.close()));
  return ms;
}

/** The coordinator: the same calls through executeParallel at the same concurrency. */
export async function coordinated(urls, calls, concurrency) {
  const registry = new Registry({ heartbeatTimeout: 0 });
  for (const [i, u] of urls.entries())
    registry.register({ id: `bench-${i}`, serviceName: "bench", endpoint: u });
  const client = new Client();
  const coordinator = new Coordinator(registry, client, { maxConcurrency: concurrency, retries: 0 });
  const input = JSON.parse(BODY);
  const tasks = Array.from({ length: calls }, () => ({ serviceName: "bench", agentName: "echo", input }));
  const t0 = performance.now();
  const results = await coordinator.executeParallel(tasks);
  const ms = performance.now() - t0;
  const failed = results.filter((r) => r.error).length;
  coordinator.close();
  await client.close();
  registry.close();
  if (failed > 0) throw new Error(`${failed} coordinated calls failed`);
  return ms;
}

/**
 * Runs `measure(urls)` on two fresh server processes warmed up by 2,000 raw calls. Every
 * measurement gets servers in the same state: the reference server remembers idempotency keys
 * (up to 100,000 results), and one holding many of them is slower, which would favour
 * whichever loop ran first on shared servers.
 */
export async function onFreshServers(measure, args = []) {
  const servers = await startServers(2, args);
  try {
    const urls = servers.map((s) => s.url);
    await rawUndici(urls, 2000, 64);
    return await measure(urls);
  } finally {
    await Promise.all(servers.map((s) => s.stop()));
  }
}

export async function coreBenchmark({ calls = 20_000, rounds = 3 } = {}) {
  // Warms this process's coordinator path (JIT); the raw path is warmed by every onFreshServers.
  await onFreshServers((urls) => coordinated(urls, 2000, 64));
  const raw = [];
  const coord = [];
  for (let r = 0; r < rounds; r++) {
    raw.push(await onFreshServers((urls) => rawUndici(urls, calls, 64)));
    coord.push(await onFreshServers((urls) => coordinated(urls, calls, 64)));
  }
  const best = (xs) => Math.min(...xs);
  const rawRate = (calls / best(raw)) * 1000;
  const coordRate = (calls / best(coord)) * 1000;
  return { rawRate, coordRate, ratio: coordRate / rawRate };
}

export async function makespanBenchmark() {
  const servers = await startServers(2, ["--latency", "200ms"]);
  const urls = servers.map((s) => s.url);
  try {
    const ideal = Math.ceil(1000 / 100) * 200;
    const raw = await rawUndici(urls, 1000, 100);
    const coord = await coordinated(urls, 1000, 100);
    return { ideal, raw, coord, efficiency: ideal / coord, rawEfficiency: ideal / raw, vsRaw: raw / coord };
  } finally {
    await Promise.all(servers.map((s) => s.stop()));
  }
}
