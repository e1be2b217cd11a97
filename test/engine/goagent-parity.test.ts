/**
 * Parity with the Go `goagent` package's own tests (`distributed/*_test.go`): the behaviours they
 * check that no other engine test covers. Most Go tests have a peer elsewhere in test/engine
 * (marked `// peer: TestName`); this file holds the rest. Where goagent and SPEC.md differ, the
 * SPEC behaviour is tested.
 */
import { describe, expect, it } from "vitest";
import { type AgentTask, type CallEvent, CircuitBreaker } from "../../src/index.js";
import { waitUntil } from "../helpers/cli.js";
import { agentOutput, freePort } from "../helpers/fake-agent-server.js";
import { rejection, since, useResources } from "./util.js";

const r = useResources();

const boom = () => Promise.reject(new Error("test error"));
const ok = () => Promise.resolve("ok");

// distributed/circuit_breaker_test.go: TestCircuitBreaker_OpenState, TestCircuitBreaker_HalfOpenState,
// TestCircuitBreaker_RapidStateTransitions (the Go tests run on the real clock; the peers in
// circuit-breaker.test.ts inject one)
describe("circuit breaker on the real clock", () => {
  it("stays open before its timeout, then lets one probe through whose success closes it, three cycles running", async () => {
    const cb = new CircuitBreaker({ maxFailures: 2, timeout: 500 });
    for (let cycle = 0; cycle < 3; cycle++) {
      for (let i = 0; i < 2; i++) await cb.execute(boom).catch(() => undefined);
      const opened = performance.now();
      expect(cb.state).toBe("open");
      let calls = 0;
      await rejection(
        cb.execute(async () => {
          calls++;
        }),
        "circuit_open",
      );
      expect(calls).toBe(0);
      await waitUntil(() => cb.state === "half-open", 3000, "half-open");
      expect(since(opened)).toBeGreaterThanOrEqual(250);
      expect(await cb.execute(ok)).toBe("ok");
      expect(cb.state).toBe("closed");
      expect(cb.failures).toBe(0);
    }
  });

  it("a failed probe reopens it for another full timeout", async () => {
    const cb = new CircuitBreaker({ maxFailures: 2, timeout: 500 });
    for (let i = 0; i < 2; i++) await cb.execute(boom).catch(() => undefined);
    await waitUntil(() => cb.state === "half-open", 3000, "half-open");
    await expect(cb.execute(boom)).rejects.toThrow("test error");
    const reopened = performance.now();
    expect(cb.state).toBe("open");
    await rejection(cb.execute(ok), "circuit_open");
    await waitUntil(() => cb.state === "half-open", 3000, "half-open again");
    expect(since(reopened)).toBeGreaterThanOrEqual(250);
  });
});

// distributed/client_distributed_test.go: TestClient_CircuitBreaker_ClosesOnSuccess,
// TestClient_CircuitBreaker_IntegrationWithRetries (real clock, over HTTP)
describe("client breaker recovery over HTTP on the real clock", () => {
  it("3 failures open the endpoint's breaker, blocked calls never reach the server, and after the open time a probe closes it", async () => {
    const server = await r.server();
    server.enqueue(/execute$/, { status: 503 }, { status: 503 }, { status: 503 });
    server.route(/execute$/, { json: agentOutput({ result: "recovered" }) });
    const client = r.client({ circuitBreaker: { maxFailures: 3, timeout: 600 } });
    const breaker = client.circuitBreaker(server.url);
    for (let i = 0; i < 3; i++) {
      await rejection(client.executeAgent(server.url, "TestAgent", { task: "test" }), "http_status");
    }
    const opened = performance.now();
    expect(breaker.state).toBe("open");
    for (let i = 0; i < 2; i++) {
      await rejection(client.executeAgent(server.url, "TestAgent", { task: "test" }), "circuit_open");
    }
    expect(server.agentCalls).toHaveLength(3);
    await waitUntil(() => breaker.state === "half-open", 5000, "half-open");
    expect(since(opened)).toBeGreaterThanOrEqual(300);
    const output = await client.executeAgent(server.url, "TestAgent", { task: "test" });
    expect(output.status).toBe("success");
    expect(output.result).toBe("recovered");
    expect(breaker.state).toBe("closed");
    expect((await client.executeAgent(server.url, "TestAgent", { task: "test" })).result).toBe("recovered");
    expect(server.agentCalls).toHaveLength(5);
  });
});

// distributed/client_distributed_test.go: TestClient_Ping_ConnectionError,
// TestClient_CircuitBreaker_ConnectionFailures. Go also dials a host that does not resolve; a
// DNS query would leave loopback, so the refused-port peers in circuit-breaker.test.ts stand in.
describe("an endpoint that cannot be dialled", () => {
  // SPEC §3 differs from goagent: Go dials "host:99999" and counts the dial error; an endpoint
  // that is not a valid URL is an argument the library cannot use (`invalid`, not counted).
  it("an out-of-range port is invalid, not retryable, and never counts against the endpoint", async () => {
    const bad = "http://127.0.0.1:99999";
    const client = r.client({ circuitBreaker: { maxFailures: 1, timeout: 60_000 } });
    for (let i = 0; i < 3; i++) {
      const e = await rejection(client.executeAgent(bad, "TestAgent", { task: "test" }), "invalid");
      expect(e.retryable).toBe(false);
    }
    await rejection(client.ping(bad), "invalid");
    expect(client.circuitBreaker(bad).state).toBe("closed");
    expect(client.circuitBreaker(bad).failures).toBe(0);
  });
});

// distributed/coordinator_test.go: TestCoordinator_ExecuteParallel_Structure,
// TestCoordinator_ExecuteSequential_Structure (an instance with no server behind it)
describe("batches against an unreachable instance", () => {
  async function unreachable(agents: string[]) {
    const registry = r.registry();
    registry.register({
      id: "instance-1",
      serviceName: "test-service",
      endpoint: `http://127.0.0.1:${await freePort()}`,
      agents,
    });
    return r.coordinator(registry, r.client(), { random: () => 0 });
  }
  const tasks = (names: string[]): AgentTask[] =>
    names.map((agentName, i) => ({
      serviceName: "test-service",
      agentName,
      input: { task: `task${i + 1}` },
    }));

  it("executeParallel resolves with one connection error per task, in task order", async () => {
    const coordinator = await unreachable(["Agent1", "Agent2"]);
    const batch = tasks(["Agent1", "Agent2"]);
    const results = await coordinator.executeParallel(batch);
    expect(results).toHaveLength(2);
    expect(results.map((x) => x.task.agentName)).toEqual(["Agent1", "Agent2"]);
    results.forEach((x, i) => {
      expect(x.task).toBe(batch[i]);
      expect(x.output).toBeUndefined();
      expect(x.error!.code).toBe("connection");
      expect(x.error!.instance).toBe("instance-1");
    });
  });

  it("executeSequential resolves with one entry per task: the connection error, then skipped", async () => {
    const coordinator = await unreachable(["Agent1", "Agent2", "Agent3"]);
    const results = await coordinator.executeSequential(tasks(["Agent1", "Agent2", "Agent3"]));
    expect(results.map((x) => x.task.agentName)).toEqual(["Agent1", "Agent2", "Agent3"]);
    expect(results.map((x) => x.error?.code)).toEqual(["connection", "skipped", "skipped"]);
    expect(results[1]!.error!.message).toContain("Agent1");
  });
});

// distributed/coordinator_advanced_test.go: TestCoordinator_ConcurrentExecutions (five instances
// registered on one and the same endpoint)
describe("several instances sharing one endpoint", () => {
  it("20 concurrent calls all succeed, round robin spreads them 4 per instance id", async () => {
    const server = await r.server();
    server.route(/execute$/, { delayMs: 10, json: agentOutput({ result: "test result" }) });
    const registry = r.registry();
    for (let i = 1; i <= 5; i++) {
      registry.register({
        id: `instance-${i}`,
        serviceName: "test-service",
        endpoint: server.url,
        agents: ["TestAgent"],
      });
    }
    const client = r.client();
    const coordinator = r.coordinator(registry, client);
    const used: string[] = [];
    const outcomes = await Promise.all(
      Array.from({ length: 20 }, () =>
        coordinator.call({
          serviceName: "test-service",
          agentName: "TestAgent",
          input: { task: "test task" },
          onEvent: (e: CallEvent) => {
            if (e.type === "attempt") used.push(e.instance);
          },
        }),
      ),
    );
    expect(outcomes.filter((o) => o.ok)).toHaveLength(20);
    expect(server.agentCalls).toHaveLength(20);
    const perInstance = new Map<string, number>();
    for (const id of used) perInstance.set(id, (perInstance.get(id) ?? 0) + 1);
    expect([...perInstance.keys()].sort()).toEqual([1, 2, 3, 4, 5].map((i) => `instance-${i}`));
    expect([...perInstance.values()]).toEqual([4, 4, 4, 4, 4]);
    expect(client.circuitBreaker(server.url).failures).toBe(0);
  });
});

// distributed/coordinator_advanced_test.go: TestCoordinator_ExecuteSequential_Success (inputs with
// no context at all; goagent fills the caller's Input.Context in place, agentctl sends it)
describe("executeSequential with inputs that have no context", () => {
  it("the second and third calls get context.previous_output; the first gets none; the caller's inputs stay untouched", async () => {
    const server = await r.server();
    server.route(/execute$/, (req) => ({
      json: agentOutput({ result: `${(req.json as { task: string }).task} result` }),
    }));
    const registry = r.registry();
    registry.register({
      id: "instance-1",
      serviceName: "test-service",
      endpoint: server.url,
      agents: ["Agent1", "Agent2", "Agent3"],
    });
    const coordinator = r.coordinator(registry, r.client());
    const batch: AgentTask[] = [1, 2, 3].map((i) => ({
      serviceName: "test-service",
      agentName: `Agent${i}`,
      input: { task: `task${i}` },
    }));
    const results = await coordinator.executeSequential(batch);
    expect(results.map((x) => x.output?.result)).toEqual(["task1 result", "task2 result", "task3 result"]);
    const sent = server.agentCalls.map((q) => q.json as { task: string; context?: Record<string, unknown> });
    expect(sent.map((s) => s.task)).toEqual(["task1", "task2", "task3"]);
    expect(sent[0]!.context?.previous_output).toBeUndefined();
    expect(sent[1]!.context).toEqual({ previous_output: "task1 result" });
    expect(sent[2]!.context).toEqual({ previous_output: "task2 result" });
    for (const t of batch) expect(t.input.context).toBeUndefined();
  });
});
