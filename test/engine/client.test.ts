/**
 * The HTTP client against real servers (SPEC §2, §10): paths, endpoints with a prefix, headers,
 * keep-alive, the async calls, ping and list-agents. Errors by code are in errors.test.ts.
 */
import { readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import { Client, VERSION } from "../../src/index.js";
import { startAgentServer } from "../../src/server/index.js";
import { agentOutput, freePort } from "../helpers/fake-agent-server.js";
import { rejection, since, useResources } from "./util.js";

const r = useResources();
const PACKAGE_VERSION = (
  JSON.parse(readFileSync(new URL("../../package.json", import.meta.url), "utf8")) as { version: string }
).version;
const TRACEPARENT = /^00-([0-9a-f]{32})-([0-9a-f]{16})-01$/;

describe("paths", () => {
  it.each([
    ["a/b", "a%2Fb"],
    ["../admin", "..%2Fadmin"],
    ["..%2Fadmin", "..%252Fadmin"],
    ["my agent", "my%20agent"],
    ["été-代理", "%C3%A9t%C3%A9-%E4%BB%A3%E7%90%86"],
    ["a?b#c", "a%3Fb%23c"],
    ["...", "..."],
    [".hidden", ".hidden"],
  ])("agent %j arrives as one encoded segment", async (agent, segment) => {
    const server = await r.server();
    const client = r.client();
    await client.executeAgent(server.url, agent, { task: "t" });
    await client.executeAgentAsync(server.url, agent, { task: "t" });
    expect(server.requests.map((q) => `${q.method} ${q.path}`)).toEqual([
      `POST /api/v1/agents/${segment}/execute`,
      `POST /api/v1/agents/${segment}/execute/async`,
    ]);
  });

  it("task ids are one encoded segment too", async () => {
    const server = await r.server();
    server.route(/tasks/, { status: 202 });
    const client = r.client();
    await client.getAsyncResult(server.url, "../../health");
    await client.getAsyncResult(server.url, "id with/slash");
    expect(server.requests.map((q) => q.path)).toEqual([
      "/api/v1/agents/tasks/..%2F..%2Fhealth",
      "/api/v1/agents/tasks/id%20with%2Fslash",
    ]);
  });

  it.each([
    ["/team-a", "/team-a"],
    ["/team-a/", "/team-a"],
    ["/team-a//", "/team-a"],
    ["/a/b", "/a/b"],
    ["/", ""],
    ["", ""],
  ])("endpoint prefix %j joins without a double slash", async (suffix, prefix) => {
    const server = await r.server();
    const client = r.client();
    const endpoint = server.url + suffix;
    await client.executeAgent(endpoint, "echo", {});
    await client.executeAgentAsync(endpoint, "echo", {});
    await client.getAsyncResult(endpoint, "task-1");
    await client.ping(endpoint);
    await client.listAgents(endpoint);
    expect(server.requests.map((q) => q.path)).toEqual([
      `${prefix}/api/v1/agents/echo/execute`,
      `${prefix}/api/v1/agents/echo/execute/async`,
      `${prefix}/api/v1/agents/tasks/task-1`,
      `${prefix}/health`,
      `${prefix}/api/v1/agents`,
    ]);
  });
});

describe("headers", () => {
  // peer: TestClient_Headers
  it("content-type, accept, user-agent with the package version", async () => {
    const server = await r.server();
    const client = r.client();
    await client.executeAgent(server.url, "echo", { task: "t" });
    await client.ping(server.url);
    const [post, get] = server.requests;
    expect(post!.headers["content-type"]).toBe("application/json");
    expect(post!.headers.accept).toBe("application/json");
    expect(VERSION).toBe(PACKAGE_VERSION);
    expect(post!.headers["user-agent"]).toBe(`agentctl/${PACKAGE_VERSION}`);
    expect(get!.headers["user-agent"]).toBe(`agentctl/${PACKAGE_VERSION}`);
    expect(get!.headers.accept).toBe("application/json");
  });

  it("traceparent: one trace id per client, a new span id per request", async () => {
    const server = await r.server();
    const one = r.client();
    const two = r.client();
    await one.executeAgent(server.url, "echo", {});
    await one.executeAgent(server.url, "echo", {});
    await one.ping(server.url);
    await two.executeAgent(server.url, "echo", {});
    const parsed = server.requests.map((q) => TRACEPARENT.exec(String(q.headers.traceparent)));
    for (const p of parsed) expect(p).not.toBeNull();
    const [a, b, c, d] = parsed as RegExpExecArray[];
    expect(a![1]).toBe(one.traceId);
    expect(b![1]).toBe(a![1]);
    expect(c![1]).toBe(a![1]);
    expect(new Set([a![2], b![2], c![2]]).size).toBe(3);
    expect(d![1]).toBe(two.traceId);
    expect(d![1]).not.toBe(a![1]);
    expect(a![1]).not.toBe("0".repeat(32));
  });

  it("a given trace id is used", async () => {
    const server = await r.server();
    const traceId = "4bf92f3577b34da6a3ce929d0e0e4736";
    await r.client({ traceId }).executeAgent(server.url, "echo", {});
    expect(server.requests[0]!.headers.traceparent).toMatch(new RegExp(`^00-${traceId}-[0-9a-f]{16}-01$`));
  });

  it("configured headers on every call, per-call headers on top", async () => {
    const server = await r.server();
    const client = r.client({ headers: { authorization: "Bearer s3cret", "x-team": "a" } });
    await client.executeAgent(server.url, "echo", {}, { headers: { "x-team": "b", "x-extra": "1" } });
    await client.ping(server.url);
    const [post, get] = server.requests;
    expect(post!.headers.authorization).toBe("Bearer s3cret");
    expect(post!.headers["x-team"]).toBe("b");
    expect(post!.headers["x-extra"]).toBe("1");
    expect(get!.headers.authorization).toBe("Bearer s3cret");
    expect(get!.headers["x-team"]).toBe("a");
  });

  it("idempotency-key on execute and execute async only; random per call unless given", async () => {
    const server = await r.server();
    const client = r.client();
    await client.executeAgent(server.url, "echo", {});
    await client.executeAgent(server.url, "echo", {});
    await client.executeAgent(server.url, "echo", {}, { idempotencyKey: "run-1:task-a" });
    const id = await client.executeAgentAsync(server.url, "echo", {}, { idempotencyKey: "run-1:task-b" });
    await client.getAsyncResult(server.url, id);
    await client.ping(server.url);
    await client.listAgents(server.url);
    const keys = server.requests.map((q) => q.headers["idempotency-key"]);
    expect(keys[0]).toMatch(/\S{8,}/);
    expect(keys[1]).toMatch(/\S{8,}/);
    expect(keys[0]).not.toBe(keys[1]);
    expect(keys.slice(2)).toEqual(["run-1:task-a", "run-1:task-b", undefined, undefined, undefined]);
  });
});

describe("keep-alive", () => {
  it("many sequential calls reuse one connection", async () => {
    const server = await r.server();
    const client = r.client();
    for (let i = 0; i < 30; i++) await client.executeAgent(server.url, "echo", { task: `t${i}` });
    for (let i = 0; i < 5; i++) await client.ping(server.url);
    expect(server.requests).toHaveLength(35);
    expect(server.totalSockets).toBe(1);
    expect(new Set(server.requests.map((q) => q.socket))).toEqual(new Set([1]));
  });

  it("sequential coordinator calls keep one connection per instance", async () => {
    const servers = await r.servers(2);
    const registry = r.registry();
    registry.register({ id: "a", serviceName: "svc", endpoint: servers[0]!.url });
    registry.register({ id: "b", serviceName: "svc", endpoint: `${servers[1]!.url}/prefix` });
    const coordinator = r.coordinator(registry, r.client());
    for (let i = 0; i < 20; i++) await coordinator.executeAgent("svc", "echo", {});
    expect(servers.map((s) => [s.agentCalls.length, s.totalSockets])).toEqual([
      [10, 1],
      [10, 1],
    ]);
  });

  it("close() closes the pooled connections", async () => {
    const server = await r.server();
    const client = new Client();
    r.defer(() => client.close());
    await client.executeAgent(server.url, "echo", {});
    expect(server.openSockets).toBe(1);
    await client.close();
    await client.close(); // idempotent
    await server.waitForSockets(0, 2000);
  });
});

describe("calls", () => {
  // peer: TestClient_ExecuteAgent_Success
  it("executeAgent posts the input and returns the output", async () => {
    const server = await r.server();
    server.route(/execute$/, (req) => ({
      json: agentOutput({ result: "test result", message: "completed", metadata: { got: req.json } }),
    }));
    const output = await r.client().executeAgent(server.url, "TestAgent", { task: "test task" });
    expect(server.requests[0]!.method).toBe("POST");
    expect(server.requests[0]!.path).toBe("/api/v1/agents/TestAgent/execute");
    expect(output.status).toBe("success");
    expect(output.result).toBe("test result");
    expect(output.message).toBe("completed");
    expect((output.metadata.got as { task: string }).task).toBe("test task");
  });

  // peer: TestClient_ExecuteAgent_WithContext
  it("context is sent as an object", async () => {
    const server = await r.server();
    await r
      .client()
      .executeAgent(server.url, "a", { task: "t", context: { pod: "p", namespace: "default" } });
    expect((server.requests[0]!.json as { context: unknown }).context).toEqual({
      pod: "p",
      namespace: "default",
    });
  });

  // peer: TestClient_ExecuteAgent_LargeResponse
  it("a large (under the limit) response is read whole", async () => {
    const server = await r.server();
    server.route(/execute$/, { json: agentOutput({ result: "a".repeat(3 * 1024 * 1024) }) });
    const output = await r.client().executeAgent(server.url, "a", {});
    expect((output.result as string).length).toBe(3 * 1024 * 1024);
  });

  // peer: TestClient_ExecuteAgent_EmptyResponse
  it("an output with only a status", async () => {
    const server = await r.server();
    server.route(/execute$/, { json: { status: "success" } });
    const output = await r.client().executeAgent(server.url, "a", {});
    expect(output).toEqual({
      result: null,
      status: "success",
      message: "",
      reasoning_steps: [],
      tool_calls: [],
      latency: 0,
      timestamp: "",
      metadata: {},
    });
  });

  // peer: TestClient_MultipleExecutions, TestClient_ResponseBodyClose
  it("concurrent calls all succeed and leave no connection behind after close", async () => {
    const server = await r.server();
    server.route(/execute$/, (req) => ({ delayMs: 20, json: agentOutput({ result: req.json }) }));
    const client = new Client();
    r.defer(() => client.close());
    const outputs = await Promise.all(
      Array.from({ length: 20 }, (_, i) => client.executeAgent(server.url, "a", { task: `t${i}` })),
    );
    expect(outputs.map((o) => (o.result as { task: string }).task)).toEqual(
      Array.from({ length: 20 }, (_, i) => `t${i}`),
    );
    await client.close();
    await server.waitForSockets(0, 2000);
  });

  // peer: TestClient_NewClient_Configuration
  it("defaults: 60 s timeout, 16 MiB body limit", () => {
    const client = r.client();
    expect(client.timeout).toBe(60_000);
    expect(client.maxResponseBytes).toBe(16 * 1024 * 1024);
    expect(r.client({ timeout: 0 }).timeout).toBe(60_000);
  });

  // peer: TestClient_ExecuteAgentAsync_Success
  it("executeAgentAsync returns the task id from a 202", async () => {
    const server = await r.server();
    server.route(/execute\/async$/, { status: 202, json: { task_id: "task-123" } });
    expect(await r.client().executeAgentAsync(server.url, "TestAgent", { task: "x" })).toBe("task-123");
    expect(server.requests[0]!.path).toBe("/api/v1/agents/TestAgent/execute/async");
    expect(server.requests[0]!.method).toBe("POST");
  });

  // peer: TestClient_ExecuteAgentAsync_BadStatusCode, TestClient_ExecuteAgentAsync_InvalidJSON
  it("executeAgentAsync: 500 and invalid JSON fail", async () => {
    const server = await r.server();
    server.enqueue(/async$/, { status: 500, body: "Internal Server Error" });
    server.enqueue(/async$/, { status: 202, body: "invalid json" });
    const client = r.client();
    const e = await rejection(client.executeAgentAsync(server.url, "a", {}), "http_status");
    expect(e.body).toBe("Internal Server Error");
    await rejection(client.executeAgentAsync(server.url, "a", {}), "bad_response");
  });

  // peer: TestClient_GetAsyncResult_Completed, TestClient_GetAsyncResult_Pending
  it("getAsyncResult: 202 (empty body) is pending, 200 is done", async () => {
    const server = await r.server();
    server.enqueue(/tasks/, { status: 202 });
    server.enqueue(/tasks/, { status: 202, json: { status: "running" } });
    server.enqueue(/tasks/, { json: agentOutput({ result: "done" }) });
    const client = r.client();
    expect(await client.getAsyncResult(server.url, "task-123")).toEqual({ completed: false });
    expect(await client.getAsyncResult(server.url, "task-123")).toEqual({ completed: false });
    const done = await client.getAsyncResult(server.url, "task-123");
    expect(done.completed).toBe(true);
    expect(done.output!.result).toBe("done");
    expect(server.requests.every((q) => q.method === "GET")).toBe(true);
    expect(server.requests[0]!.path).toBe("/api/v1/agents/tasks/task-123");
    expect(server.requests[0]!.headers["content-type"]).toBeUndefined();
  });

  // peer: TestClient_GetAsyncResult_BadStatusCode
  it("getAsyncResult: 500 and 404 fail", async () => {
    const server = await r.server();
    server.enqueue(/tasks/, { status: 500 });
    const client = r.client();
    expect((await rejection(client.getAsyncResult(server.url, "t"), "http_status")).status).toBe(500);
    expect((await rejection(client.getAsyncResult(server.url, "t"), "http_status")).status).toBe(404);
  });

  // peer: TestClient_WaitForAsyncResult_Completes
  it("waitForAsyncResult polls until the task is done", async () => {
    const server = await r.server();
    server.enqueue(/tasks/, { status: 202 }, { status: 202 });
    server.route(/tasks/, { json: agentOutput({ result: "test result" }) });
    const output = await r.client().waitForAsyncResult(server.url, "task-123", 10);
    expect(output.result).toBe("test result");
    expect(server.requests).toHaveLength(3);
  });

  // peer: TestClient_WaitForAsyncResult_ContextCancelled
  it("waitForAsyncResult stops when cancelled", async () => {
    const server = await r.server();
    server.route(/tasks/, { status: 202 });
    const client = r.client();
    await rejection(
      client.waitForAsyncResult(server.url, "t", 10, { signal: AbortSignal.abort() }),
      "cancelled",
    );
    const controller = new AbortController();
    const waiting = client.waitForAsyncResult(server.url, "t", 10, { signal: controller.signal });
    await server.waitForRequests(2);
    controller.abort();
    await rejection(waiting, "cancelled");
  });

  // peer: TestClient_Ping_Success, TestClient_Ping_Failure, TestClient_Ping_ConnectionError
  it("ping: 200 resolves, 500 and a refused port reject", async () => {
    const server = await r.server();
    const client = r.client();
    await client.ping(server.url);
    expect(server.requests[0]!.method).toBe("GET");
    expect(server.requests[0]!.path).toBe("/health");
    server.route("GET /health", { status: 500 });
    expect((await rejection(client.ping(server.url), "http_status")).status).toBe(500);
    await rejection(client.ping(`http://127.0.0.1:${await freePort()}`), "connection");
  });

  it("ping honours its timeout and closes the socket", async () => {
    const server = await r.server();
    server.route("GET /health", { hang: true });
    const start = performance.now();
    await rejection(r.client().ping(server.url, { timeout: 100 }), "timeout");
    expect(since(start)).toBeLessThan(1500);
    await server.waitForSockets(0, 2000);
  });

  it("a long timeout (left to undici's coarse timers) still ends a hanging call with `timeout`", async () => {
    const server = await r.server();
    server.route(/execute$/, { hang: true });
    const start = performance.now();
    const e = await rejection(r.client().executeAgent(server.url, "echo", {}, { timeout: 5000 }), "timeout");
    expect(e.retryable).toBe(true);
    expect(since(start)).toBeGreaterThanOrEqual(4900);
    expect(since(start)).toBeLessThan(8000);
    await server.waitForSockets(0, 2000);
  });

  // peer: TestClient_ListAgents_Success, TestClient_ListAgents_BadStatusCode, TestClient_ListAgents_InvalidJSON
  it("listAgents", async () => {
    const server = await r.server({ agents: ["Agent1", "Agent2", "Agent3"] });
    const client = r.client();
    expect(await client.listAgents(server.url)).toEqual(["Agent1", "Agent2", "Agent3"]);
    expect(server.requests[0]!.path).toBe("/api/v1/agents");
    server.enqueue("GET /api/v1/agents", { json: { agents: null } });
    expect(await client.listAgents(server.url)).toEqual([]);
    server.enqueue("GET /api/v1/agents", { status: 500 });
    await rejection(client.listAgents(server.url), "http_status");
    server.enqueue("GET /api/v1/agents", { body: "invalid json" });
    await rejection(client.listAgents(server.url), "bad_response");
  });
});

describe("against the reference agent server", () => {
  it("executes, submits and polls, pings and lists", async () => {
    const server = await startAgentServer({ port: 0, recordRequests: true });
    r.defer(() => server.close());
    const client = r.client();
    const output = await client.executeAgent(server.url, "upper", { task: "hello" });
    expect(output.status).toBe("success");
    expect(output.result).toBe("HELLO");
    const id = await client.executeAgentAsync(server.url, "wordcount", { task: "one two three" });
    const done = await client.waitForAsyncResult(server.url, id, 10);
    expect(done.result).toEqual({ words: 3 });
    await client.ping(server.url);
    expect(await client.listAgents(server.url)).toEqual(
      expect.arrayContaining(["echo", "upper", "wordcount", "sleep", "fail"]),
    );
    const failed = await client.executeAgent(server.url, "fail", {});
    expect(failed.status).toBe("failed");
    expect((await rejection(client.executeAgent(server.url, "nope", {}), "http_status")).status).toBe(404);
  });
});
