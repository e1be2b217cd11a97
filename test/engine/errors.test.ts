/**
 * SPEC §3: every error code produced by a real failure over real HTTP, with `retryable` and
 * whether it counts against the instance (the per-endpoint breaker's failure count).
 */
import { describe, expect, it } from "vitest";
import { AgentctlError, ERROR_CODES } from "../../src/index.js";
import { agentOutput, freePort } from "../helpers/fake-agent-server.js";
import { rejection, since, useResources } from "./util.js";

const r = useResources();

/** A coordinator over one instance, no retries: the error of one attempt, and the breaker's count. */
async function throughCoordinator(endpoint: string, agent = "echo") {
  const client = r.client();
  const registry = r.registry();
  registry.register({ id: "only", serviceName: "svc", endpoint });
  const coordinator = r.coordinator(registry, client, { retries: 0 });
  const error = await rejection(coordinator.executeAgent("svc", agent, { task: "t" }));
  return { error, failures: client.circuitBreaker(endpoint).failures };
}

describe("AgentctlError", () => {
  it("is one exported class with a stable code list", () => {
    expect(ERROR_CODES).toEqual([
      "connection",
      "timeout",
      "http_status",
      "bad_response",
      "agent_failed",
      "circuit_open",
      "no_instances",
      "unknown_service",
      "cancelled",
      "template",
      "invalid",
      "skipped",
      "assertion",
    ]);
    const e = new AgentctlError("http_status", "boom", { status: 503, endpoint: "http://x" });
    expect(e).toBeInstanceOf(Error);
    expect(e.name).toBe("AgentctlError");
    expect(e.retryable).toBe(true);
    expect(e.countsAgainstInstance).toBe(true);
    expect(JSON.parse(JSON.stringify(e))).toEqual({ code: "http_status", message: "boom", status: 503 });
    const a = new AgentctlError("assertion", "expect failed");
    expect([a.retryable, a.countsAgainstInstance]).toEqual([false, false]);
  });
});

describe("connection", () => {
  // peer: TestClient_Ping_ConnectionError (an unreachable endpoint, here on execute too)
  it("refused port: retryable, counts against the instance", async () => {
    const endpoint = `http://127.0.0.1:${await freePort()}`;
    const client = r.client();
    const e = await rejection(client.executeAgent(endpoint, "echo", { task: "t" }), "connection");
    expect(e.retryable).toBe(true);
    expect(e.countsAgainstInstance).toBe(true);
    expect(e.endpoint).toBe(endpoint);
    expect(e.agent).toBe("echo");
    const viaCoordinator = await throughCoordinator(endpoint);
    expect(viaCoordinator.error.code).toBe("connection");
    expect(viaCoordinator.error.instance).toBe("only");
    expect(viaCoordinator.failures).toBe(1);
  });

  it("connection reset by the server", async () => {
    const server = await r.server();
    server.route(/execute$/, { reset: true });
    const e = await rejection(r.client().executeAgent(server.url, "echo", {}), "connection");
    expect(e.retryable).toBe(true);
    const viaCoordinator = await throughCoordinator(server.url);
    expect(viaCoordinator.error.code).toBe("connection");
    expect(viaCoordinator.failures).toBe(1);
  });

  it("socket destroyed in the middle of the body", async () => {
    const server = await r.server();
    server.route(/execute$/, { destroyAfterBytes: 20 });
    const e = await rejection(r.client().executeAgent(server.url, "echo", {}), "connection");
    expect(e.retryable).toBe(true);
    expect(e.countsAgainstInstance).toBe(true);
  });
});

describe("timeout", () => {
  // peer: TestClient_ExecuteAgent_Timeout
  it("a hanging server: the attempt times out and its socket is closed", async () => {
    const server = await r.server();
    server.route(/execute$/, { hang: true });
    const client = r.client({ timeout: 150 });
    const start = performance.now();
    const e = await rejection(client.executeAgent(server.url, "echo", {}), "timeout");
    expect(since(start)).toBeGreaterThanOrEqual(140);
    expect(since(start)).toBeLessThan(1500);
    expect(e.retryable).toBe(true);
    expect(e.countsAgainstInstance).toBe(true);
    // The aborted request really closed its connection.
    await server.waitForSockets(0, 2000);
    expect(server.totalSockets).toBe(1);
  });

  it("a per-call timeout overrides the client's", async () => {
    const server = await r.server();
    server.route(/execute$/, { hang: true });
    const start = performance.now();
    await rejection(
      r.client({ timeout: 60_000 }).executeAgent(server.url, "echo", {}, { timeout: 100 }),
      "timeout",
    );
    expect(since(start)).toBeLessThan(1500);
  });

  it("headers sent, body never finished: still a timeout", async () => {
    const server = await r.server();
    server.route(/execute$/, { declaredLength: 1000, body: '{"status":' });
    const client = r.client({ timeout: 150 });
    await rejection(client.executeAgent(server.url, "echo", {}), "timeout");
    await server.waitForSockets(0, 2000);
  });

  it("through the coordinator it counts against the instance", async () => {
    const server = await r.server();
    server.route(/execute$/, { hang: true });
    const client = r.client({ timeout: 100 });
    const registry = r.registry();
    registry.register({ id: "only", serviceName: "svc", endpoint: server.url });
    const coordinator = r.coordinator(registry, client, { retries: 0 });
    await rejection(coordinator.executeAgent("svc", "echo", {}), "timeout");
    expect(client.circuitBreaker(server.url).failures).toBe(1);
  });
});

describe("http_status", () => {
  // peer: TestClient_ExecuteAgent_BadStatusCode
  it.each([429, 500, 502, 503, 504])("%i is retryable", async (status) => {
    const server = await r.server();
    server.route(/execute$/, { status, body: `status ${status}` });
    const e = await rejection(r.client().executeAgent(server.url, "echo", {}), "http_status");
    expect(e.status).toBe(status);
    expect(e.retryable).toBe(true);
    expect(e.countsAgainstInstance).toBe(status >= 500);
    expect(e.body).toBe(`status ${status}`);
    const viaCoordinator = await throughCoordinator(server.url);
    expect(viaCoordinator.error.status).toBe(status);
    expect(viaCoordinator.failures).toBe(status >= 500 ? 1 : 0);
  });

  it.each([400, 401, 403, 404, 409, 422])("%i is not retryable and does not count", async (status) => {
    const server = await r.server();
    server.route(/execute$/, { status, json: { error: "nope" } });
    const e = await rejection(r.client().executeAgent(server.url, "echo", {}), "http_status");
    expect(e.status).toBe(status);
    expect(e.retryable).toBe(false);
    expect(e.countsAgainstInstance).toBe(false);
    expect(e.body).toBe('{"error":"nope"}');
    const viaCoordinator = await throughCoordinator(server.url);
    expect(viaCoordinator.error.code).toBe("http_status");
    expect(viaCoordinator.failures).toBe(0);
    // One attempt: a non-retryable error ends the task at once.
    expect(server.agentCalls).toHaveLength(2);
  });

  it("keeps only the first 4 KiB of an error body, as text", async () => {
    const server = await r.server();
    const big = "0123456789abcdef".repeat(64 * 1024); // 1 MiB
    server.route(/execute$/, { status: 500, body: big });
    const e = await rejection(r.client().executeAgent(server.url, "echo", {}), "http_status");
    expect(e.body).toHaveLength(4096);
    expect(big.startsWith(e.body!)).toBe(true);
    expect(e.message.length).toBeLessThan(1024);
  });

  it("an endless error body ends after 4 KiB", async () => {
    const server = await r.server();
    server.route(/execute$/, {
      status: 502,
      stream: { totalBytes: Number.POSITIVE_INFINITY, chunkBytes: 1024 },
    });
    const start = performance.now();
    const e = await rejection(r.client().executeAgent(server.url, "echo", {}), "http_status");
    expect(e.status).toBe(502);
    expect(e.body!.length).toBeLessThanOrEqual(4096);
    expect(since(start)).toBeLessThan(1500);
    await server.waitForSockets(0, 2000);
  });

  it("an error body counts against max_response_bytes only up to what is kept", async () => {
    const server = await r.server();
    server.route(/execute$/, { status: 503, body: "x".repeat(10_000) });
    const e = await rejection(
      r.client({ maxResponseBytes: 100 }).executeAgent(server.url, "echo", {}),
      "http_status",
    );
    expect(e.body!.length).toBeLessThanOrEqual(4096);
  });

  it("Retry-After in seconds on 429 and 503", async () => {
    const server = await r.server();
    server.enqueue(/execute$/, { status: 429, headers: { "retry-after": "7" } });
    server.enqueue(/execute$/, { status: 503, headers: { "retry-after": " 2 " } });
    const client = r.client();
    expect((await rejection(client.executeAgent(server.url, "echo", {}))).retryAfterMs).toBe(7000);
    expect((await rejection(client.executeAgent(server.url, "echo", {}))).retryAfterMs).toBe(2000);
  });

  it("Retry-After as an HTTP date", async () => {
    const server = await r.server();
    const at = new Date(Date.now() + 10_000).toUTCString();
    server.route(/execute$/, { status: 503, headers: { "retry-after": at } });
    const e = await rejection(r.client().executeAgent(server.url, "echo", {}));
    // HTTP dates have 1 s resolution.
    expect(e.retryAfterMs).toBeGreaterThan(7000);
    expect(e.retryAfterMs).toBeLessThanOrEqual(10_000);
  });

  it("Retry-After is capped at 30 s, and ignored when not 429/503 or unparseable", async () => {
    const server = await r.server();
    server.enqueue(/execute$/, { status: 429, headers: { "retry-after": "3600" } });
    server.enqueue(/execute$/, {
      status: 503,
      headers: { "retry-after": new Date(Date.now() + 3_600_000).toUTCString() },
    });
    server.enqueue(/execute$/, { status: 500, headers: { "retry-after": "5" } });
    server.enqueue(/execute$/, { status: 503, headers: { "retry-after": "soon" } });
    const client = r.client();
    expect((await rejection(client.executeAgent(server.url, "echo", {}))).retryAfterMs).toBe(30_000);
    expect((await rejection(client.executeAgent(server.url, "echo", {}))).retryAfterMs).toBe(30_000);
    expect((await rejection(client.executeAgent(server.url, "echo", {}))).retryAfterMs).toBeUndefined();
    expect((await rejection(client.executeAgent(server.url, "echo", {}))).retryAfterMs).toBeUndefined();
  });

  it("unexpected success statuses are errors too (execute wants 200, async submit 202)", async () => {
    const server = await r.server();
    server.enqueue(/execute$/, { status: 201, json: agentOutput() });
    server.enqueue(/execute\/async$/, { status: 200, json: { task_id: "t" } });
    const client = r.client();
    expect((await rejection(client.executeAgent(server.url, "echo", {}), "http_status")).status).toBe(201);
    expect((await rejection(client.executeAgentAsync(server.url, "echo", {}), "http_status")).status).toBe(
      200,
    );
  });
});

describe("bad_response", () => {
  // peer: TestClient_ExecuteAgent_InvalidJSON
  it("invalid JSON: not retryable, counts against the instance", async () => {
    const server = await r.server();
    server.route(/execute$/, { body: "{not json", headers: { "content-type": "application/json" } });
    const e = await rejection(r.client().executeAgent(server.url, "echo", {}), "bad_response");
    expect(e.retryable).toBe(false);
    expect(e.countsAgainstInstance).toBe(true);
    const viaCoordinator = await throughCoordinator(server.url);
    expect(viaCoordinator.error.code).toBe("bad_response");
    expect(viaCoordinator.failures).toBe(1);
  });

  it.each([
    ["an empty body", ""],
    ["a JSON array", "[1,2]"],
    ["a JSON string", '"ok"'],
    ["null", "null"],
  ])("%s where an AgentOutput belongs", async (_name, body) => {
    const server = await r.server();
    server.route(/execute$/, { body });
    await rejection(r.client().executeAgent(server.url, "echo", {}), "bad_response");
  });

  it("a body nested deeper than 1,000 levels (which would overflow the stack later on)", async () => {
    const server = await r.server();
    const nested = (depth: number) =>
      `{"status":"success","result":${"[".repeat(depth)}${"]".repeat(depth)}}`;
    server.route("POST /api/v1/agents/deep/execute", { body: nested(100_000) });
    server.route("POST /api/v1/agents/fine/execute", { body: nested(999) });
    const client = r.client();
    const e = await rejection(client.executeAgent(server.url, "deep", {}), "bad_response");
    expect(e.message).toContain("deeper than 1000 levels");
    const ok = await client.executeAgent(server.url, "fine", {});
    expect(JSON.stringify(ok.result)).toHaveLength(2 * 999);
  });

  it("an async submit without a task id, and a bad agent list", async () => {
    const server = await r.server();
    server.route(/execute\/async$/, { status: 202, json: { id: "x" } });
    server.route("GET /api/v1/agents", { json: { agents: [1, 2] } });
    const client = r.client();
    await rejection(client.executeAgentAsync(server.url, "echo", {}), "bad_response");
    await rejection(client.listAgents(server.url), "bad_response");
  });

  it("a body streamed past the limit without content-length is cut off, memory bounded", async () => {
    const server = await r.server();
    server.route(/execute$/, { stream: { totalBytes: Number.POSITIVE_INFINITY } });
    const limit = 256 * 1024;
    const start = performance.now();
    const e = await rejection(
      r.client({ maxResponseBytes: limit }).executeAgent(server.url, "echo", {}),
      "bad_response",
    );
    expect(e.message).toMatch(/limit/);
    expect(since(start)).toBeLessThan(1500);
    // The client stopped reading and closed the connection: the endless stream ended there.
    await server.waitForSockets(0, 2000);
    const sent = server.bytesStreamed;
    expect(sent).toBeLessThan(limit + 16 * 1024 * 1024); // at most the limit plus socket buffers
    expect(server.bytesStreamed).toBe(sent);
  });

  it("the default limit is 16 MiB", async () => {
    const server = await r.server();
    server.route(/execute$/, { stream: { totalBytes: 16 * 1024 * 1024 + 1 } });
    await rejection(r.client().executeAgent(server.url, "echo", {}), "bad_response");
  });

  it("a body exactly at the limit is read", async () => {
    const server = await r.server();
    const body = JSON.stringify(agentOutput({ result: "y".repeat(1000) }));
    server.route(/execute$/, { body });
    const output = await r
      .client({ maxResponseBytes: Buffer.byteLength(body) })
      .executeAgent(server.url, "echo", {});
    expect(output.result).toBe("y".repeat(1000));
  });

  it("a declared content-length over the limit fails before the body is read", async () => {
    const server = await r.server();
    // Headers declare 1 GiB; the server then sends nothing more and keeps the socket open.
    server.route(/execute$/, { declaredLength: 1024 ** 3, body: "{" });
    const start = performance.now();
    const e = await rejection(
      r.client({ timeout: 30_000 }).executeAgent(server.url, "echo", {}),
      "bad_response",
    );
    expect(e.message).toMatch(/exceeds/);
    expect(since(start)).toBeLessThan(1500);
    await server.waitForSockets(0, 2000);
  });
});

describe("agent_failed", () => {
  it("Client.executeAgent resolves a failed AgentOutput; the coordinator turns it into agent_failed", async () => {
    const server = await r.server();
    server.route(/execute$/, { json: agentOutput({ status: "failed", message: "model refused" }) });
    const output = await r.client().executeAgent(server.url, "echo", {});
    expect(output.status).toBe("failed");
    expect(output.message).toBe("model refused");

    const other = await r.server();
    const client = r.client();
    const registry = r.registry();
    registry.register({ id: "a", serviceName: "svc", endpoint: server.url });
    registry.register({ id: "b", serviceName: "svc", endpoint: other.url });
    const coordinator = r.coordinator(registry, client, { retries: 3 });
    const before = server.agentCalls.length;
    const e = await rejection(coordinator.executeAgent("svc", "echo", {}), "agent_failed");
    expect(other.requests).toHaveLength(0);
    expect(e.retryable).toBe(false);
    expect(e.countsAgainstInstance).toBe(false);
    expect(e.message).toBe("model refused");
    expect(e.agent).toBe("echo");
    expect(e.instance).toBe("a");
    // Not retried, not failed over, and nothing against the instance.
    expect(server.agentCalls.length - before).toBe(1);
    expect(client.circuitBreaker(server.url).failures).toBe(0);
  });

  it('"partial" counts as success', async () => {
    const server = await r.server();
    server.route(/execute$/, { json: agentOutput({ status: "partial", result: 1 }) });
    const registry = r.registry();
    registry.register({ id: "a", serviceName: "svc", endpoint: server.url });
    const output = await r.coordinator(registry, r.client()).executeAgent("svc", "echo", {});
    expect(output.status).toBe("partial");
  });
});

describe("circuit_open", () => {
  it("an open breaker fails fast: no request reaches the server", async () => {
    const server = await r.server();
    server.route(/execute$/, { status: 500 });
    const client = r.client({ circuitBreaker: { maxFailures: 1, timeout: 60_000 } });
    await rejection(client.executeAgent(server.url, "echo", {}), "http_status");
    const e = await rejection(client.executeAgent(server.url, "echo", {}), "circuit_open");
    expect(e.retryable).toBe(false);
    expect(server.agentCalls).toHaveLength(1);
  });

  it("every eligible instance open: the coordinator fails fast", async () => {
    const [a, b] = await r.servers(2);
    for (const s of [a!, b!]) s.route(/execute$/, { status: 503 });
    const client = r.client({ circuitBreaker: { maxFailures: 1, timeout: 60_000 } });
    const registry = r.registry();
    registry.register({ id: "a", serviceName: "svc", endpoint: a!.url });
    registry.register({ id: "b", serviceName: "svc", endpoint: b!.url });
    const coordinator = r.coordinator(registry, client, { retries: 1 });
    await rejection(coordinator.executeAgent("svc", "echo", {}), "http_status");
    const start = performance.now();
    const e = await rejection(coordinator.executeAgent("svc", "echo", {}), "circuit_open");
    expect(since(start)).toBeLessThan(500);
    expect(e.retryable).toBe(false);
    expect(a!.agentCalls.length + b!.agentCalls.length).toBe(2);
  });
});

describe("no_instances / unknown_service", () => {
  it("no instance serves the agent", async () => {
    const server = await r.server();
    const registry = r.registry();
    registry.register({ id: "a", serviceName: "svc", endpoint: server.url, agents: ["other"] });
    const e = await rejection(
      r.coordinator(registry, r.client()).executeAgent("svc", "echo", {}),
      "no_instances",
    );
    expect(e.retryable).toBe(false);
    expect(server.requests).toHaveLength(0);
  });

  // peer: TestCoordinator_ExecuteAgent_NoHealthyInstances, TestCoordinator_SelectInstance_NoInstances
  it("the service is not in the registry", async () => {
    const registry = r.registry();
    const e = await rejection(
      r.coordinator(registry, r.client()).executeAgent("nope", "echo", {}),
      "unknown_service",
    );
    expect(e.retryable).toBe(false);
  });
});

describe("cancelled", () => {
  it("an AbortSignal aborts the in-flight request: the server sees its socket close", async () => {
    const server = await r.server();
    server.route(/execute$/, { hang: true });
    const client = r.client();
    const controller = new AbortController();
    const call = client.executeAgent(server.url, "echo", {}, { signal: controller.signal });
    await server.waitForRequests(1);
    expect(server.openSockets).toBe(1);
    controller.abort();
    const e = await rejection(call, "cancelled");
    expect(e.retryable).toBe(false);
    expect(e.countsAgainstInstance).toBe(false);
    await server.waitForSockets(0, 2000);
    // A cancelled call says nothing about the instance.
    expect(client.circuitBreaker(server.url).failures).toBe(0);
  });

  // peer: TestClient_ExecuteAgent_RequestCreationError
  it("an already aborted signal sends nothing", async () => {
    const server = await r.server();
    const e = await rejection(
      r.client().executeAgent(server.url, "echo", {}, { signal: AbortSignal.abort() }),
      "cancelled",
    );
    expect(e.code).toBe("cancelled");
    expect(server.requests).toHaveLength(0);
  });

  it("through the coordinator, the in-flight attempt is aborted and not retried", async () => {
    const server = await r.server();
    server.route(/execute$/, { hang: true });
    const client = r.client();
    const registry = r.registry();
    registry.register({ id: "a", serviceName: "svc", endpoint: server.url });
    const controller = new AbortController();
    const call = r
      .coordinator(registry, client, { retries: 5 })
      .executeAgent("svc", "echo", {}, { signal: controller.signal });
    await server.waitForRequests(1);
    controller.abort();
    await rejection(call, "cancelled");
    await server.waitForSockets(0, 2000);
    expect(server.requests).toHaveLength(1);
    expect(client.circuitBreaker(server.url).failures).toBe(0);
  });
});

describe("invalid", () => {
  it.each(["", ".", ".."])("agent name %j is rejected before any request", async (name) => {
    const server = await r.server();
    const client = r.client();
    await rejection(client.executeAgent(server.url, name, {}), "invalid");
    await rejection(client.executeAgentAsync(server.url, name, {}), "invalid");
    const registry = r.registry();
    registry.register({ id: "a", serviceName: "svc", endpoint: server.url });
    const e = await rejection(
      r.coordinator(registry, client, { retries: 3 }).executeAgent("svc", name, {}),
      "invalid",
    );
    expect(e.retryable).toBe(false);
    expect(server.requests).toHaveLength(0);
    expect(client.circuitBreaker(server.url).failures).toBe(0);
  });

  it.each(["", ".", ".."])("task id %j is rejected before any request", async (id) => {
    const server = await r.server();
    const client = r.client();
    await rejection(client.getAsyncResult(server.url, id), "invalid");
    await rejection(client.waitForAsyncResult(server.url, id, 1), "invalid");
    expect(server.requests).toHaveLength(0);
  });

  it("an endpoint that is not an http(s) URL, and a closed client", async () => {
    const client = r.client();
    await rejection(client.executeAgent("not a url", "echo", {}), "invalid");
    await rejection(client.ping("ftp://127.0.0.1:1"), "invalid");
    const server = await r.server();
    await client.close();
    await rejection(client.executeAgent(server.url, "echo", {}), "invalid");
    expect(server.requests).toHaveLength(0);
  });

  it("an input that is not an object", async () => {
    const server = await r.server();
    await rejection(r.client().executeAgent(server.url, "echo", "text" as never), "invalid");
    expect(server.requests).toHaveLength(0);
  });

  it("a header value HTTP does not allow: the message says which header, never its value", async () => {
    const server = await r.server();
    const client = r.client({ headers: { authorization: "Bearer secret…" } });
    const e = await rejection(client.executeAgent(server.url, "echo", {}), "invalid");
    expect(e.message).toContain("invalid authorization header");
    expect(e.message).not.toContain("secret");
    expect(server.requests).toHaveLength(0);
  });
});

describe("invalid input", () => {
  it("an input of the wrong type, or none at all, fails before any request, with no attempt", async () => {
    const server = await r.server();
    const client = r.client();
    const e = await rejection(
      client.executeAgent(server.url, "echo", { options: { max_tokens: "many" as never } }),
      "invalid",
    );
    expect(e.retryable).toBe(false);
    await rejection(client.executeAgent(server.url, "echo", { options: { timeout: 1.5 } }), "invalid");
    await rejection(
      client.executeAgent(server.url, "echo", { options: { enable_tools: "yes" as never } }),
      "invalid",
    );
    await rejection(client.executeAgent(server.url, "echo", { context: [] as never }), "invalid");
    // Inputs JSON cannot carry.
    const cycle: Record<string, unknown> = {};
    cycle.self = cycle;
    await rejection(client.executeAgent(server.url, "echo", { context: cycle }), "invalid");
    await rejection(client.executeAgent(server.url, "echo", { context: { n: 1n } }), "invalid");
    // A JavaScript caller may leave the input out: an empty POST would reach the server.
    await rejection(client.executeAgent(server.url, "echo", undefined as never), "invalid");
    await rejection(client.executeAgentAsync(server.url, "echo", undefined as never), "invalid");
    expect(server.requests).toHaveLength(0);
    expect(client.circuitBreaker(server.url).failures).toBe(0);

    const registry = r.registry();
    registry.register({ id: "a", serviceName: "svc", endpoint: server.url });
    const outcome = await r.coordinator(registry, client).call({
      serviceName: "svc",
      agentName: "echo",
      input: { options: { max_tokens: 1.5 } },
    });
    expect(outcome).toMatchObject({ ok: false, error: { code: "invalid" }, attempts: 0 });
    expect(server.requests).toHaveLength(0);
  });
});

describe("skipped", () => {
  it("executeSequential marks the tasks after a failure skipped", async () => {
    const server = await r.server();
    server.enqueue(/execute$/, { status: 400 });
    const registry = r.registry();
    registry.register({ id: "a", serviceName: "svc", endpoint: server.url });
    const results = await r.coordinator(registry, r.client()).executeSequential([
      { serviceName: "svc", agentName: "a1", input: {} },
      { serviceName: "svc", agentName: "a2", input: {} },
    ]);
    expect(results[0]!.error!.code).toBe("http_status");
    const skipped = results[1]!.error!;
    expect(skipped.code).toBe("skipped");
    expect(skipped.retryable).toBe(false);
    expect(skipped.message).toMatch(/a1/);
  });
});
