/** Active health checks and health-aware choice (SPEC §4 "Health", "Eligible instances"). */
import { describe, expect, it } from "vitest";
import { HealthMonitor, type RegistryEvent } from "../../src/index.js";
import type { Reply } from "../helpers/fake-agent-server.js";
import { freePort } from "../helpers/fake-agent-server.js";
import { registerAll, since, useResources } from "./util.js";

const r = useResources();

function timerOf(monitor: HealthMonitor): NodeJS.Timeout | undefined {
  return (monitor as unknown as { timer: NodeJS.Timeout | undefined }).timer;
}

describe("health", () => {
  it("checkHealth probes every instance with GET /health; a dead one is marked unhealthy", async () => {
    const servers = await r.servers(2);
    const registry = r.registry();
    registerAll(registry, "svc", servers);
    registry.register({ id: "dead", serviceName: "svc", endpoint: `http://127.0.0.1:${await freePort()}` });
    registry.register({ id: "other", serviceName: "svc2", endpoint: `${servers[0]!.url}/prefix` });
    const coordinator = r.coordinator(registry, r.client());
    const results = await coordinator.checkHealth();
    expect(results.map((p) => [p.instance.id, p.healthy])).toEqual([
      ["i0", true],
      ["i1", true],
      ["dead", false],
      ["other", true],
    ]);
    for (const p of results) expect(p.latencyMs).toBeGreaterThanOrEqual(0);
    expect((results[2]!.error as { code: string }).code).toBe("connection");
    expect(registry.getInstance("dead").healthy).toBe(false);
    expect(registry.getInstance("i0").healthy).toBe(true);
    expect(servers[0]!.requests.map((q) => `${q.method} ${q.path}`).sort()).toEqual([
      "GET /health",
      "GET /prefix/health",
    ]);
  });

  it("checkHealth of some services only", async () => {
    const servers = await r.servers(2);
    const registry = r.registry();
    registry.register({ id: "a", serviceName: "one", endpoint: servers[0]!.url });
    registry.register({ id: "b", serviceName: "two", endpoint: servers[1]!.url });
    const coordinator = r.coordinator(registry, r.client());
    const results = await coordinator.checkHealth(["two", "not-registered"]);
    expect(results.map((p) => p.instance.id)).toEqual(["b"]);
    expect(servers[0]!.requests).toHaveLength(0);
  });

  it("probes run concurrently, each bounded by the probe timeout; the hung socket is closed", async () => {
    const servers = await r.servers(3);
    for (const s of servers) s.route("GET /health", { hang: true });
    const registry = r.registry();
    registerAll(registry, "svc", servers);
    const coordinator = r.coordinator(registry, r.client(), { health: { timeout: 500, interval: 60_000 } });
    const start = performance.now();
    const results = await coordinator.checkHealth();
    expect(since(start)).toBeGreaterThanOrEqual(490);
    expect(since(start)).toBeLessThan(1400); // not 3 × 500 ms
    expect(results.map((p) => (p.error as { code: string }).code)).toEqual(["timeout", "timeout", "timeout"]);
    for (const s of servers) await s.waitForSockets(0, 2000);
  });

  it("checkHealth({ signal }) aborts the probes at once and leaves health as it was", async () => {
    const servers = await r.servers(2);
    for (const s of servers) s.route("GET /health", { hang: true });
    const registry = r.registry();
    registerAll(registry, "svc", servers);
    const coordinator = r.coordinator(registry, r.client(), {
      health: { timeout: 60_000, interval: 60_000 },
    });
    const abort = new AbortController();
    const probing = coordinator.checkHealth(undefined, { signal: abort.signal });
    for (const s of servers) await s.waitFor(() => s.inFlight === 1, 5000, "the probe");
    abort.abort();
    const results = await probing;
    expect(results.map((p) => (p.error as { code: string }).code)).toEqual(["cancelled", "cancelled"]);
    expect(registry.getHealthyInstances("svc")).toHaveLength(2);
    for (const s of servers) await s.waitForSockets(0, 5000);
    // Interrupted before it knew anything: no background re-probing either.
    expect(timerOf(coordinator.health)).toBeUndefined();
  });

  it("close() aborts the background probes in flight", async () => {
    const servers = await r.servers(1);
    const registry = r.registry();
    registerAll(registry, "svc", servers);
    registry.markUnhealthy("i0");
    const coordinator = r.coordinator(registry, r.client(), { health: { timeout: 60_000, interval: 20 } });
    servers[0]!.route("GET /health", { hang: true });
    coordinator.health.start();
    await servers[0]!.waitFor(() => servers[0]!.inFlight === 1, 5000, "a background probe");
    coordinator.close();
    await servers[0]!.waitForSockets(0, 5000);
    expect(registry.getInstance("i0").healthy).toBe(false);
  });

  it("a 5xx health answer is unhealthy", async () => {
    const [s] = await r.servers(1);
    s!.route("GET /health", { status: 503 });
    const registry = r.registry();
    registerAll(registry, "svc", [s!]);
    const [probe] = await r.coordinator(registry, r.client()).checkHealth();
    expect(probe!.healthy).toBe(false);
    expect(registry.getInstance("i0").healthy).toBe(false);
  });

  it("healthy instances come first: an unhealthy one gets no calls while a healthy one is there", async () => {
    const servers = await r.servers(2);
    servers[0]!.route("GET /health", { status: 500 });
    const registry = r.registry();
    registerAll(registry, "svc", servers);
    const coordinator = r.coordinator(registry, r.client(), { health: { interval: 60_000 } });
    await coordinator.checkHealth();
    for (let i = 0; i < 6; i++) await coordinator.executeAgent("svc", "echo", {});
    expect(servers.map((s) => s.agentCalls.length)).toEqual([0, 6]);
  });

  it("an unhealthy instance is still the failover target when the healthy ones fail", async () => {
    const servers = await r.servers(2);
    servers[0]!.route("GET /health", { status: 500 });
    servers[1]!.route(/execute$/, { status: 503 });
    const registry = r.registry();
    registerAll(registry, "svc", servers);
    const coordinator = r.coordinator(registry, r.client(), { health: { interval: 60_000 } });
    await coordinator.checkHealth();
    const outcome = await coordinator.call({ serviceName: "svc", agentName: "echo", input: {} });
    expect(outcome.ok).toBe(true);
    expect(outcome.instance).toBe("i0");
    expect(servers.map((s) => s.agentCalls.length)).toEqual([1, 1]);
  });

  it("every instance unhealthy (but not open): they are still tried", async () => {
    const servers = await r.servers(2);
    const registry = r.registry();
    registerAll(registry, "svc", servers);
    registry.markUnhealthy("i0");
    registry.markUnhealthy("i1");
    const coordinator = r.coordinator(registry, r.client());
    expect((await coordinator.executeAgent("svc", "echo", {})).status).toBe("success");
    expect((await coordinator.executeAgent("svc", "echo", {})).status).toBe("success");
    expect(servers.map((s) => s.agentCalls.length)).toEqual([1, 1]);
  });

  it("background re-probing brings an instance back once it answers /health again", async () => {
    const servers = await r.servers(2);
    let sick = true;
    servers[0]!.route("GET /health", (): Reply => (sick ? { status: 503 } : { json: { status: "healthy" } }));
    const registry = r.registry();
    registerAll(registry, "svc", servers);
    const coordinator = r.coordinator(registry, r.client(), { health: { interval: 50, timeout: 500 } });
    await coordinator.checkHealth();
    expect(registry.getInstance("i0").healthy).toBe(false);
    // Re-probed in the background while still sick: stays out.
    await servers[0]!.waitFor(() => servers[0]!.received("GET /health").length >= 3);
    expect(registry.getInstance("i0").healthy).toBe(false);
    const back = new Promise<RegistryEvent>((resolve) =>
      registry.onChange((e) => {
        if (e.type === "health" && e.instance.id === "i0" && e.instance.healthy) resolve(e);
      }),
    );
    sick = false;
    const start = performance.now();
    await back;
    expect(since(start)).toBeLessThan(2000);
    for (let i = 0; i < 4; i++) await coordinator.executeAgent("svc", "echo", {});
    expect(servers.map((s) => s.agentCalls.length)).toEqual([2, 2]);
    // Healthy instances are not re-probed.
    const probes = servers[1]!.received("GET /health").length;
    expect(probes).toBe(1);
  });

  it("the re-probe timer never holds the process and stops with close()", async () => {
    const registry = r.registry();
    const coordinator = r.coordinator(registry, r.client());
    expect(timerOf(coordinator.health)).toBeUndefined();
    await coordinator.checkHealth();
    const timer = timerOf(coordinator.health);
    expect(timer).toBeDefined();
    expect(timer!.hasRef()).toBe(false);
    coordinator.close();
    expect(timerOf(coordinator.health)).toBeUndefined();
  });

  it("defaults: 2 s probe timeout, re-probe every 5 s", () => {
    const monitor = new HealthMonitor(r.registry(), r.client());
    const fields = monitor as unknown as { timeout: number; interval: number };
    expect([fields.timeout, fields.interval]).toEqual([2000, 5000]);
  });
});
