/**
 * The circuit breaker (SPEC §4, §10): unit behaviour on an injected clock, then the per-endpoint
 * breakers of the client over real HTTP. SPEC differences from goagent: default open time 30 s
 * (Go: 60 s), exactly one half-open probe, cancellations and 4xx never count.
 */
import { describe, expect, it } from "vitest";
import {
  AgentctlError,
  CircuitBreaker,
  type CircuitBreakerConfig,
  type CircuitState,
} from "../../src/index.js";
import { agentOutput, freePort } from "../helpers/fake-agent-server.js";
import { rejection, useResources } from "./util.js";

const r = useResources();

function clock(start = 1_000_000) {
  const c = { t: start, now: () => c.t };
  return c;
}

const boom = () => Promise.reject(new Error("test error"));
const ok = () => Promise.resolve("ok");

function breaker(config: CircuitBreakerConfig = {}) {
  const c = clock();
  const transitions: string[] = [];
  const cb = new CircuitBreaker({
    now: c.now,
    onStateChange: (from: CircuitState, to: CircuitState) => transitions.push(`${from}->${to}`),
    ...config,
  });
  return { cb, c, transitions };
}

async function failTimes(cb: CircuitBreaker, n: number) {
  for (let i = 0; i < n; i++) await cb.execute(boom).catch(() => undefined);
}

describe("CircuitBreaker (unit, injected clock)", () => {
  // peer: TestCircuitBreaker_NewCircuitBreaker, TestCircuitBreaker_DefaultConfig
  it("defaults: 5 failures, open for 30 s; options of 0 mean the defaults", () => {
    for (const cb of [
      new CircuitBreaker(),
      new CircuitBreaker({ maxFailures: 0, timeout: 0 }),
      new CircuitBreaker({ maxFailures: -1 }),
    ]) {
      expect(cb.maxFailures).toBe(5);
      expect(cb.openMs).toBe(30_000);
      expect(cb.state).toBe("closed");
      expect(cb.failures).toBe(0);
    }
    const custom = new CircuitBreaker({ maxFailures: 3, timeout: 1000 });
    expect([custom.maxFailures, custom.openMs]).toEqual([3, 1000]);
  });

  it("the defaults hold on the clock: opens at the 5th failure, half-open after 30 s", async () => {
    const { cb, c } = breaker();
    await failTimes(cb, 4);
    expect(cb.state).toBe("closed");
    await failTimes(cb, 1);
    expect(cb.state).toBe("open");
    c.t += 29_999;
    expect(cb.state).toBe("open");
    c.t += 1;
    expect(cb.state).toBe("half-open");
  });

  // peer: TestCircuitBreaker_ClosedState
  it("closed: lets calls through, counts consecutive failures, a success resets them", async () => {
    const { cb } = breaker({ maxFailures: 5 });
    for (let i = 0; i < 10; i++) expect(await cb.execute(ok)).toBe("ok");
    expect(cb.failures).toBe(0);
    for (let i = 1; i <= 4; i++) {
      await expect(cb.execute(boom)).rejects.toThrow("test error");
      expect(cb.failures).toBe(i);
      expect(cb.state).toBe("closed");
    }
    await cb.execute(ok);
    expect(cb.failures).toBe(0);
    expect(cb.state).toBe("closed");
  });

  // peer: TestCircuitBreaker_ClosedState ("opens circuit after max failures")
  it("opens after maxFailures consecutive failures, passing the original errors through", async () => {
    const { cb } = breaker({ maxFailures: 3 });
    const err = new Error("mine");
    for (let i = 0; i < 3; i++) await expect(cb.execute(() => Promise.reject(err))).rejects.toBe(err);
    expect(cb.state).toBe("open");
    expect(cb.failures).toBe(3);
  });

  // peer: TestCircuitBreaker_OpenState
  it("open: fails fast with circuit_open without calling, until the timeout", async () => {
    const { cb, c } = breaker({ maxFailures: 2, timeout: 1000 });
    await failTimes(cb, 2);
    let calls = 0;
    const e = await rejection(
      cb.execute(async () => {
        calls++;
      }),
      "circuit_open",
    );
    expect(e.retryable).toBe(false);
    expect(calls).toBe(0);
    c.t += 999;
    await rejection(cb.execute(ok), "circuit_open");
    expect(cb.state).toBe("open");
    expect(cb.callable).toBe(false);
    c.t += 1;
    expect(cb.state).toBe("half-open");
    expect(cb.callable).toBe(true);
  });

  // peer: TestCircuitBreaker_HalfOpenState
  it("half-open: the probe's success closes, its failure reopens for a full timeout", async () => {
    const { cb, c } = breaker({ maxFailures: 2, timeout: 100 });
    await failTimes(cb, 2);
    c.t += 100;
    expect(await cb.execute(ok)).toBe("ok");
    expect(cb.state).toBe("closed");
    expect(cb.failures).toBe(0);

    await failTimes(cb, 2);
    c.t += 100;
    await expect(cb.execute(boom)).rejects.toThrow("test error");
    expect(cb.state).toBe("open");
    c.t += 99;
    expect(cb.state).toBe("open");
    c.t += 1;
    expect(cb.state).toBe("half-open");
  });

  // peer: TestCircuitBreaker_HalfOpenConcurrentRequests (SPEC: exactly one probe)
  it("half-open lets exactly one probe through 20 concurrent calls", async () => {
    const { cb, c } = breaker({ maxFailures: 2, timeout: 100 });
    await failTimes(cb, 2);
    c.t += 100;
    let executed = 0;
    let release!: () => void;
    const gate = new Promise<void>((resolve) => {
      release = resolve;
    });
    const calls = Array.from({ length: 20 }, () =>
      cb.execute(async () => {
        executed++;
        await gate;
        return "probe";
      }),
    );
    expect(cb.callable).toBe(false);
    release();
    const settled = await Promise.allSettled(calls);
    expect(executed).toBe(1);
    expect(settled.filter((s) => s.status === "fulfilled")).toHaveLength(1);
    const rejected = settled.filter((s): s is PromiseRejectedResult => s.status === "rejected");
    expect(rejected).toHaveLength(19);
    for (const s of rejected) expect((s.reason as AgentctlError).code).toBe("circuit_open");
    expect(cb.state).toBe("closed");
  });

  // peer: TestCircuitBreaker_StateString
  it("states read as the strings closed, open, half-open", async () => {
    const { cb, c } = breaker({ maxFailures: 1, timeout: 10 });
    const seen = [cb.state];
    await failTimes(cb, 1);
    seen.push(cb.state);
    c.t += 10;
    seen.push(cb.state);
    expect(seen).toEqual(["closed", "open", "half-open"]);
  });

  // peer: TestCircuitBreaker_Reset
  it("reset() closes and clears the count", async () => {
    const { cb, transitions } = breaker({ maxFailures: 2, timeout: 1000 });
    await failTimes(cb, 2);
    expect(cb.failures).toBe(2);
    cb.reset();
    expect(cb.state).toBe("closed");
    expect(cb.failures).toBe(0);
    expect(await cb.execute(ok)).toBe("ok");
    expect(transitions).toEqual(["closed->open", "open->closed"]);
  });

  // peer: TestCircuitBreaker_OnStateChange
  it("onStateChange reports every transition, in order", async () => {
    const { cb, c, transitions } = breaker({ maxFailures: 2, timeout: 100 });
    await failTimes(cb, 2);
    c.t += 100;
    await cb.execute(ok);
    expect(transitions).toEqual(["closed->open", "open->half-open", "half-open->closed"]);
    transitions.length = 0;
    await failTimes(cb, 2);
    c.t += 100;
    await failTimes(cb, 1);
    expect(transitions).toEqual(["closed->open", "open->half-open", "half-open->open"]);
  });

  // peer: TestCircuitBreaker_ConcurrentRequests
  it("concurrent calls all settle and the state stays consistent", async () => {
    const { cb } = breaker({ maxFailures: 10, timeout: 1000 });
    const results = await Promise.allSettled(
      Array.from({ length: 100 }, (_, i) =>
        cb.execute(async () => {
          await new Promise((resolve) => setImmediate(resolve));
          if (i % 2 === 0) throw new Error("test error");
          return i;
        }),
      ),
    );
    expect(results).toHaveLength(100);
    expect(results.filter((s) => s.status === "fulfilled")).toHaveLength(50);
    expect(["closed", "open", "half-open"]).toContain(cb.state);
  });

  // peer: TestCircuitBreaker_RapidStateTransitions
  it("rapid open / half-open / closed cycles", async () => {
    const { cb, c } = breaker({ maxFailures: 2, timeout: 50 });
    for (let cycle = 0; cycle < 5; cycle++) {
      await failTimes(cb, 2);
      expect(cb.state).toBe("open");
      c.t += 50;
      expect(await cb.execute(ok)).toBe("ok");
      expect(cb.state).toBe("closed");
    }
  });

  it.each(["cancelled", "invalid"] as const)(
    "a %s call neither counts nor resets the count, and as a probe gives its slot back",
    async (code) => {
      const { cb, c } = breaker({ maxFailures: 2, timeout: 100 });
      const cancelled = () => Promise.reject(new AgentctlError(code, code));
      for (let i = 0; i < 5; i++) await cb.execute(cancelled).catch(() => undefined);
      expect(cb.failures).toBe(0);
      expect(cb.state).toBe("closed");
      await failTimes(cb, 1);
      await rejection(cb.execute(cancelled), code);
      expect(cb.failures).toBe(1);
      await failTimes(cb, 1);
      expect(cb.state).toBe("open");
      c.t += 100;
      // Never sent: the circuit stays half-open, and the next call is the probe.
      await rejection(cb.execute(cancelled), code);
      expect(cb.state).toBe("half-open");
      expect(cb.callable).toBe(true);
      expect(await cb.execute(ok)).toBe("ok");
      expect(cb.state).toBe("closed");
    },
  );

  it("admit / recordSuccess / recordFailure are execute() in parts", () => {
    const { cb, c, transitions } = breaker({ maxFailures: 2, timeout: 100 });
    expect(cb.admit()).toBe(false); // closed: not a probe
    cb.recordFailure(false, new Error("down"));
    cb.recordFailure(cb.admit(), new Error("down"));
    expect(cb.state).toBe("open");
    expect(() => cb.admit()).toThrow(expect.objectContaining({ code: "circuit_open" }));
    c.t += 100;
    const probe = cb.admit();
    expect(probe).toBe(true);
    expect(() => cb.admit()).toThrow(expect.objectContaining({ code: "circuit_open" })); // probe out
    cb.recordSuccess(probe);
    expect(cb.state).toBe("closed");
    expect(transitions).toEqual(["closed->open", "open->half-open", "half-open->closed"]);
  });

  it("failures that do not count against the instance (4xx, agent_failed) never open it", async () => {
    const { cb } = breaker({ maxFailures: 2 });
    for (const err of [
      new AgentctlError("http_status", "404", { status: 404 }),
      new AgentctlError("http_status", "400", { status: 400 }),
      new AgentctlError("http_status", "429", { status: 429 }),
      new AgentctlError("agent_failed", "no"),
      new AgentctlError("invalid", "bad name"),
    ]) {
      await expect(cb.execute(() => Promise.reject(err))).rejects.toBe(err);
    }
    expect(cb.failures).toBe(0);
    expect(cb.state).toBe("closed");
    // Those that do: connection, timeout, 5xx, bad_response, and anything foreign.
    for (const err of [
      new AgentctlError("http_status", "500", { status: 500 }),
      new AgentctlError("bad_response", "junk"),
    ]) {
      await cb.execute(() => Promise.reject(err)).catch(() => undefined);
    }
    expect(cb.state).toBe("open");
  });

  it("a custom isFailure decides what counts", async () => {
    const { cb } = breaker({ maxFailures: 1, isFailure: (e) => (e as Error).message === "counts" });
    await cb.execute(() => Promise.reject(new Error("ignored"))).catch(() => undefined);
    expect(cb.state).toBe("closed");
    await cb.execute(() => Promise.reject(new Error("counts"))).catch(() => undefined);
    expect(cb.state).toBe("open");
  });
});

describe("per-endpoint breakers of the client, over HTTP", () => {
  const input = { task: "test" };

  // peer: TestClient_CircuitBreaker_OpensOnFailures
  it("opens after maxFailures; then no request reaches the server", async () => {
    const server = await r.server();
    server.route(/execute$/, { status: 500, body: "Service unavailable" });
    const client = r.client({ circuitBreaker: { maxFailures: 3, timeout: 1000 } });
    for (let i = 0; i < 3; i++) await rejection(client.executeAgent(server.url, "a", input), "http_status");
    expect(client.circuitBreaker(server.url).state).toBe("open");
    for (let i = 0; i < 5; i++) await rejection(client.executeAgent(server.url, "a", input), "circuit_open");
    expect(server.requests).toHaveLength(3);
  });

  // peer: TestClient_CircuitBreaker_ClosesOnSuccess, TestClient_CircuitBreaker_IntegrationWithRetries
  it("half-open after the timeout; the probe's success closes it and normal calls resume", async () => {
    const c = clock();
    const server = await r.server();
    server.enqueue(/execute$/, { status: 503 }, { status: 503 }, { status: 503 });
    server.route(/execute$/, { json: agentOutput({ result: "recovered" }) });
    const client = r.client({ circuitBreaker: { maxFailures: 3, timeout: 200, now: c.now } });
    for (let i = 0; i < 3; i++) await rejection(client.executeAgent(server.url, "a", input), "http_status");
    for (let i = 0; i < 2; i++) await rejection(client.executeAgent(server.url, "a", input), "circuit_open");
    c.t += 200;
    expect(client.circuitBreaker(server.url).state).toBe("half-open");
    expect((await client.executeAgent(server.url, "a", input)).result).toBe("recovered");
    expect(client.circuitBreaker(server.url).state).toBe("closed");
    expect((await client.executeAgent(server.url, "a", input)).result).toBe("recovered");
    expect(server.requests).toHaveLength(5);
  });

  // peer: TestClient_CircuitBreaker_ReopensOnFailureInHalfOpen
  it("a failed probe reopens it", async () => {
    const c = clock();
    const server = await r.server();
    server.route(/execute$/, { status: 500 });
    const client = r.client({ circuitBreaker: { maxFailures: 2, timeout: 100, now: c.now } });
    for (let i = 0; i < 2; i++) await rejection(client.executeAgent(server.url, "a", input));
    c.t += 100;
    await rejection(client.executeAgent(server.url, "a", input), "http_status");
    expect(client.circuitBreaker(server.url).state).toBe("open");
    await rejection(client.executeAgent(server.url, "a", input), "circuit_open");
    expect(server.requests).toHaveLength(3);
  });

  // peer: TestClient_CircuitBreaker_ConnectionFailures
  it("connection failures count", async () => {
    const endpoint = `http://127.0.0.1:${await freePort()}`;
    const client = r.client({ circuitBreaker: { maxFailures: 2, timeout: 100 } });
    for (let i = 0; i < 2; i++) await rejection(client.executeAgent(endpoint, "a", input), "connection");
    expect(client.circuitBreaker(endpoint).state).toBe("open");
    await rejection(client.executeAgent(endpoint, "a", input), "circuit_open");
  });

  // peer: TestClient_CircuitBreaker_SuccessResetsFailureCount
  it("a success resets the failure count", async () => {
    const server = await r.server();
    server.enqueue(/execute$/, { status: 500 }, { status: 500 });
    const client = r.client({ circuitBreaker: { maxFailures: 3, timeout: 1000 } });
    for (let i = 0; i < 2; i++) await rejection(client.executeAgent(server.url, "a", input));
    expect(client.circuitBreaker(server.url).failures).toBe(2);
    expect(client.circuitBreaker(server.url).state).toBe("closed");
    await client.executeAgent(server.url, "a", input);
    expect(client.circuitBreaker(server.url).failures).toBe(0);
  });

  // peer: TestClient_CircuitBreaker_ConcurrentRequests (adapted: calls already in flight when it
  // opens are not stopped, so the callers here are 4 workers issuing 20 calls between them)
  it("concurrent callers: once open, the remaining calls are blocked", async () => {
    const server = await r.server();
    server.route(/execute$/, (_req, n) => (n <= 5 ? { status: 500 } : { json: agentOutput() }));
    const client = r.client({ circuitBreaker: { maxFailures: 5, timeout: 60_000 } });
    const codes: string[] = [];
    let next = 0;
    await Promise.all(
      Array.from({ length: 4 }, async () => {
        while (next < 20) {
          next++;
          try {
            await client.executeAgent(server.url, "a", input);
            codes.push("ok");
          } catch (err) {
            codes.push((err as AgentctlError).code);
          }
        }
      }),
    );
    expect(codes).toHaveLength(20);
    expect(codes.filter((c) => c === "circuit_open").length).toBeGreaterThan(0);
    expect(server.requests.length).toBeLessThanOrEqual(5 + 3);
  });

  // peer: TestClient_CircuitBreaker_StateChangeCallback
  it("onStateChange from the client's breaker config", async () => {
    const server = await r.server();
    server.route(/execute$/, { status: 500 });
    const changes: string[] = [];
    const client = r.client({
      circuitBreaker: { maxFailures: 2, timeout: 100, onStateChange: (f, t) => changes.push(`${f}->${t}`) },
    });
    for (let i = 0; i < 2; i++) await rejection(client.executeAgent(server.url, "a", input));
    expect(changes).toEqual(["closed->open"]);
  });

  // peer: TestClient_NewClientWithCircuitBreaker_NilConfig
  it("a client without breaker options gets the defaults, one breaker per endpoint", () => {
    const client = r.client();
    const a = client.circuitBreaker("http://127.0.0.1:1");
    expect([a.maxFailures, a.openMs]).toEqual([5, 30_000]);
    expect(client.circuitBreaker("http://127.0.0.1:1")).toBe(a);
    expect(client.circuitBreaker("http://127.0.0.1:2")).not.toBe(a);
  });

  it("one endpoint's open breaker does not affect another endpoint", async () => {
    const [bad, good] = await r.servers(2);
    bad!.route(/execute$/, { status: 502 });
    const client = r.client({ circuitBreaker: { maxFailures: 1, timeout: 60_000 } });
    await rejection(client.executeAgent(bad!.url, "a", input));
    await rejection(client.executeAgent(bad!.url, "a", input), "circuit_open");
    expect((await client.executeAgent(good!.url, "a", input)).status).toBe("success");
    expect(client.circuitBreaker(good!.url).state).toBe("closed");
  });

  it("exactly one probe reaches the server under 20 concurrent calls", async () => {
    const c = clock();
    const server = await r.server();
    server.enqueue(/execute$/, { status: 500 });
    server.route(/execute$/, { delayMs: 100, json: agentOutput({ result: "probe" }) });
    const client = r.client({ circuitBreaker: { maxFailures: 1, timeout: 1000, now: c.now } });
    await rejection(client.executeAgent(server.url, "a", input));
    c.t += 1000;
    const settled = await Promise.allSettled(
      Array.from({ length: 20 }, () => client.executeAgent(server.url, "a", input)),
    );
    const ok = settled.filter((s) => s.status === "fulfilled");
    const rejected = settled.filter((s): s is PromiseRejectedResult => s.status === "rejected");
    expect(ok).toHaveLength(1);
    expect(rejected.map((s) => (s.reason as AgentctlError).code)).toEqual(Array(19).fill("circuit_open"));
    expect(server.agentCalls).toHaveLength(2);
    expect(client.circuitBreaker(server.url).state).toBe("closed");
  });

  it("4xx answers do not count; cancelled calls do not count", async () => {
    const server = await r.server();
    server.route(/execute$/, { status: 404 });
    const client = r.client({ circuitBreaker: { maxFailures: 2, timeout: 60_000 } });
    for (let i = 0; i < 6; i++) await rejection(client.executeAgent(server.url, "a", input), "http_status");
    expect(client.circuitBreaker(server.url).state).toBe("closed");
    expect(server.requests).toHaveLength(6);

    const hanging = await r.server();
    hanging.route(/execute$/, { hang: true });
    for (let i = 0; i < 4; i++) {
      const controller = new AbortController();
      const call = client.executeAgent(hanging.url, "a", input, { signal: controller.signal });
      await hanging.waitForRequests(i + 1);
      controller.abort();
      await rejection(call, "cancelled");
    }
    expect(client.circuitBreaker(hanging.url).failures).toBe(0);
    expect(client.circuitBreaker(hanging.url).state).toBe("closed");
  });
});
