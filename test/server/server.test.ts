import { afterEach, describe, expect, it } from "vitest";
import type { AgentOutput } from "../../src/protocol/types.js";
import { type AgentServer, type AgentServerOptions, startAgentServer } from "../../src/server/index.js";
import { rawRequest } from "../helpers/server-http.js";

const servers: AgentServer[] = [];

afterEach(async () => {
  await Promise.all(servers.splice(0).map((s) => s.close()));
});

async function start(options: AgentServerOptions = {}): Promise<AgentServer> {
  const server = await startAgentServer(options);
  servers.push(server);
  return server;
}

interface CallOptions {
  method?: string;
  body?: unknown;
  rawBody?: string;
  headers?: Record<string, string>;
  signal?: AbortSignal;
}

async function call(server: AgentServer, path: string, options: CallOptions = {}) {
  const res = await fetch(server.url + path, {
    method: options.method ?? (options.body === undefined && options.rawBody === undefined ? "GET" : "POST"),
    headers: { "content-type": "application/json", ...options.headers },
    body: options.rawBody ?? (options.body === undefined ? undefined : JSON.stringify(options.body)),
    signal: options.signal,
  });
  const text = await res.text();
  return { status: res.status, headers: res.headers, json: text === "" ? undefined : JSON.parse(text) };
}

function execute(server: AgentServer, agent: string, body: unknown, headers?: Record<string, string>) {
  return call(server, `/api/v1/agents/${encodeURIComponent(agent)}/execute`, { body, headers });
}

function submit(server: AgentServer, agent: string, body: unknown, headers?: Record<string, string>) {
  return call(server, `/api/v1/agents/${encodeURIComponent(agent)}/execute/async`, { body, headers });
}

/** Polls `check` until it holds; a condition, never a guess at how long something takes. */
async function waitFor(check: () => boolean | Promise<boolean>, timeoutMs = 5000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error("condition not met in time");
    await new Promise((r) => setTimeout(r, 5));
  }
}

async function awaitTask(server: AgentServer, taskId: string): Promise<AgentOutput> {
  let done: { status: number; json: unknown } | undefined;
  await waitFor(async () => {
    done = await call(server, `/api/v1/agents/tasks/${encodeURIComponent(taskId)}`);
    return done.status !== 202;
  });
  expect(done?.status).toBe(200);
  return done?.json as AgentOutput;
}

/** True once the server has read the body of `n` agent calls (they are then attached to their run). */
function bodiesRead(server: AgentServer, n: number): () => boolean {
  return () => server.requests.filter((r) => r.body !== undefined).length >= n;
}

describe("agent server: basics", () => {
  it("answers health and the agent list as JSON, on keep-alive connections", async () => {
    const server = await start();
    expect(server.url).toBe(`http://127.0.0.1:${server.port}`);
    const health = await call(server, "/health");
    expect(health.status).toBe(200);
    expect(health.json).toEqual({ status: "healthy" });
    expect(health.headers.get("content-type")).toBe("application/json");
    expect((await call(server, "/health?probe=1")).status).toBe(200);
    const list = await call(server, "/api/v1/agents");
    expect(list.json).toEqual({ agents: ["echo", "upper", "wordcount", "sleep", "fail"] });
    const raw = await rawRequest(server.url, "GET", "/health", { headers: { connection: "keep-alive" } });
    expect(raw.headers.connection).toBe("keep-alive");
    expect(raw.headers["keep-alive"]).toBe("timeout=65");
  });

  it("echo returns the whole input in a complete AgentOutput", async () => {
    const server = await start();
    const input = {
      task: "hi",
      context: { a: [1, { b: null }] },
      options: { timeout: 5_000_000_000, temperature: 0.5 },
      timestamp: "2024-05-01T10:00:00Z",
    };
    const { status, json } = await execute(server, "echo", input);
    expect(status).toBe(200);
    const out = json as AgentOutput;
    expect(out.result).toEqual(input);
    expect(out.status).toBe("success");
    expect(out.message).toBe("");
    expect(out.reasoning_steps).toEqual([]);
    expect(out.tool_calls).toEqual([]);
    expect(Number.isInteger(out.latency) && out.latency >= 0).toBe(true);
    expect(Number.isNaN(Date.parse(out.timestamp))).toBe(false);
    expect(out.metadata).toEqual({ agent: "echo", server: "agentctl" });
  });

  it("upper, wordcount and fail are deterministic", async () => {
    const server = await start();
    expect((await execute(server, "upper", { task: "Hello, wörld" })).json.result).toBe("HELLO, WÖRLD");
    expect((await execute(server, "upper", {})).json.result).toBe("");
    expect((await execute(server, "wordcount", { task: "  one two\tthree\nfour " })).json.result).toEqual({
      words: 4,
    });
    expect((await execute(server, "wordcount", { task: "   " })).json.result).toEqual({ words: 0 });
    expect((await execute(server, "wordcount", {})).json.result).toEqual({ words: 0 });
    const failed = await execute(server, "fail", { task: "x" });
    expect(failed.status).toBe(200);
    expect(failed.json).toMatchObject({ status: "failed", message: "agent failed on purpose" });
  });

  it("sleep waits context.ms, then echoes", async () => {
    const server = await start();
    const started = Date.now();
    const { json } = await execute(server, "sleep", { task: "t", context: { ms: 100 } });
    expect(Date.now() - started).toBeGreaterThanOrEqual(90);
    expect(json.result).toEqual({ task: "t", context: { ms: 100 } });
    expect(json.latency).toBeGreaterThanOrEqual(90e6);
  });

  it("serves only the agents asked for, and rejects bad options", async () => {
    const server = await start({ agents: ["upper", "echo"] });
    expect((await call(server, "/api/v1/agents")).json).toEqual({ agents: ["upper", "echo"] });
    expect((await execute(server, "sleep", {})).status).toBe(404);
    await expect(startAgentServer({ agents: ["nope"] })).rejects.toMatchObject({ code: "invalid" });
    await expect(startAgentServer({ agents: ["constructor"] })).rejects.toMatchObject({ code: "invalid" });
    await expect(startAgentServer({ failRate: 1.5 })).rejects.toMatchObject({ code: "invalid" });
    await expect(startAgentServer({ latencyMs: -1 })).rejects.toMatchObject({ code: "invalid" });
  });

  it("records requests as received when asked", async () => {
    const server = await start({ recordRequests: true });
    await execute(server, "echo", { task: "x" }, { "idempotency-key": "k1" });
    await call(server, "/health");
    expect(server.requests).toHaveLength(2);
    const [first, second] = server.requests;
    expect(first).toMatchObject({ method: "POST", path: "/api/v1/agents/echo/execute", body: { task: "x" } });
    expect(first?.headers["idempotency-key"]).toBe("k1");
    expect(second).toMatchObject({ method: "GET", path: "/health" });
    expect(second?.body).toBeUndefined();
    expect((await start()).requests).toEqual([]);
  });
});

describe("agent server: routing and request errors", () => {
  it("answers 404 for unknown agents, tasks and paths", async () => {
    const server = await start();
    const unknown = await execute(server, "nope", {});
    expect(unknown.status).toBe(404);
    expect(unknown.json.error).toContain('"nope"');
    expect((await submit(server, "nope", {})).status).toBe(404);
    expect((await call(server, "/api/v1/agents/tasks/nope")).status).toBe(404);
    expect((await call(server, "/nope")).status).toBe(404);
    expect((await call(server, "/api/v1/agents/echo/execute/sync", { body: {} })).status).toBe(404);
    expect((await execute(server, "__proto__", {})).status).toBe(404);
  });

  it("keeps an encoded name as one path segment, never normalised", async () => {
    const server = await start();
    const slashed = await execute(server, "a/b", {});
    expect(slashed.status).toBe(404);
    expect(slashed.json.error).toContain('"a/b"');
    const tasks = await execute(server, "tasks", {});
    expect(tasks.json.error).toContain('"tasks"');
    expect((await call(server, "/api/v1/agents/tasks/execute")).json.error).toContain("unknown task");
    const dots = await rawRequest(server.url, "POST", "/api/v1/agents/../execute", { chunks: ["{}"] });
    expect(dots.status).toBe(404);
    expect(JSON.parse(dots.body).error).toContain('".."');
    const health = await rawRequest(server.url, "GET", "/api/v1/agents/..%2F..%2Fhealth/execute");
    expect(health.status).toBe(405);
    const badEncoding = await rawRequest(server.url, "POST", "/api/v1/agents/%E0%A4%A/execute", {
      chunks: ["{}"],
    });
    expect(badEncoding.status).toBe(400);
  });

  it("answers 405 with Allow for a wrong method", async () => {
    const server = await start();
    const get = await call(server, "/api/v1/agents/echo/execute");
    expect(get.status).toBe(405);
    expect(get.headers.get("allow")).toBe("POST");
    expect((await call(server, "/health", { method: "DELETE" })).status).toBe(405);
    expect((await call(server, "/api/v1/agents", { body: {} })).status).toBe(405);
  });

  it("rejects bodies Go could not decode into an AgentInput with 400", async () => {
    const server = await start();
    const path = "/api/v1/agents/echo/execute";
    const deep = `{"context":{"a":${"[".repeat(1000)}${"]".repeat(1000)}}}`;
    for (const rawBody of ["{bad", "", "[]", '"x"', deep]) {
      expect((await call(server, path, { rawBody })).status, rawBody).toBe(400);
    }
    for (const body of [
      { task: 5 },
      { context: [] },
      { timestamp: "" },
      { timestamp: "yesterday" },
      { options: { timeout: "5s" } },
      { options: { timeout: 1.5 } },
      { options: { enable_tools: "true" } },
      { options: { allowed_tools: "a" } },
      { options: { max_tokens: 1e30 } },
      { timestamp: "2020-02-30T00:00:00Z" },
      { timestamp: "2020-01-01T24:00:00Z" },
    ]) {
      const res = await call(server, path, { body });
      expect(res.status, JSON.stringify(body)).toBe(400);
      expect(res.json.error).toMatch(/invalid AgentInput/);
    }
    const nulls = { task: null, context: null, options: null, timestamp: null, extra: 1 };
    expect((await call(server, path, { body: nulls })).status).toBe(200);
    // Go decodes a `null` body into an empty AgentInput.
    expect((await call(server, path, { rawBody: "null" })).status).toBe(200);
    // As deep as the limit allows, echoed back whole.
    const deepest = `{"context":{"a":${"[".repeat(998)}${"]".repeat(998)}}}`;
    const echoed = await call(server, path, { rawBody: deepest });
    expect(echoed.status).toBe(200);
    expect(JSON.stringify(echoed.json.result.context)).toBe(`{"a":${"[".repeat(998)}${"]".repeat(998)}}`);
  });

  it("refuses a body over the limit with 413", async () => {
    const server = await start({ maxBodyBytes: 1024 });
    const declared = await rawRequest(server.url, "POST", "/api/v1/agents/echo/execute", {
      headers: { "content-length": String(16 * 1024 * 1024) },
    });
    expect(declared.status).toBe(413);
    expect(declared.headers.connection).toBe("close");
    const streamed = await rawRequest(server.url, "POST", "/api/v1/agents/echo/execute", {
      chunks: ['{"task":"', "x".repeat(2000), '"}'],
    });
    expect(streamed.status).toBe(413);
    expect((await execute(server, "echo", { task: "small" })).status).toBe(200);
  });
});

describe("agent server: async tasks", () => {
  it("answers 202 with a task id, 202 while running and 200 with the output when done", async () => {
    const server = await start();
    const submitted = await submit(server, "upper", { task: "async" });
    expect(submitted.status).toBe(202);
    expect(typeof submitted.json.task_id).toBe("string");
    const out = await awaitTask(server, submitted.json.task_id);
    expect(out).toMatchObject({ result: "ASYNC", status: "success", metadata: { agent: "upper" } });

    const slow = await submit(server, "sleep", { context: { ms: 60_000 } });
    const running = await call(server, `/api/v1/agents/tasks/${slow.json.task_id}`);
    expect(running.status).toBe(202);
  });

  it("forgets finished tasks after the TTL", async () => {
    const server = await start({ asyncTaskTtlMs: 50 });
    const { json } = await submit(server, "echo", {});
    await awaitTask(server, json.task_id);
    await waitFor(async () => (await call(server, `/api/v1/agents/tasks/${json.task_id}`)).status === 404);
  });
});

describe("agent server: idempotency", () => {
  it("answers a repeated key with the first result without running the agent again", async () => {
    const server = await start();
    const key = { "idempotency-key": "run-1:task-a" };
    const first = await execute(server, "echo", { task: "one" }, key);
    const again = await execute(server, "echo", { task: "two" }, key);
    expect(again.json).toEqual(first.json);
    expect(server.agentRuns).toBe(1);
    await execute(server, "upper", { task: "one" }, key);
    await execute(server, "echo", { task: "one" });
    await execute(server, "echo", { task: "one" });
    expect(server.agentRuns).toBe(4);
  });

  it("lets a concurrent duplicate wait for the first run", async () => {
    const server = await start({ recordRequests: true });
    const key = { "idempotency-key": "dup" };
    const body = { context: { ms: 200 } };
    const [a, b] = await Promise.all([
      execute(server, "sleep", body, key),
      execute(server, "sleep", body, key),
    ]);
    expect(a.json).toEqual(b.json);
    expect(server.agentRuns).toBe(1);
  });

  it("keeps a shared run going while one of its callers is still waiting", async () => {
    const server = await start({ recordRequests: true });
    const key = { "idempotency-key": "shared" };
    const body = { context: { ms: 300 } };
    const giveUp = new AbortController();
    const first = call(server, "/api/v1/agents/sleep/execute", { body, headers: key, signal: giveUp.signal });
    const second = execute(server, "sleep", body, key);
    await waitFor(bodiesRead(server, 2));
    giveUp.abort();
    await expect(first).rejects.toThrow();
    expect((await second).json.result).toEqual(body);
    expect(server.agentRuns).toBe(1);
  });

  it("gives a repeated async submit the same task id", async () => {
    const server = await start();
    const key = { "idempotency-key": "async-1" };
    const a = await submit(server, "sleep", { context: { ms: 100 } }, key);
    const b = await submit(server, "sleep", { context: { ms: 100 } }, key);
    expect(b.status).toBe(202);
    expect(b.json.task_id).toBe(a.json.task_id);
    await awaitTask(server, a.json.task_id);
    const c = await submit(server, "sleep", { context: { ms: 100 } }, key);
    expect(c.json.task_id).toBe(a.json.task_id);
    expect(server.agentRuns).toBe(1);
  });
});

describe("agent server: fault injection and latency", () => {
  it("failRate 1 answers every agent call 503, before running anything", async () => {
    const server = await start({ failRate: 1 });
    const res = await execute(server, "echo", {});
    expect(res.status).toBe(503);
    expect(res.json).toEqual({ error: "injected failure" });
    expect((await submit(server, "echo", {})).status).toBe(503);
    expect((await call(server, "/health")).status).toBe(200);
    expect((await call(server, "/api/v1/agents")).status).toBe(200);
    expect(server.agentRuns).toBe(0);
  });

  it("failRate 0 never fails", async () => {
    const server = await start({ failRate: 0 });
    const statuses = await Promise.all(Array.from({ length: 50 }, () => execute(server, "echo", {})));
    expect(statuses.every((r) => r.status === 200)).toBe(true);
  });

  it("draws from `random`, and never caches an injected 503 under an idempotency key", async () => {
    const draws = [0.1, 0.9, 0.2];
    const server = await start({ failRate: 0.5, random: () => draws.shift() ?? 1 });
    const key = { "idempotency-key": "retry-me" };
    expect((await execute(server, "upper", { task: "a" }, key)).status).toBe(503);
    const ok = await execute(server, "upper", { task: "a" }, key);
    expect(ok.status).toBe(200);
    expect(ok.json.result).toBe("A");
    expect((await execute(server, "upper", { task: "a" }, key)).status).toBe(503);
    expect((await execute(server, "upper", { task: "a" }, key)).json).toEqual(ok.json);
    expect(server.agentRuns).toBe(1);
  });

  it("adds latencyMs to execute and async runs, counted in latency", async () => {
    const server = await start({ latencyMs: 150 });
    const started = Date.now();
    const { json } = await execute(server, "echo", {});
    expect(Date.now() - started).toBeGreaterThanOrEqual(140);
    expect(json.latency).toBeGreaterThanOrEqual(140e6);
    const { json: task } = await submit(server, "echo", {});
    expect((await awaitTask(server, task.task_id)).latency).toBeGreaterThanOrEqual(140e6);
  });
});

describe("agent server: shutdown", () => {
  it("cuts off a pending call after the grace period and resolves close()", async () => {
    const server = await startAgentServer({ recordRequests: true, shutdownGraceMs: 200 });
    const pending = execute(server, "sleep", { context: { ms: 60_000 } });
    const settled = pending.then(
      () => "answered",
      () => "cut off",
    );
    await submit(server, "sleep", { context: { ms: 60_000 } });
    await waitFor(bodiesRead(server, 2));
    const started = Date.now();
    await server.close();
    expect(Date.now() - started).toBeLessThan(5000);
    expect(await settled).toBe("cut off");
    await server.close();
    await expect(fetch(`${server.url}/health`)).rejects.toThrow();
  });

  it("closes idle connections at once, even ones that never carried a request", async () => {
    const server = await startAgentServer({ recordRequests: true, shutdownGraceMs: 30_000 });
    await call(server, "/health");
    // undici opens a fresh connection after an aborted call; close() must not wait for it.
    const giveUp = new AbortController();
    const aborted = call(server, "/api/v1/agents/sleep/execute", {
      body: { context: { ms: 60_000 } },
      signal: giveUp.signal,
    });
    await waitFor(bodiesRead(server, 1));
    giveUp.abort();
    await expect(aborted).rejects.toThrow();
    const started = Date.now();
    await server.close();
    expect(Date.now() - started).toBeLessThan(10_000);
  });

  it("lets a call finishing within the grace period answer", async () => {
    const server = await startAgentServer({ recordRequests: true, shutdownGraceMs: 10_000 });
    const pending = execute(server, "sleep", { context: { ms: 100 } });
    await waitFor(bodiesRead(server, 1));
    await server.close();
    const res = await pending;
    expect(res.status).toBe(200);
    expect(res.headers.get("connection")).toBe("close");
  });
});
