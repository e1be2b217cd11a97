/**
 * The coordinator over real HTTP servers (SPEC §4, §10): balancing, failover, retries and
 * backoff, per-instance breakers, concurrency, timeouts, cancellation, parallel and sequential
 * runs. Async tasks are in coordinator-async.test.ts, health in coordinator-health.test.ts.
 */
import { describe, expect, it } from "vitest";
import type {
  AgentTask,
  CallEvent,
  ClientOptions,
  Coordinator,
  CoordinatorOptions,
} from "../../src/index.js";
import { startAgentServer } from "../../src/server/index.js";
import { agentOutput, type FakeAgentServer, freePort, type Reply } from "../helpers/fake-agent-server.js";
import { registerAll, rejection, since, useResources } from "./util.js";

const r = useResources();

interface Setup {
  servers: FakeAgentServer[];
  coordinator: Coordinator;
  client: ReturnType<typeof r.client>;
  registry: ReturnType<typeof r.registry>;
  /** Agent calls per server, in server order. */
  calls(): number[];
}

async function setup(
  n: number,
  options: CoordinatorOptions = {},
  clientOptions: ClientOptions = {},
  agents?: string[],
): Promise<Setup> {
  const servers = await r.servers(n);
  const client = r.client(clientOptions);
  const registry = r.registry();
  registerAll(registry, "svc", servers, agents);
  const coordinator = r.coordinator(registry, client, options);
  return { servers, client, registry, coordinator, calls: () => servers.map((s) => s.agentCalls.length) };
}

const task = (agentName = "echo", input: AgentTask["input"] = {}): AgentTask => ({
  serviceName: "svc",
  agentName,
  input,
});

function deferred<T = void>() {
  let resolve!: (v: T) => void;
  const promise = new Promise<T>((res) => {
    resolve = res;
  });
  return { promise, resolve };
}

describe("construction", () => {
  // peer: TestNewCoordinator
  it("holds the registry and client it was given", () => {
    const registry = r.registry();
    const client = r.client();
    const coordinator = r.coordinator(registry, client);
    expect(coordinator.registry).toBe(registry);
    expect(coordinator.client).toBe(client);
  });

  // peer: TestServiceInstance_Structure, TestAgentTask_Structure, TestAgentTaskResult_Structure
  it("tasks and results carry what goagent's do", async () => {
    const { coordinator } = await setup(1);
    const t: AgentTask = {
      serviceName: "svc",
      agentName: "DiagnosisAgent",
      input: { task: "diagnose pod crash", instruction: "analyze", context: { pod: "my-pod" } },
    };
    const [result] = await coordinator.executeParallel([t]);
    expect(result!.task).toBe(t);
    expect(result!.output!.status).toBe("success");
    expect(result!.error).toBeUndefined();
  });
});

describe("load balancing", () => {
  // peer: TestCoordinator_SelectInstance_RoundRobin, TestCoordinator_RoundRobinWithThreeInstances
  it("round robin cycles through 3 instances in order", async () => {
    const { coordinator, servers } = await setup(3);
    const order: number[] = [];
    for (const [i, s] of servers.entries()) {
      s.route(/execute$/, () => {
        order.push(i);
        return { json: agentOutput() };
      });
    }
    for (let i = 0; i < 6; i++) await coordinator.executeAgent("svc", "echo", {});
    expect(order).toEqual([0, 1, 2, 0, 1, 2]);
  });

  it("round robin over the reference server: parallel work spreads evenly", async () => {
    const servers = await Promise.all(
      [0, 1, 2].map(() => startAgentServer({ port: 0, recordRequests: true })),
    );
    for (const s of servers) r.defer(() => s.close());
    const registry = r.registry();
    registerAll(registry, "svc", servers);
    const coordinator = r.coordinator(registry, r.client());
    const results = await coordinator.executeParallel(
      Array.from({ length: 30 }, (_, i) => task("upper", { task: `word${i}` })),
    );
    expect(results.map((x) => x.output?.result)).toEqual(Array.from({ length: 30 }, (_, i) => `WORD${i}`));
    expect(servers.map((s) => s.agentRuns)).toEqual([10, 10, 10]);
  });

  it.each([
    ["for the coordinator", { loadBalancing: "least_pending" }, 6],
    ["as a service's policy", { services: { svc: { loadBalancing: "least_pending" } } }, 4],
  ] as const)("least_pending %s prefers an idle instance", async (_, options, calls) => {
    const { coordinator, servers } = await setup(2, options);
    const gate = deferred<Reply>();
    servers[0]!.route(/execute$/, () => gate.promise);
    // The first call (a tie: the rotation picks i0) keeps i0 busy.
    const busy = coordinator.executeAgent("svc", "echo", {});
    await servers[0]!.waitForRequests(1);
    for (let i = 0; i < calls; i++) await coordinator.executeAgent("svc", "echo", {});
    expect(servers.map((s) => s.agentCalls.length)).toEqual([1, calls]);
    gate.resolve({ json: agentOutput() });
    await busy;
  });

  it("only instances listing the agent get it; instances without a list serve any agent", async () => {
    const servers = await r.servers(3);
    const registry = r.registry();
    registry.register({ id: "x-only", serviceName: "svc", endpoint: servers[0]!.url, agents: ["x"] });
    registry.register({ id: "y-only", serviceName: "svc", endpoint: servers[1]!.url, agents: ["y"] });
    registry.register({ id: "any", serviceName: "svc", endpoint: servers[2]!.url });
    const coordinator = r.coordinator(registry, r.client());
    for (let i = 0; i < 6; i++) await coordinator.executeAgent("svc", "y", {});
    expect(servers.map((s) => s.agentCalls.length)).toEqual([0, 3, 3]);
    await coordinator.executeAgent("svc", "z", {});
    expect(servers[2]!.agentCalls).toHaveLength(4);
  });

  it("a deregistered instance gets no new calls", async () => {
    const { coordinator, servers, registry } = await setup(2);
    registry.deregister("i0");
    for (let i = 0; i < 4; i++) await coordinator.executeAgent("svc", "echo", {});
    expect(servers.map((s) => s.agentCalls.length)).toEqual([0, 4]);
  });

  // peer: TestCoordinator_ConcurrentExecutions
  it("20 concurrent calls over 5 instances all succeed", async () => {
    const { coordinator } = await setup(5);
    const outcomes = await Promise.allSettled(
      Array.from({ length: 20 }, () => coordinator.executeAgent("svc", "TestAgent", { task: "t" })),
    );
    expect(outcomes.filter((o) => o.status === "fulfilled")).toHaveLength(20);
  });
});

describe("failover and retries", () => {
  // peer: TestCoordinator_ExecuteAgent_Success
  it("a successful call leaves the instance healthy and its breaker clean", async () => {
    const { coordinator, registry, client, servers } = await setup(1);
    const output = await coordinator.executeAgent("svc", "TestAgent", { task: "test task" });
    expect(output.status).toBe("success");
    expect(registry.getInstance("i0").healthy).toBe(true);
    expect(client.circuitBreaker(servers[0]!.url).failures).toBe(0);
  });

  // peer: TestCoordinator_ExecuteAgent_Failover
  it("a retryable failure fails over at once to an untried instance (no backoff)", async () => {
    const { coordinator, servers } = await setup(2, { backoff: { base: 5000 }, random: () => 1 });
    servers[0]!.route(/execute$/, { status: 500, body: "connection timeout" });
    servers[1]!.route(/execute$/, { json: agentOutput({ result: "from secondary" }) });
    const events: CallEvent[] = [];
    const start = performance.now();
    const outcome = await coordinator.call({ ...task(), onEvent: (e) => events.push(e) });
    expect(since(start)).toBeLessThan(1000);
    expect(outcome.ok && outcome.output.result).toBe("from secondary");
    expect(outcome.attempts).toBe(2);
    expect(outcome.instance).toBe("i1");
    expect(events.map((e) => [e.type, e.instance])).toEqual([
      ["attempt", "i0"],
      ["attempt_failed", "i0"],
      ["attempt", "i1"],
    ]);
    const failed = events[1] as Extract<CallEvent, { type: "attempt_failed" }>;
    expect(failed.retryInMs).toBe(0);
    expect(failed.failover).toBe(true);
    expect(failed.error.code).toBe("http_status");
    expect(failed.error.status).toBe(500);
  });

  it.each([
    ["a refused port", "refused"],
    ["a reset connection", "reset"],
    ["a timeout", "hang"],
  ])("fails over after %s", async (_name, kind) => {
    const { coordinator, servers, registry } = await setup(1, { timeout: 300 });
    if (kind === "refused") {
      registry.register({ id: "dead", serviceName: "svc", endpoint: `http://127.0.0.1:${await freePort()}` });
    } else {
      const bad = await r.server();
      bad.route(/execute$/, kind === "reset" ? { reset: true } : { hang: true });
      registry.register({ id: "dead", serviceName: "svc", endpoint: bad.url });
    }
    // Two calls: whichever comes first, one of them starts on the bad instance.
    for (let i = 0; i < 2; i++)
      expect((await coordinator.executeAgent("svc", "echo", {})).status).toBe("success");
    expect(servers[0]!.agentCalls).toHaveLength(2);
  });

  it("backs off exponentially once every instance has failed the task", async () => {
    const { coordinator, servers } = await setup(1, {
      retries: 2,
      backoff: { base: 100, factor: 2, cap: 1000 },
      random: () => 1,
    });
    servers[0]!.route(/execute$/, { status: 503 });
    const events: CallEvent[] = [];
    const start = performance.now();
    const outcome = await coordinator.call({ ...task(), onEvent: (e) => events.push(e) });
    const took = since(start);
    expect(outcome.ok).toBe(false);
    expect(outcome.attempts).toBe(3);
    const waits = events.flatMap((e) => (e.type === "attempt_failed" ? [e.retryInMs] : []));
    expect(waits).toEqual([100, 200, undefined]);
    expect(events.filter((e) => e.type === "attempt_failed")).toMatchObject([
      { failover: false },
      { failover: false },
      { gaveUp: "no_retries_left" },
    ]);
    const at = servers[0]!.agentCalls.map((q) => q.at);
    expect(at[1]! - at[0]!).toBeGreaterThanOrEqual(90);
    expect(at[2]! - at[1]!).toBeGreaterThanOrEqual(190);
    expect(took).toBeGreaterThanOrEqual(290);
    expect(took).toBeLessThan(1500);
  });

  it("with several instances: failover first, backoff only after all have failed", async () => {
    const { coordinator, servers } = await setup(2, {
      retries: 3,
      backoff: { base: 150, factor: 2, cap: 1000 },
      random: () => 1,
    });
    for (const s of servers) s.route(/execute$/, { status: 502 });
    const events: CallEvent[] = [];
    await coordinator.call({ ...task(), onEvent: (e) => events.push(e) });
    const waits = events.flatMap((e) => (e.type === "attempt_failed" ? [e.retryInMs] : []));
    expect(waits).toEqual([0, 150, 300, undefined]);
    expect(servers.map((s) => s.agentCalls.length)).toEqual([2, 2]);
  });

  it("a longer Retry-After wins over the backoff; a shorter one does not", async () => {
    const { coordinator, servers } = await setup(1, {
      retries: 1,
      backoff: { base: 50, factor: 2, cap: 1000 },
      random: () => 1,
    });
    servers[0]!.enqueue(/execute$/, { status: 503, headers: { "retry-after": "1" } });
    const events: CallEvent[] = [];
    const start = performance.now();
    await coordinator.call({ ...task(), onEvent: (e) => events.push(e) });
    const took = since(start);
    expect(events.find((e) => e.type === "attempt_failed")).toMatchObject({ retryInMs: 1000 });
    expect(took).toBeGreaterThanOrEqual(950);
    expect(took).toBeLessThan(2500);

    servers[0]!.enqueue(/execute$/, { status: 429, headers: { "retry-after": "0" } });
    const second: CallEvent[] = [];
    await coordinator.call({ ...task(), onEvent: (e) => second.push(e) });
    expect(second.find((e) => e.type === "attempt_failed")).toMatchObject({ retryInMs: 50 });
  });

  it("makes at most retries + 1 attempts", async () => {
    const { coordinator, servers } = await setup(1, { retries: 3, random: () => 0 });
    servers[0]!.route(/execute$/, { status: 500 });
    const outcome = await coordinator.call(task());
    expect(outcome).toMatchObject({ ok: false, attempts: 4 });
    expect(servers[0]!.agentCalls).toHaveLength(4);
    expect(!outcome.ok && outcome.error.status).toBe(500);
  });

  // peer: TestCoordinator_ExecuteAgentWithRetry_Success
  it("executeAgentWithRetry: a first success is one call", async () => {
    const { coordinator, servers } = await setup(1);
    await coordinator.executeAgentWithRetry("svc", "TestAgent", { task: "t" }, 3);
    expect(servers[0]!.agentCalls).toHaveLength(1);
  });

  // peer: TestCoordinator_ExecuteAgentWithRetry_EventualSuccess (SPEC: a 500 is retryable, so the
  // second attempt succeeds where goagent gives up)
  it("executeAgentWithRetry: retries a retryable failure until success, bounded by maxRetries", async () => {
    const { coordinator, servers } = await setup(1, { random: () => 0 });
    servers[0]!.enqueue(/execute$/, { status: 500, body: "connection timeout" });
    const output = await coordinator.executeAgentWithRetry("svc", "TestAgent", { task: "t" }, 3);
    expect(output.status).toBe("success");
    expect(servers[0]!.agentCalls).toHaveLength(2);

    servers[0]!.route(/execute$/, { status: 503 });
    await rejection(coordinator.executeAgentWithRetry("svc", "TestAgent", {}, 2), "http_status");
    expect(servers[0]!.agentCalls).toHaveLength(2 + 3);
    await rejection(coordinator.executeAgentWithRetry("svc", "TestAgent", {}, 0), "http_status");
    expect(servers[0]!.agentCalls).toHaveLength(2 + 3 + 1);
  });

  // peer: TestCoordinator_ExecuteAgentWithRetry_ContextCancelled
  it("executeAgentWithRetry with an aborted signal sends nothing", async () => {
    const { coordinator, servers } = await setup(1);
    await rejection(
      coordinator.executeAgentWithRetry("svc", "TestAgent", {}, 3, { signal: AbortSignal.abort() }),
      "cancelled",
    );
    expect(servers[0]!.requests).toHaveLength(0);
  });

  // peer: TestCoordinator_ShouldRetry, TestCoordinator_ShouldRetry_NetworkErrors,
  // TestCoordinator_ShouldRetry_NonNetworkErrors (classified by code from the real failure, never
  // by matching messages, which also covers TestCoordinator_Contains)
  it.each([
    [{ status: 400 }, "http_status"],
    [{ status: 401 }, "http_status"],
    [{ status: 403 }, "http_status"],
    [{ body: "not json" }, "bad_response"],
    [{ json: agentOutput({ status: "failed" }) }, "agent_failed"],
  ] as Array<[Reply, string]>)("a non-retryable failure (%j) ends the task at once", async (reply, code) => {
    const { coordinator, servers } = await setup(3, { retries: 5 });
    for (const s of servers) s.route(/execute$/, reply);
    const events: CallEvent[] = [];
    const outcome = await coordinator.call({ ...task(), agentName: "echo", onEvent: (e) => events.push(e) });
    expect(outcome.ok || outcome.error.code).toBe(code);
    expect(servers.reduce((n, s) => n + s.agentCalls.length, 0)).toBe(1);
    // An agent reporting failure is an answer, not a failed attempt.
    if (code !== "agent_failed") expect(events.at(-1)).toMatchObject({ gaveUp: "not_retryable" });
  });

  // peer: TestCoordinator_ExecuteWithFailover_NoAvailableInstances
  it("a single failing instance: the error after the retries", async () => {
    const { coordinator, servers } = await setup(1, { retries: 1, random: () => 0 });
    servers[0]!.route(/execute$/, { status: 500, body: "connection timeout" });
    const e = await rejection(coordinator.executeAgent("svc", "TestAgent", {}), "http_status");
    expect(e.instance).toBe("i0");
    expect(e.body).toBe("connection timeout");
  });

  it("a 404 fails over without costing a retry or counting against the instance", async () => {
    const { coordinator, servers, client } = await setup(2, { retries: 0 });
    servers[0]!.route(/execute$/, { status: 404, json: { error: "unknown agent" } });
    const outcome = await coordinator.call(task());
    expect(outcome.ok).toBe(true);
    expect(outcome.instance).toBe("i1");
    expect(client.circuitBreaker(servers[0]!.url).failures).toBe(0);
    expect(client.circuitBreaker(servers[0]!.url).state).toBe("closed");
  });

  it("an instance that answered 404 is not asked again after a backoff; one that failed retryably is", async () => {
    const { coordinator, servers } = await setup(2, { retries: 2, random: () => 0 });
    servers[0]!.route(/execute$/, { status: 404 });
    let calls = 0;
    servers[1]!.route(/execute$/, () => (++calls === 1 ? { status: 503 } : { json: agentOutput() }));
    // Whichever goes first, the 404 leaves only the instance that failed with a 503 to retry.
    const outcome = await coordinator.call(task());
    expect(outcome.ok, JSON.stringify(outcome)).toBe(true);
    expect(outcome.instance).toBe("i1");
    expect(servers.map((s) => s.agentCalls.length)).toEqual([1, 2]);
  });

  it("404 everywhere: each instance asked once, then the 404", async () => {
    const { coordinator, servers } = await setup(3, { retries: 5 });
    for (const s of servers) s.route(/execute$/, { status: 404 });
    const e = await rejection(coordinator.executeAgent("svc", "echo", {}), "http_status");
    expect(e.status).toBe(404);
    expect(servers.map((s) => s.agentCalls.length)).toEqual([1, 1, 1]);
    // Its events: two failovers, then the end, saying no instance is left (not an open circuit).
    const events: CallEvent[] = [];
    await coordinator.call({ ...task(), onEvent: (x) => events.push(x) });
    expect(events.filter((x) => x.type === "attempt_failed")).toMatchObject([
      { failover: true },
      { failover: true },
      { gaveUp: "no_instance_left" },
    ]);
  });

  it("every attempt of one call carries the same idempotency key and trace id", async () => {
    const { coordinator, servers, client } = await setup(3, { retries: 4, random: () => 0 });
    const log: Array<{ call: number; server: number; key: string; trace: string }> = [];
    let call = 0;
    const replies: Reply[] = [{ status: 503 }, { status: 502 }, { json: agentOutput() }];
    for (const [i, s] of servers.entries()) {
      s.route(/execute$/, (req) => {
        log.push({
          call,
          server: i,
          key: String(req.headers["idempotency-key"]),
          trace: String(req.headers.traceparent),
        });
        return replies[i]!;
      });
    }
    for (call = 0; call < 3; call++) {
      const outcome = await coordinator.call(
        call === 2 ? { ...task(), idempotencyKey: "run-7:step-2" } : task(),
      );
      expect(outcome.ok).toBe(true);
    }
    const keysOf = (c: number) => log.filter((l) => l.call === c).map((l) => l.key);
    for (let c = 0; c < 3; c++) {
      const attempts = log.filter((l) => l.call === c);
      expect(attempts.length).toBeGreaterThanOrEqual(1);
      expect(new Set(attempts.map((a) => a.server)).size).toBe(attempts.length); // failover, no repeats
      expect(attempts.at(-1)!.server).toBe(2);
      expect(new Set(keysOf(c)).size).toBe(1);
    }
    expect(log.length).toBeGreaterThan(3); // some calls did fail over
    expect(keysOf(0)[0]).not.toBe(keysOf(1)[0]);
    expect(keysOf(2)[0]).toBe("run-7:step-2");
    expect(new Set(log.map((l) => l.trace.split("-")[1]))).toEqual(new Set([client.traceId]));
    expect(new Set(log.map((l) => l.trace.split("-")[2])).size).toBe(log.length);
  });

  it("service headers are sent on every attempt", async () => {
    const { coordinator, servers } = await setup(1, { services: { svc: { headers: { "x-api-key": "k" } } } });
    await coordinator.executeAgent("svc", "echo", {});
    expect(servers[0]!.agentCalls[0]!.headers["x-api-key"]).toBe("k");
  });
});

describe("per-instance circuit breakers", () => {
  // peer: TestCoordinator_ExecuteAgent_MarkUnhealthy (adapted: a failing instance is recorded by
  // its own breaker, and its opening stops calls to it, not to the service)
  it("one failing instance does not stop calls to a healthy one", async () => {
    const { coordinator, servers, client } = await setup(
      2,
      { retries: 2, random: () => 0 },
      { circuitBreaker: { maxFailures: 2, timeout: 60_000 } },
    );
    servers[0]!.route(/execute$/, { status: 500 });
    for (let i = 0; i < 10; i++)
      expect((await coordinator.executeAgent("svc", "echo", {})).status).toBe("success");
    expect(servers[0]!.agentCalls).toHaveLength(2);
    expect(servers[1]!.agentCalls).toHaveLength(10);
    expect(client.circuitBreaker(servers[0]!.url).state).toBe("open");
    expect(client.circuitBreaker(servers[1]!.url).state).toBe("closed");
  });

  it("a failure that opens the last circuit is the call's answer, and its event says why", async () => {
    const { coordinator, servers } = await setup(1, {
      retries: 3,
      services: { svc: { circuitBreaker: { maxFailures: 2, timeout: 60_000 } } },
    });
    servers[0]!.route(/execute$/, { status: 500 });
    const events: CallEvent[] = [];
    const outcome = await coordinator.call({ ...task(), onEvent: (e) => events.push(e) });
    expect(outcome.ok || outcome.error.code).toBe("http_status");
    expect(outcome.attempts).toBe(2);
    expect(events.at(-1)).toMatchObject({ type: "attempt_failed", gaveUp: "circuits_open" });
    expect(events.at(-1)).not.toHaveProperty("retryInMs");
  });

  it("breaker options per service", async () => {
    const { coordinator, servers, client } = await setup(1, {
      retries: 0,
      services: { svc: { circuitBreaker: { maxFailures: 1, timeout: 60_000 } } },
    });
    servers[0]!.route(/execute$/, { status: 500 });
    await rejection(coordinator.executeAgent("svc", "echo", {}), "http_status");
    expect(client.circuitBreaker(servers[0]!.url).state).toBe("open");
    await rejection(coordinator.executeAgent("svc", "echo", {}), "circuit_open");
    expect(servers[0]!.agentCalls).toHaveLength(1);
  });

  it("all open: circuit_open at once, nothing sent", async () => {
    const { coordinator, servers } = await setup(
      3,
      { retries: 2 },
      { circuitBreaker: { maxFailures: 1, timeout: 60_000 } },
    );
    for (const s of servers) s.route(/execute$/, { status: 503 });
    await rejection(coordinator.executeAgent("svc", "echo", {}), "http_status");
    const start = performance.now();
    const results = await coordinator.executeParallel(Array.from({ length: 10 }, () => task()));
    expect(since(start)).toBeLessThan(500);
    expect(results.map((x) => x.error?.code)).toEqual(Array(10).fill("circuit_open"));
    expect(servers.reduce((n, s) => n + s.agentCalls.length, 0)).toBe(3);
  });

  it("a half-open instance gets exactly one probe among 20 concurrent calls", async () => {
    const clock = { t: 0 };
    const { coordinator, servers, client } = await setup(
      1,
      { retries: 0, maxConcurrency: 32 },
      { circuitBreaker: { maxFailures: 1, timeout: 1000, now: () => clock.t } },
    );
    servers[0]!.enqueue(/execute$/, { status: 500 });
    servers[0]!.route(/execute$/, { delayMs: 100, json: agentOutput({ result: "probe" }) });
    await rejection(coordinator.executeAgent("svc", "echo", {}));
    clock.t += 1000;
    const results = await coordinator.executeParallel(Array.from({ length: 20 }, () => task()));
    expect(results.filter((x) => x.output)).toHaveLength(1);
    expect(results.filter((x) => x.error?.code === "circuit_open")).toHaveLength(19);
    expect(servers[0]!.agentCalls).toHaveLength(2);
    expect(client.circuitBreaker(servers[0]!.url).state).toBe("closed");
  });

  it("while one instance is half-open with its probe out, other calls go elsewhere", async () => {
    const clock = { t: 0 };
    const { coordinator, servers, client } = await setup(
      2,
      { retries: 0 },
      { circuitBreaker: { maxFailures: 1, timeout: 1000, now: () => clock.t } },
    );
    servers[1]!.enqueue(/execute$/, { status: 500 });
    // i0 succeeds, i1 fails and opens.
    await coordinator.executeAgent("svc", "echo", {});
    await rejection(coordinator.executeAgent("svc", "echo", {}));
    expect(client.circuitBreaker(servers[1]!.url).state).toBe("open");
    clock.t += 1000;
    const gate = deferred<Reply>();
    servers[1]!.route(/execute$/, () => gate.promise);
    const breaker = client.circuitBreaker(servers[1]!.url);
    expect(breaker.state).toBe("half-open");
    const probe = client.executeAgent(servers[1]!.url, "echo", {});
    await servers[1]!.waitForRequests(2);
    for (let i = 0; i < 3; i++) await coordinator.executeAgent("svc", "echo", {});
    expect(servers[0]!.agentCalls).toHaveLength(4);
    gate.resolve({ json: agentOutput() });
    await probe;
    expect(breaker.state).toBe("closed");
  });
});

describe("recovery through the coordinator", () => {
  it("a half-open instance gets its single probe from the coordinator while a healthy one takes the rest", async () => {
    const clock = { t: 0 };
    const { coordinator, servers, client } = await setup(
      2,
      { retries: 0 },
      { circuitBreaker: { maxFailures: 1, timeout: 1000, now: () => clock.t } },
    );
    servers[1]!.enqueue(/execute$/, { status: 500 });
    await coordinator.executeAgent("svc", "echo", {});
    await rejection(coordinator.executeAgent("svc", "echo", {}));
    expect(client.circuitBreaker(servers[1]!.url).state).toBe("open");
    // While open, every call goes to the healthy instance.
    for (let i = 0; i < 4; i++) await coordinator.executeAgent("svc", "echo", {});
    expect(servers[1]!.agentCalls).toHaveLength(1);
    clock.t += 1000;
    // Once half-open, the recovered instance is probed by ordinary calls and rejoins rotation.
    for (let i = 0; i < 4; i++) await coordinator.executeAgent("svc", "echo", {});
    expect(client.circuitBreaker(servers[1]!.url).state).toBe("closed");
    expect(servers[1]!.agentCalls.length).toBeGreaterThanOrEqual(2);
  });
});

describe("concurrency", () => {
  it("at most maxConcurrency agent calls in flight (50 tasks, 1 instance)", async () => {
    const { coordinator, servers } = await setup(1, { maxConcurrency: 5 });
    servers[0]!.route(/execute$/, { delayMs: 20, json: agentOutput() });
    const results = await coordinator.executeParallel(Array.from({ length: 50 }, () => task()));
    expect(results.every((x) => x.output)).toBe(true);
    expect(servers[0]!.maxInFlight).toBe(5);
  });

  it("the limit is global across instances and concurrent executeParallel calls", async () => {
    const { coordinator, servers } = await setup(3, { maxConcurrency: 4 });
    let inFlight = 0;
    let max = 0;
    for (const s of servers) {
      s.route(/execute$/, async () => {
        inFlight++;
        max = Math.max(max, inFlight);
        await new Promise((resolve) => setTimeout(resolve, 10));
        inFlight--;
        return { json: agentOutput() };
      });
    }
    const runs = await Promise.all([
      coordinator.executeParallel(Array.from({ length: 25 }, () => task())),
      coordinator.executeParallel(Array.from({ length: 25 }, () => task())),
    ]);
    expect(runs.flat().every((x) => x.output)).toBe(true);
    expect(max).toBeLessThanOrEqual(4);
    expect(max).toBeGreaterThanOrEqual(2);
  });

  it("the default limit is 16", async () => {
    const { coordinator, servers } = await setup(1);
    servers[0]!.route(/execute$/, { delayMs: 30, json: agentOutput() });
    await coordinator.executeParallel(Array.from({ length: 40 }, () => task()));
    expect(servers[0]!.maxInFlight).toBe(16);
  });
});

describe("timeouts", () => {
  it("the coordinator's timeout bounds each attempt; the next attempt goes elsewhere", async () => {
    const { coordinator, servers } = await setup(2, { timeout: 300 });
    servers[0]!.route(/execute$/, { hang: true });
    const start = performance.now();
    const outcome = await coordinator.call(task());
    expect(outcome.ok).toBe(true);
    expect(outcome.attempts).toBe(2);
    expect(since(start)).toBeGreaterThanOrEqual(290);
    expect(since(start)).toBeLessThan(2000);
    await servers[0]!.waitForSockets(0, 2000);
  });

  it("executeAgent's { timeout } is per attempt: every attempt times out", async () => {
    const { coordinator, servers } = await setup(1, { retries: 2, random: () => 0 });
    servers[0]!.route(/execute$/, { hang: true });
    const start = performance.now();
    const e = await rejection(coordinator.executeAgent("svc", "echo", {}, { timeout: 80 }), "timeout");
    expect(e.retryable).toBe(true);
    expect(servers[0]!.agentCalls).toHaveLength(3);
    expect(since(start)).toBeGreaterThanOrEqual(230);
    expect(since(start)).toBeLessThan(2000);
  });

  it("a service's timeout, and a request's own", async () => {
    const { coordinator, servers } = await setup(1, { retries: 0, services: { svc: { timeout: 80 } } });
    servers[0]!.route(/execute$/, { hang: true });
    await rejection(coordinator.executeAgent("svc", "echo", {}), "timeout");
    const outcome = await coordinator.call({ ...task(), timeout: 50 });
    expect(!outcome.ok && outcome.error.code).toBe("timeout");
  });

  it("executeAgentWithRetry's { timeout } is a deadline for the whole call: cancelled", async () => {
    const { coordinator, servers } = await setup(1);
    servers[0]!.route(/execute$/, { hang: true });
    const start = performance.now();
    await rejection(coordinator.executeAgentWithRetry("svc", "echo", {}, 5, { timeout: 150 }), "cancelled");
    expect(since(start)).toBeLessThan(1500);
    expect(servers[0]!.agentCalls).toHaveLength(1);
    await servers[0]!.waitForSockets(0, 2000);
  });

  it("the whole-call deadline also ends a backoff wait", async () => {
    const { coordinator, servers } = await setup(1, { backoff: { base: 10_000 }, random: () => 1 });
    servers[0]!.route(/execute$/, { status: 503 });
    const start = performance.now();
    await rejection(coordinator.executeAgentWithRetry("svc", "echo", {}, 3, { timeout: 150 }), "cancelled");
    expect(since(start)).toBeLessThan(1500);
  });

  it("executeParallel and executeSequential { timeout }: one deadline for the whole run", async () => {
    const { coordinator, servers } = await setup(1);
    servers[0]!.route(/execute$/, (req) =>
      (req.json as { task?: string }).task === "slow"
        ? { hang: true }
        : { json: agentOutput({ result: "ok" }) },
    );
    let start = performance.now();
    const parallel = await coordinator.executeParallel(
      [task("a", { task: "fast" }), task("a", { task: "slow" }), task("a", { task: "slow" })],
      { timeout: 500 },
    );
    expect(since(start)).toBeLessThan(2500);
    expect(parallel.map((x) => x.output?.result ?? x.error?.code)).toEqual(["ok", "cancelled", "cancelled"]);

    start = performance.now();
    const sequential = await coordinator.executeSequential(
      [task("a", { task: "fast" }), task("a", { task: "slow" }), task("a", { task: "fast" })],
      { timeout: 500 },
    );
    expect(since(start)).toBeLessThan(2500);
    expect(sequential.map((x) => x.output?.result ?? x.error?.code)).toEqual([
      "ok",
      "cancelled",
      "cancelled",
    ]);
    await servers[0]!.waitForIdle(2000);
  });
});

describe("cancellation", () => {
  it("abort mid-run: in-flight requests aborted, one result per task in order, the rest cancelled", async () => {
    const { coordinator, servers } = await setup(1, { maxConcurrency: 2 });
    servers[0]!.route(/execute$/, (req) =>
      (req.json as { task?: string }).task === "slow"
        ? { hang: true }
        : { json: agentOutput({ result: "ok" }) },
    );
    const tasks = [
      task("a", { task: "fast" }),
      task("a", { task: "fast" }),
      task("a", { task: "slow" }),
      task("a", { task: "slow" }),
      ...Array.from({ length: 6 }, () => task("a", { task: "fast" })),
    ];
    const controller = new AbortController();
    const run = coordinator.executeParallel(tasks, { signal: controller.signal });
    await servers[0]!.waitFor(
      () => servers[0]!.agentCalls.filter((q) => (q.json as { task: string }).task === "slow").length === 2,
    );
    const sentBefore = servers[0]!.agentCalls.length;
    controller.abort();
    const results = await run;
    expect(results).toHaveLength(tasks.length);
    for (const [i, x] of results.entries()) expect(x.task).toBe(tasks[i]);
    expect(results.map((x) => x.output?.result ?? x.error?.code)).toEqual([
      "ok",
      "ok",
      ...Array(8).fill("cancelled"),
    ]);
    await servers[0]!.waitForIdle(2000);
    expect(servers[0]!.agentCalls).toHaveLength(sentBefore);
  });

  it("a signal aborted before the run sends nothing and cancels everything", async () => {
    const { coordinator, servers } = await setup(1);
    const results = await coordinator.executeParallel([task(), task()], { signal: AbortSignal.abort() });
    expect(results.map((x) => x.error?.code)).toEqual(["cancelled", "cancelled"]);
    const seq = await coordinator.executeSequential([task(), task()], { signal: AbortSignal.abort() });
    expect(seq.map((x) => x.error?.code)).toEqual(["cancelled", "cancelled"]);
    expect(servers[0]!.requests).toHaveLength(0);
  });

  it("an abort during a backoff wait ends it at once", async () => {
    const { coordinator, servers } = await setup(1, { backoff: { base: 10_000 }, random: () => 1 });
    servers[0]!.route(/execute$/, { status: 503 });
    const controller = new AbortController();
    const call = coordinator.executeAgent("svc", "echo", {}, { signal: controller.signal });
    await servers[0]!.waitForRequests(1);
    const start = performance.now();
    controller.abort();
    await rejection(call, "cancelled");
    expect(since(start)).toBeLessThan(500);
  });
});

describe("executeParallel", () => {
  // peer: TestCoordinator_ExecuteParallel_Success, TestCoordinator_ExecuteParallel_Structure
  it("one result per task, in order", async () => {
    const { coordinator } = await setup(1, {}, {}, ["Agent1", "Agent2", "Agent3"]);
    const tasks = ["Agent1", "Agent2", "Agent3"].map((a, i) => task(a, { task: `task${i + 1}` }));
    const results = await coordinator.executeParallel(tasks);
    expect(results.map((x) => x.task.agentName)).toEqual(["Agent1", "Agent2", "Agent3"]);
    for (const x of results) {
      expect(x.error).toBeUndefined();
      expect(x.output!.status).toBe("success");
    }
  });

  // peer: TestCoordinator_ExecuteParallel_PartialFailure
  it("never rejects for a task: failures are results", async () => {
    const { coordinator, servers } = await setup(1, { retries: 0 });
    servers[0]!.route(/execute$/, (_req, n) =>
      n % 2 === 0 ? { status: 400, body: "error" } : { json: agentOutput() },
    );
    const results = await coordinator.executeParallel([task(), task(), task()]);
    expect(results).toHaveLength(3);
    expect(results.some((x) => x.error)).toBe(true);
    expect(results.some((x) => x.output)).toBe(true);
  });

  // peer: TestCoordinator_ExecuteParallel_Empty, TestCoordinator_ExecuteSequential_Empty
  it("no tasks, no results", async () => {
    const { coordinator } = await setup(1);
    expect(await coordinator.executeParallel([])).toEqual([]);
    expect(await coordinator.executeSequential([])).toEqual([]);
  });

  it("mixed services, unknown ones included", async () => {
    const { coordinator } = await setup(1);
    const results = await coordinator.executeParallel([
      task(),
      { serviceName: "nope", agentName: "echo", input: {} },
      task(".."),
    ]);
    expect(results.map((x) => x.output?.status ?? x.error?.code)).toEqual([
      "success",
      "unknown_service",
      "invalid",
    ]);
  });

  it("200 tasks against randomly failing instances: exactly 200 results, each output xor error", async () => {
    let seed = 42;
    const random = () => {
      seed = (seed * 1103515245 + 12345) % 2 ** 31;
      return seed / 2 ** 31;
    };
    const chaos = (): Reply => {
      const x = random();
      if (x < 0.15) return { status: 503 };
      if (x < 0.2) return { reset: true };
      if (x < 0.25) return { status: 500, body: "x".repeat(10_000) };
      if (x < 0.28) return { body: "{broken" };
      if (x < 0.3) return { status: 404 };
      if (x < 0.32) return { json: agentOutput({ status: "failed" }) };
      if (x < 0.34) return { hang: true };
      if (x < 0.36) return { destroyAfterBytes: 5 };
      return { delayMs: Math.floor(x * 5), json: agentOutput({ result: "ok" }) };
    };
    const { coordinator, servers } = await setup(
      3,
      { retries: 2, timeout: 1000, backoff: { base: 2, cap: 10 }, maxConcurrency: 24 },
      { circuitBreaker: { maxFailures: 1000 } },
    );
    for (const s of servers) s.route(/execute$/, chaos);
    const tasks = Array.from({ length: 200 }, (_, i) => task("echo", { task: `t${i}` }));
    const results = await coordinator.executeParallel(tasks);
    expect(results).toHaveLength(200);
    results.forEach((x, i) => {
      expect(x.task).toBe(tasks[i]);
      expect(Boolean(x.output) !== Boolean(x.error)).toBe(true);
    });
    // About 90% succeed; a loose bound, as slow machines time out more.
    expect(results.filter((x) => x.output).length).toBeGreaterThan(100);
  }, 30_000);
});

describe("executeSequential", () => {
  // peer: TestCoordinator_ExecuteSequential_Success, TestCoordinator_ExecuteSequential_Structure
  it("runs in order, chaining context.previous_output", async () => {
    const { coordinator, servers } = await setup(1, {}, {}, ["Agent1", "Agent2", "Agent3"]);
    servers[0]!.route(/execute$/, (req) => ({
      json: agentOutput({ result: `${(req.json as { task: string }).task} result` }),
    }));
    const tasks = [1, 2, 3].map((i) => task(`Agent${i}`, { task: `task${i}`, context: { keep: i } }));
    const results = await coordinator.executeSequential(tasks);
    expect(results.map((x) => x.output?.result)).toEqual(["task1 result", "task2 result", "task3 result"]);
    const sent = servers[0]!.agentCalls.map(
      (q) => q.json as { task: string; context?: Record<string, unknown> },
    );
    expect(sent.map((s) => s.task)).toEqual(["task1", "task2", "task3"]);
    expect(sent[0]!.context).toEqual({ keep: 1 });
    expect(sent[1]!.context).toEqual({ keep: 2, previous_output: "task1 result" });
    expect(sent[2]!.context).toEqual({ keep: 3, previous_output: "task2 result" });
    // The caller's tasks are left as they were.
    expect(tasks[1]!.input.context).toEqual({ keep: 2 });
  });

  // peer: TestCoordinator_ExecuteSequential_StopOnError
  it("stops at the first failure; the rest are skipped, naming the task they waited for", async () => {
    const { coordinator, servers } = await setup(1, { retries: 0 });
    servers[0]!.route(/execute$/, (_req, n) =>
      n === 2 ? { status: 500, body: "error" } : { json: agentOutput() },
    );
    const results = await coordinator.executeSequential([
      task("Agent1"),
      task("Agent2"),
      task("Agent3"),
      task("Agent4"),
    ]);
    expect(results).toHaveLength(4);
    expect(results[0]!.error).toBeUndefined();
    expect(results[1]!.error!.code).toBe("http_status");
    expect(results.slice(2).map((x) => x.error!.code)).toEqual(["skipped", "skipped"]);
    expect(results[2]!.error!.message).toContain("Agent2");
    expect(servers[0]!.agentCalls).toHaveLength(2);
  });

  it("an agent_failed output stops the chain too", async () => {
    const { coordinator, servers } = await setup(1);
    servers[0]!.route(/execute$/, { json: agentOutput({ status: "failed" }) });
    const results = await coordinator.executeSequential([task(), task()]);
    expect(results.map((x) => x.error?.code)).toEqual(["agent_failed", "skipped"]);
  });

  it("cancelled mid-chain: the tasks not started are cancelled", async () => {
    const { coordinator, servers } = await setup(1);
    servers[0]!.route(/execute$/, (_req, n) => (n === 2 ? { hang: true } : { json: agentOutput() }));
    const controller = new AbortController();
    const run = coordinator.executeSequential([task(), task(), task(), task()], {
      signal: controller.signal,
    });
    await servers[0]!.waitForRequests(2);
    controller.abort();
    const results = await run;
    expect(results.map((x) => x.output?.status ?? x.error?.code)).toEqual([
      "success",
      "cancelled",
      "cancelled",
      "cancelled",
    ]);
  });
});
