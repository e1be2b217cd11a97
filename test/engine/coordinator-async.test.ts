/** Async tasks through the coordinator (SPEC §2 "execute async", §4 "Async tasks", §8 resume). */
import { describe, expect, it } from "vitest";
import type { CallEvent, CallRequest, CoordinatorOptions } from "../../src/index.js";
import { startAgentServer } from "../../src/server/index.js";
import { agentOutput, type FakeAgentServer, freePort } from "../helpers/fake-agent-server.js";
import { registerAll, rejection, since, useResources } from "./util.js";

const r = useResources();

async function setup(n: number, options: CoordinatorOptions = {}) {
  const servers = await r.servers(n);
  const client = r.client();
  const registry = r.registry();
  registerAll(registry, "svc", servers);
  const coordinator = r.coordinator(registry, client, { pollInterval: 10, random: () => 0, ...options });
  return { servers, client, registry, coordinator };
}

const asyncTask = (extra: Partial<CallRequest> = {}): CallRequest => ({
  serviceName: "svc",
  agentName: "echo",
  input: { task: "t" },
  async: true,
  ...extra,
});

const submits = (s: FakeAgentServer) =>
  s.received((q) => q.method === "POST" && q.path.endsWith("/execute/async"));
const polls = (s: FakeAgentServer) => s.received((q) => q.method === "GET" && q.path.includes("/tasks/"));

describe("async tasks", () => {
  it("submits once, then polls the task id until 200", async () => {
    const { coordinator, servers } = await setup(1);
    const s = servers[0]!;
    s.route(/execute\/async$/, { status: 202, json: { task_id: "task-1" } });
    s.enqueue(/tasks/, { status: 202 }, { status: 202, json: { status: "running" } });
    s.route(/tasks/, { json: agentOutput({ result: "done" }) });
    const events: CallEvent[] = [];
    const outcome = await coordinator.call(asyncTask({ onEvent: (e) => events.push(e) }));
    expect(outcome.ok && outcome.output.result).toBe("done");
    expect(submits(s)).toHaveLength(1);
    expect(submits(s)[0]!.headers["idempotency-key"]).toBeTruthy();
    expect(polls(s).map((q) => q.path)).toEqual(Array(3).fill("/api/v1/agents/tasks/task-1"));
    expect(events.map((e) => e.type)).toEqual(["attempt", "async_submitted"]);
    expect(events[1]).toMatchObject({ taskId: "task-1", instance: "i0", endpoint: s.url, attempt: 1 });
  });

  it("polls every pollInterval", async () => {
    const { coordinator, servers } = await setup(1, { pollInterval: 60 });
    const s = servers[0]!;
    s.enqueue(/tasks/, { status: 202 }, { status: 202 });
    await coordinator.call(asyncTask());
    const at = polls(s).map((q) => q.at);
    expect(at).toHaveLength(3);
    expect(at[1]! - at[0]!).toBeGreaterThanOrEqual(50);
    expect(at[2]! - at[1]!).toBeGreaterThanOrEqual(50);
  });

  it("a per-call pollInterval overrides the coordinator's", async () => {
    const { coordinator, servers } = await setup(1, { pollInterval: 10_000 });
    const start = performance.now();
    const outcome = await coordinator.call(asyncTask({ pollInterval: 5 }));
    expect(outcome.ok).toBe(true);
    expect(since(start)).toBeLessThan(1500);
    expect(polls(servers[0]!)).toHaveLength(1);
  });

  it("poll failures (5xx, connection) are retried on the same task id without submitting again", async () => {
    const { coordinator, servers } = await setup(1, { retries: 2 });
    const s = servers[0]!;
    s.enqueue(/tasks/, { status: 503 }, { reset: true }, { status: 202 }, { status: 500 }, { status: 502 });
    const outcome = await coordinator.call(asyncTask());
    expect(outcome.ok).toBe(true);
    expect(outcome.attempts).toBe(1);
    expect(submits(s)).toHaveLength(1);
    expect(new Set(polls(s).map((q) => q.path))).toEqual(new Set(["/api/v1/agents/tasks/task-1"]));
    expect(polls(s)).toHaveLength(6);
  });

  it("more than `retries` consecutive poll failures fail the attempt; the next one submits again", async () => {
    const { coordinator, servers } = await setup(1, { retries: 1 });
    const s = servers[0]!;
    s.enqueue(/tasks/, { status: 503 }, { status: 503 });
    const events: CallEvent[] = [];
    const outcome = await coordinator.call(asyncTask({ onEvent: (e) => events.push(e) }));
    expect(outcome.ok).toBe(true);
    expect(outcome.attempts).toBe(2);
    expect(submits(s)).toHaveLength(2);
    const keys = submits(s).map((q) => q.headers["idempotency-key"]);
    expect(keys[0]).toBe(keys[1]);
    expect(
      events.filter((e) => e.type === "async_submitted").map((e) => (e as { taskId: string }).taskId),
    ).toEqual(["task-1", "task-2"]);
  });

  it("a 404 while polling means the task was lost: the next attempt submits again", async () => {
    const { coordinator, servers, client } = await setup(1);
    const s = servers[0]!;
    s.enqueue(/tasks/, { status: 404, json: { error: "unknown task" } });
    const outcome = await coordinator.call(asyncTask());
    expect(outcome.ok).toBe(true);
    expect(outcome.attempts).toBe(2);
    expect(submits(s)).toHaveLength(2);
    expect(polls(s).map((q) => q.path)).toEqual([
      "/api/v1/agents/tasks/task-1",
      "/api/v1/agents/tasks/task-2",
    ]);
    expect(client.circuitBreaker(s.url).failures).toBe(0);
  });

  it("a lost task on every attempt ends after retries + 1 submissions", async () => {
    const { coordinator, servers } = await setup(1, { retries: 2 });
    const s = servers[0]!;
    s.route(/tasks/, { status: 404 });
    const outcome = await coordinator.call(asyncTask());
    expect(outcome.ok).toBe(false);
    expect(!outcome.ok && outcome.error.status).toBe(404);
    expect(submits(s)).toHaveLength(3);
  });

  it("a task id that could not be polled (..) is bad_response: the submit was an attempt", async () => {
    const { coordinator, servers } = await setup(1);
    servers[0]!.route(/execute\/async$/, { status: 202, json: { task_id: ".." } });
    const outcome = await coordinator.call(asyncTask());
    expect(outcome).toMatchObject({
      ok: false,
      error: { code: "bad_response" },
      attempts: 1,
      instance: "i0",
    });
    expect(polls(servers[0]!)).toHaveLength(0);
  });

  it("a client closed while polling: invalid, but the submitted attempt still counts", async () => {
    const { coordinator, servers, client } = await setup(1);
    servers[0]!.route(/execute\/async$/, { status: 202, json: { task_id: "t-1" } });
    servers[0]!.route(/tasks/, { status: 202 });
    const call = coordinator.call(asyncTask());
    await servers[0]!.waitFor(() => polls(servers[0]!).length >= 1, 5000, "a poll");
    await client.close();
    const outcome = await call;
    expect(outcome).toMatchObject({ ok: false, error: { code: "invalid" }, attempts: 1, instance: "i0" });
  });

  it("a 404 on submit fails over like execute", async () => {
    const { coordinator, servers } = await setup(2, { retries: 0 });
    servers[0]!.route(/execute\/async$/, { status: 404 });
    const outcome = await coordinator.call(asyncTask());
    expect(outcome.ok).toBe(true);
    expect(outcome.instance).toBe("i1");
    expect(submits(servers[0]!)).toHaveLength(1);
    expect(submits(servers[1]!)).toHaveLength(1);
  });

  it("a failed async result is agent_failed, not retried", async () => {
    const { coordinator, servers } = await setup(1, { retries: 3 });
    servers[0]!.route(/tasks/, { json: agentOutput({ status: "failed", message: "nope" }) });
    const outcome = await coordinator.call(asyncTask());
    expect(!outcome.ok && outcome.error.code).toBe("agent_failed");
    expect(submits(servers[0]!)).toHaveLength(1);
  });

  it("the per-attempt timeout bounds submit and polls together", async () => {
    const { coordinator, servers } = await setup(1, { retries: 0 });
    servers[0]!.route(/tasks/, { status: 202 });
    const start = performance.now();
    const outcome = await coordinator.call(asyncTask({ timeout: 300 }));
    expect(!outcome.ok && outcome.error.code).toBe("timeout");
    expect(since(start)).toBeGreaterThanOrEqual(290);
    expect(since(start)).toBeLessThan(2000);
    expect(polls(servers[0]!).length).toBeGreaterThan(1);
  });

  it("a hanging poll is aborted by the attempt's timeout", async () => {
    const { coordinator, servers } = await setup(1, { retries: 0 });
    servers[0]!.route(/tasks/, { hang: true });
    const outcome = await coordinator.call(asyncTask({ timeout: 300 }));
    expect(!outcome.ok && outcome.error.code).toBe("timeout");
    await servers[0]!.waitForIdle(2000);
  });

  it("cancellation while polling stops the polls", async () => {
    const { coordinator, servers } = await setup(1);
    servers[0]!.route(/tasks/, { status: 202 });
    const controller = new AbortController();
    const call = coordinator.call(asyncTask(), { signal: controller.signal });
    await servers[0]!.waitFor(() => polls(servers[0]!).length >= 2);
    controller.abort();
    const outcome = await call;
    expect(!outcome.ok && outcome.error.code).toBe("cancelled");
    const after = servers[0]!.requests.length;
    // Nothing more arrives, however long we look (bounded by a later request on another path).
    await r.client().ping(servers[0]!.url);
    expect(servers[0]!.requests.length).toBe(after + 1);
  });

  it("resumeAsync polls an existing task id without submitting", async () => {
    const { coordinator, servers } = await setup(2);
    const s = servers[1]!;
    s.enqueue(/tasks/, { status: 202 });
    s.route("GET /api/v1/agents/tasks/task-9", { json: agentOutput({ result: "resumed" }) });
    const events: CallEvent[] = [];
    const outcome = await coordinator.call(
      asyncTask({ resumeAsync: { taskId: "task-9", endpoint: s.url }, onEvent: (e) => events.push(e) }),
    );
    expect(outcome.ok && outcome.output.result).toBe("resumed");
    expect(outcome.instance).toBe("i1");
    expect(submits(servers[0]!).length + submits(s).length).toBe(0);
    expect(polls(s).map((q) => q.path)).toEqual(Array(2).fill("/api/v1/agents/tasks/task-9"));
    expect(events.map((e) => e.type)).toEqual(["attempt"]);
  });

  it("resumeAsync on an endpoint that left the registry still polls it", async () => {
    const { coordinator } = await setup(1);
    const gone = await r.server();
    gone.route(/tasks\/old$/, { json: agentOutput({ result: "still there" }) });
    const outcome = await coordinator.call(
      asyncTask({ resumeAsync: { taskId: "old", endpoint: gone.url, instance: "gone-1" } }),
    );
    expect(outcome.ok && outcome.output.result).toBe("still there");
    expect(outcome.instance).toBe("gone-1");
  });

  it("resumeAsync of a task the server lost submits again", async () => {
    const { coordinator, servers } = await setup(1);
    const s = servers[0]!;
    s.route("GET /api/v1/agents/tasks/lost", { status: 404 });
    const outcome = await coordinator.call(
      asyncTask({ idempotencyKey: "run:1", resumeAsync: { taskId: "lost", endpoint: s.url } }),
    );
    expect(outcome.ok).toBe(true);
    expect(submits(s)).toHaveLength(1);
    expect(submits(s)[0]!.headers["idempotency-key"]).toBe("run:1");
  });

  it("resumeAsync with an unusable task id is invalid, nothing sent", async () => {
    const { coordinator, servers } = await setup(1);
    const outcome = await coordinator.call(
      asyncTask({ resumeAsync: { taskId: "..", endpoint: servers[0]!.url } }),
    );
    expect(!outcome.ok && outcome.error.code).toBe("invalid");
    expect(servers[0]!.requests).toHaveLength(0);
  });

  it("against the reference server", async () => {
    const server = await startAgentServer({ port: 0, recordRequests: true });
    r.defer(() => server.close());
    const registry = r.registry();
    registry.register({ id: "ref", serviceName: "svc", endpoint: server.url });
    const coordinator = r.coordinator(registry, r.client(), { pollInterval: 10 });
    const outcome = await coordinator.call({
      serviceName: "svc",
      agentName: "sleep",
      input: { task: "zzz", context: { ms: 50 } },
      async: true,
    });
    expect(outcome.ok).toBe(true);
    expect(server.agentRuns).toBe(1);
    const paths = server.requests.map((q) => `${q.method} ${q.path.replace(/tasks\/.*/, "tasks/ID")}`);
    expect(paths[0]).toBe("POST /api/v1/agents/sleep/execute/async");
    expect(paths.slice(1).every((p) => p === "GET /api/v1/agents/tasks/ID")).toBe(true);
  });

  it("a refused instance on submit fails over", async () => {
    const { coordinator, registry, servers } = await setup(1);
    registry.register({ id: "dead", serviceName: "svc", endpoint: `http://127.0.0.1:${await freePort()}` });
    for (let i = 0; i < 2; i++) expect((await coordinator.call(asyncTask())).ok).toBe(true);
    expect(submits(servers[0]!)).toHaveLength(2);
  });

  it("Client.executeAgentAsync + waitForAsyncResult directly", async () => {
    const { client, servers } = await setup(1);
    const id = await client.executeAgentAsync(servers[0]!.url, "echo", { task: "x" });
    const output = await client.waitForAsyncResult(servers[0]!.url, id, 5);
    expect(output.result).toMatchObject({ agent: "echo" });
    await rejection(client.waitForAsyncResult(servers[0]!.url, "missing", 5), "http_status");
  });
});
