// biome-ignore-all lint/suspicious/noExplicitAny: the tests read the CLI's JSON output loosely
import { afterAll, describe, expect, it } from "vitest";
import { type AgentServer, type RecordedRequest, startAgentServer } from "../../src/server/index.js";
import { parseJsonOutput, removeWorkspaces, runCli, servicesOf, workspace } from "../helpers/cli.js";
import { type FakeAgentServer, startFakeAgentServer } from "../helpers/fake-agent-server.js";

/**
 * `agentctl run` against real servers: the order calls arrive in, what they carry, and the
 * JSON result, for every way a pipeline can run.
 */

const closers: Array<() => Promise<void>> = [];

afterAll(async () => {
  await Promise.all(closers.splice(0).map((c) => c().catch(() => undefined)));
  await removeWorkspaces();
});

async function reference(options: Parameters<typeof startAgentServer>[0] = {}): Promise<AgentServer> {
  const server = await startAgentServer({ recordRequests: true, ...options });
  closers.push(() => server.close());
  return server;
}

async function fake(): Promise<FakeAgentServer> {
  const server = await startFakeAgentServer();
  closers.push(() => server.close());
  return server;
}

/** Writes `pipeline` (name and services filled in) and runs it with `--output json`. */
async function runPipeline(
  pipeline: Record<string, unknown>,
  endpoints: string[],
  args: string[] = [],
  env: Record<string, string | undefined> = {},
) {
  const ws = await workspace();
  await ws.writeYaml("pipeline.yaml", { name: "test", services: servicesOf(endpoints), ...pipeline });
  const result = await runCli(["run", "pipeline.yaml", "--output", "json", ...args], { cwd: ws.dir, env });
  return { result, report: parseJsonOutput(result), ws };
}

function task(id: string, agent: string, extra: Record<string, unknown> = {}) {
  return { id, service: "svc", agent, ...extra };
}

/** Agent calls (execute and submit) of a task, by the idempotency key `<run_id>:<task>[:<index>]`. */
function callsOf(requests: readonly RecordedRequest[], runId: string, key: string): RecordedRequest[] {
  return requests.filter((r) => r.method === "POST" && r.headers["idempotency-key"] === `${runId}:${key}`);
}

function only(requests: readonly RecordedRequest[], runId: string, key: string): RecordedRequest {
  const calls = callsOf(requests, runId, key);
  expect(calls, `calls of ${key}`).toHaveLength(1);
  return calls[0]!;
}

function byId(report: any): Record<string, any> {
  return Object.fromEntries(report.tasks.map((t: any) => [t.id, t]));
}

describe.concurrent("run modes", () => {
  it("parallel DAG: independent tasks start at once, a task waits for its needs", async () => {
    const server = await reference();
    const { result, report } = await runPipeline(
      {
        tasks: [
          task("slow", "sleep", { input: { task: "slow", context: { ms: 800 } } }),
          task("fast", "echo", { input: { task: "fast" } }),
          task("after_slow", "echo", { needs: ["slow"] }),
          task("last", "echo", { needs: ["after_slow", "fast"] }),
        ],
      },
      [server.url],
    );
    expect(result.exitCode, result.stderr).toBe(0);
    expect(report.status).toBe("succeeded");
    const runId = report.run_id as string;
    const slow = only(server.requests, runId, "slow");
    const fast = only(server.requests, runId, "fast");
    const afterSlow = only(server.requests, runId, "after_slow");
    const last = only(server.requests, runId, "last");
    // fast did not wait for slow (which takes 800 ms); after_slow did.
    expect(Math.abs(fast.at - slow.at)).toBeLessThan(700);
    expect(afterSlow.at - slow.at).toBeGreaterThanOrEqual(750);
    expect(last.at).toBeGreaterThanOrEqual(afterSlow.at);
    const order = server.requests.filter((r) => r.method === "POST");
    expect(order.indexOf(afterSlow)).toBeGreaterThan(order.indexOf(slow));
    expect(order.indexOf(last)).toBe(order.length - 1);
  });

  it("a task may need tasks written after it in the file, and reads their outputs", async () => {
    const server = await reference();
    const { result, report } = await runPipeline(
      {
        tasks: [
          task("report", "echo", {
            needs: ["count", "shout"],
            input: {
              task: "${{ tasks.shout.output.result }}",
              context: { n: "${{ tasks.count.output.result.words }}" },
            },
          }),
          task("shout", "upper", { needs: ["count"], input: { task: "hello" } }),
          task("count", "wordcount", { input: { task: "one two three" } }),
        ],
      },
      [server.url],
    );
    expect(result.exitCode, result.stderr).toBe(0);
    const runId = report.run_id as string;
    const keys = server.requests.filter((r) => r.method === "POST").map((r) => r.headers["idempotency-key"]);
    expect(keys).toEqual(["count", "shout", "report"].map((k) => `${runId}:${k}`));
    expect(only(server.requests, runId, "report").body).toMatchObject({ task: "HELLO", context: { n: 3 } });
    // The result keeps the file's order.
    expect(report.tasks.map((t: any) => [t.id, t.status])).toEqual([
      ["report", "succeeded"],
      ["shout", "succeeded"],
      ["count", "succeeded"],
    ]);
  });

  it("an option of the wrong type, known only at run time, fails the task with template: no attempt, no call", async () => {
    const server = await reference();
    const { result, report } = await runPipeline(
      {
        tasks: [
          task("typed", "echo", {
            input: { task: "t", options: { max_tokens: "${{ env.AGENTCTL_E2E_MAX }}" } },
          }),
        ],
      },
      [server.url],
      [],
      { AGENTCTL_E2E_MAX: "many" },
    );
    expect(result.exitCode).toBe(1);
    const typed = byId(report).typed;
    expect(typed).toMatchObject({ status: "failed", attempts: 0, error: { code: "template" } });
    expect(typed.instance).toBeUndefined();
    expect(typed.error.message).toContain("max_tokens");
    expect(server.requests.filter((r) => r.method === "POST")).toEqual([]);
  });

  it("sequential: file order, context.previous_output chained, first failure skips the rest", async () => {
    const server = await reference();
    const { result, report } = await runPipeline(
      {
        mode: "sequential",
        tasks: [
          task("shout", "upper", { input: { task: "hello world" } }),
          task("count", "wordcount", { input: { task: "one two three" } }),
          task("show", "echo", { input: { task: "show", context: { keep: 1 } } }),
          task("boom", "fail"),
          task("never1", "echo"),
          task("never2", "echo"),
        ],
      },
      [server.url],
    );
    expect(result.exitCode).toBe(1);
    const runId = report.run_id as string;
    const count = only(server.requests, runId, "count").body as any;
    const show = only(server.requests, runId, "show").body as any;
    const boom = only(server.requests, runId, "boom").body as any;
    expect(count.context.previous_output).toBe("HELLO WORLD");
    expect(show.context).toEqual({ keep: 1, previous_output: { words: 3 } });
    expect(boom.context.previous_output.task).toBe("show");
    expect(callsOf(server.requests, runId, "never1")).toHaveLength(0);
    expect(callsOf(server.requests, runId, "never2")).toHaveLength(0);
    // Calls came one after another, in file order.
    const keys = server.requests.filter((r) => r.method === "POST").map((r) => r.headers["idempotency-key"]);
    expect(keys).toEqual(["shout", "count", "show", "boom"].map((k) => `${runId}:${k}`));
    const t = byId(report);
    expect(report.tasks.map((x: any) => x.status)).toEqual([
      "succeeded",
      "succeeded",
      "succeeded",
      "failed",
      "skipped",
      "skipped",
    ]);
    expect(t.boom.error.code).toBe("agent_failed");
    expect(t.never1.error.code).toBe("skipped");
    expect(t.never1.error.message).toMatch(/boom/);
    expect(t.never2.error.code).toBe("skipped");
    expect(report.summary).toEqual({ total: 6, succeeded: 3, failed: 1, skipped: 2, cancelled: 0 });
  });

  it("parallel: dependents of a failed task are skipped (transitively), naming what they waited for", async () => {
    const server = await reference();
    const { result, report } = await runPipeline(
      {
        tasks: [
          task("broken", "fail"),
          task("child", "echo", { needs: ["broken"] }),
          task("grandchild", "echo", { needs: ["child"] }),
          task("independent", "echo"),
        ],
      },
      [server.url],
    );
    expect(result.exitCode).toBe(1);
    const t = byId(report);
    expect(t.broken.status).toBe("failed");
    expect(t.broken.error.code).toBe("agent_failed");
    expect(t.child.status).toBe("skipped");
    expect(t.child.error).toMatchObject({ code: "skipped" });
    expect(t.child.error.message).toMatch(/broken/);
    expect(t.grandchild.status).toBe("skipped");
    expect(t.grandchild.error.message).toMatch(/child/);
    expect(t.independent.status).toBe("succeeded");
    const runId = report.run_id as string;
    expect(callsOf(server.requests, runId, "child")).toHaveLength(0);
    expect(callsOf(server.requests, runId, "grandchild")).toHaveLength(0);
    expect(report.status).toBe("failed");
  });

  it("for_each: one call per item with item and index, outputs in item order whatever the completion order", async () => {
    const server = await reference();
    const items = [
      { name: "a", ms: 600 },
      { name: "b", ms: 0 },
      { name: "c", ms: 300 },
      { name: "d", ms: 50 },
      { name: "e", ms: 150 },
    ];
    const { result, report } = await runPipeline(
      {
        vars: { items },
        tasks: [
          task("fan", "sleep", {
            for_each: "${{ vars.items }}",
            input: { task: "${{ item.name }}", context: { ms: "${{ item.ms }}", index: "${{ index }}" } },
          }),
          task("gather", "echo", { needs: ["fan"], input: { context: { all: "${{ tasks.fan.outputs }}" } } }),
        ],
      },
      [server.url],
    );
    expect(result.exitCode, result.stderr).toBe(0);
    const t = byId(report);
    expect(t.fan.status).toBe("succeeded");
    expect(t.fan.attempts).toBe(5);
    expect(t.fan.outputs).toHaveLength(5);
    expect(t.fan.output).toBeUndefined();
    t.fan.outputs.forEach((o: any, i: number) => {
      expect(o.result.task).toBe(items[i]!.name);
      expect(o.result.context.index).toBe(i); // one expression: keeps its number type
      expect(o.result.context.ms).toBe(items[i]!.ms);
    });
    // They finished in another order than the items'.
    const finished = t.fan.outputs.map((o: any) => Date.parse(o.timestamp));
    const sorted = [...finished].sort((x: number, y: number) => x - y);
    expect(finished).not.toEqual(sorted);
    expect(finished[0]).toBe(sorted[4]);
    // Each item had its own idempotency key, and the dependent saw the list in item order.
    const runId = report.run_id as string;
    for (let i = 0; i < 5; i++) only(server.requests, runId, `fan:${i}`);
    const gathered = (only(server.requests, runId, "gather").body as any).context.all;
    expect(gathered.map((o: any) => o.result.task)).toEqual(["a", "b", "c", "d", "e"]);
  });

  it("for_each: a failing item fails the task, the others still have their outputs (null where none)", async () => {
    const server = await reference();
    const { result, report } = await runPipeline(
      {
        tasks: [
          task("fan", "upper", {
            for_each: ["x", "y", "z"],
            input: { task: "${{ item }}" },
            expect: { result: "/^[XZ]$/" },
          }),
        ],
      },
      [server.url],
    );
    expect(result.exitCode).toBe(1);
    const fan = byId(report).fan;
    expect(fan.status).toBe("failed");
    expect(fan.error.code).toBe("assertion");
    expect(fan.error.message).toMatch(/item 1/);
    expect(fan.outputs.map((o: any) => o?.result ?? null)).toEqual(["X", null, "Z"]);
    expect(fan.item_errors).toEqual([
      { index: 1, code: "assertion", message: expect.stringContaining('"Y"') },
    ]);
  });

  it("for_each: every failed item's error is in item_errors, by index; error names the first and counts the rest", async () => {
    const server = await reference();
    const { result, report } = await runPipeline(
      {
        retries: 0,
        tasks: [
          task("fan", "echo", {
            for_each: ["ok", "bad", "ok", "bad", "bad"],
            input: { task: "${{ item }}" },
            expect: { "result.task": "ok" },
          }),
        ],
      },
      [server.url],
    );
    expect(result.exitCode).toBe(1);
    const fan = byId(report).fan;
    expect(fan.item_errors.map((e: any) => [e.index, e.code])).toEqual([
      [1, "assertion"],
      [3, "assertion"],
      [4, "assertion"],
    ]);
    expect(fan.error.code).toBe("assertion");
    expect(fan.error.message).toMatch(/^item 1: .* \(and 2 more items\)$/);
    expect(fan.outputs.map((o: any) => o === null)).toEqual([false, true, false, true, true]);
    // A task with no failed item has no item_errors.
    expect(result.stdout).not.toMatch(/"item_errors": \[\]/);
  });

  it("async: submit, then GETs on the task id until it is done", async () => {
    const server = await reference();
    const { result, report } = await runPipeline(
      {
        tasks: [
          task("background", "sleep", {
            async: true,
            poll_interval: "100ms",
            input: { task: "later", context: { ms: 700 } },
          }),
        ],
      },
      [server.url],
    );
    expect(result.exitCode, result.stderr).toBe(0);
    const runId = report.run_id as string;
    const submit = only(server.requests, runId, "background");
    expect(submit.path).toBe("/api/v1/agents/sleep/execute/async");
    const polls = server.requests.filter(
      (r) => r.method === "GET" && r.path.startsWith("/api/v1/agents/tasks/"),
    );
    expect(polls.length).toBeGreaterThanOrEqual(2);
    expect(new Set(polls.map((p) => p.path)).size).toBe(1);
    expect(polls[0]!.path).toMatch(/^\/api\/v1\/agents\/tasks\/[0-9a-f-]{36}$/);
    for (const p of polls) expect(p.at).toBeGreaterThanOrEqual(submit.at);
    expect(server.requests.filter((r) => r.path.endsWith("/execute"))).toHaveLength(0);
    const t = byId(report).background;
    expect(t.status).toBe("succeeded");
    expect(t.output.result).toMatchObject({ task: "later", context: { ms: 700 } });
  });

  it("async: the task id the server gave is polled as one percent-encoded path segment until 200", async () => {
    const server = await fake();
    const taskId = "../odd id/1?x#y";
    const poll = `GET /api/v1/agents/tasks/${encodeURIComponent(taskId)}`;
    server.route("POST /api/v1/agents/echo/execute/async", { status: 202, json: { task_id: taskId } });
    server.enqueue(poll, { status: 202 }, { status: 202, json: { status: "running" } });
    server.route(poll, { json: agentOk("done") });
    const { result, report } = await runPipeline(
      { tasks: [task("later", "echo", { async: true, poll_interval: "50ms" })] },
      [server.url],
    );
    expect(result.exitCode, result.stderr).toBe(0);
    expect(byId(report).later.output.result).toEqual({ path: "done" });
    const calls = server.received().filter((r) => r.path !== "/health");
    expect(calls.map((r) => `${r.method} ${r.path}`)).toEqual([
      "POST /api/v1/agents/echo/execute/async",
      poll,
      poll,
      poll,
    ]);
  });

  it("per-task timeout and retries: a hung attempt is retried with the same idempotency key; no retries → timeout", async () => {
    const server = await fake();
    server.enqueue("POST /api/v1/agents/flaky/execute", { hang: true });
    server.route("POST /api/v1/agents/dead/execute", { hang: true });
    server.enqueue(
      "POST /api/v1/agents/busy/execute",
      { status: 503, json: { error: "busy" } },
      { status: 503, json: { error: "busy" } },
    );
    server.enqueue(
      "POST /api/v1/agents/unlucky/execute",
      { status: 500, body: "oops" },
      { status: 500, body: "oops" },
    );
    const { result, report } = await runPipeline(
      {
        retries: 0,
        timeout: "30s",
        // Six failures in all on one instance: keep its circuit closed for this test.
        circuit_breaker: { max_failures: 100 },
        tasks: [
          task("flaky", "flaky", { timeout: "300ms", retries: 1 }),
          task("dead", "dead", { timeout: "300ms" }),
          task("busy", "busy", { retries: 2 }),
          task("unlucky", "unlucky", { retries: 1 }),
        ],
      },
      [server.url],
    );
    expect(result.exitCode).toBe(1);
    const t = byId(report);
    expect(t.flaky, JSON.stringify(t.flaky.error)).toMatchObject({ status: "succeeded", attempts: 2 });
    expect(t.dead).toMatchObject({ status: "failed", attempts: 1, error: { code: "timeout" } });
    expect(t.dead.duration_ms).toBeLessThan(10_000);
    expect(t.busy).toMatchObject({ status: "succeeded", attempts: 3 });
    expect(t.unlucky).toMatchObject({
      status: "failed",
      attempts: 2,
      error: { code: "http_status", status: 500 },
    });
    const runId = report.run_id as string;
    const keys = (agent: string) =>
      server.received(`POST /api/v1/agents/${agent}/execute`).map((r) => r.headers["idempotency-key"]);
    expect(keys("flaky")).toEqual([`${runId}:flaky`, `${runId}:flaky`]);
    expect(keys("dead")).toEqual([`${runId}:dead`]);
    expect(keys("busy")).toEqual(Array(3).fill(`${runId}:busy`));
    await server.waitForIdle(); // the hung requests were really aborted
  });

  it("--retries and --timeout override the file's defaults; a task's own values still win", async () => {
    const server = await fake();
    server.enqueue("POST /api/v1/agents/twice/execute", { status: 503, json: {} }, { status: 503, json: {} });
    server.enqueue("POST /api/v1/agents/own/execute", { status: 503, json: {} });
    server.route("POST /api/v1/agents/slow/execute", (req) => ({ delayMs: 1500, json: agentOk(req.path) }));
    const { result, report } = await runPipeline(
      {
        retries: 0,
        timeout: "30s",
        tasks: [
          task("twice", "twice"), // flag: 2 retries
          task("own", "own", { retries: 0 }), // its own 0 wins over the flag
          task("slow", "slow", { retries: 0 }), // flag: 400ms per attempt
          task("patient", "slow", { retries: 0, timeout: "20s" }), // its own timeout wins
        ],
      },
      [server.url],
      ["--retries", "2", "--timeout", "400ms"],
    );
    expect(result.exitCode).toBe(1);
    const t = byId(report);
    expect(t.twice).toMatchObject({ status: "succeeded", attempts: 3 });
    expect(t.own).toMatchObject({
      status: "failed",
      attempts: 1,
      error: { code: "http_status", status: 503 },
    });
    expect(t.slow).toMatchObject({ status: "failed", attempts: 1, error: { code: "timeout" } });
    expect(t.patient).toMatchObject({ status: "succeeded", attempts: 1 });
  });

  it("--concurrency bounds the agent calls in flight (measured at the server), over the file's value", async () => {
    const [limited, byFile] = [await fake(), await fake()];
    for (const s of [limited, byFile])
      s.route(/\/execute$/, (req) => ({ delayMs: 250, json: agentOk(req.path) }));
    const tasks = Array.from({ length: 12 }, (_, i) => task(`t${i}`, "echo"));
    const [a, b] = await Promise.all([
      runPipeline({ concurrency: 8, tasks }, [limited.url], ["--concurrency", "3"]),
      runPipeline({ concurrency: 5, tasks }, [byFile.url]),
    ]);
    expect(a.result.exitCode, a.result.stderr).toBe(0);
    expect(b.result.exitCode, b.result.stderr).toBe(0);
    expect(limited.agentCalls).toHaveLength(12);
    expect(limited.maxInFlight).toBe(3);
    expect(byFile.maxInFlight).toBe(5);
  });

  it("--deadline: exit 1, the hung call is aborted and unfinished tasks are cancelled", async () => {
    const server = await fake();
    server.route("POST /api/v1/agents/hang/execute", { hang: true });
    const started = Date.now();
    const { result, report } = await runPipeline(
      {
        tasks: [task("stuck", "hang"), task("after", "echo", { needs: ["stuck"] }), task("quick", "echo")],
      },
      [server.url],
      ["--deadline", "1s"],
    );
    expect(result.exitCode).toBe(1);
    expect(Date.now() - started).toBeLessThan(15_000);
    const t = byId(report);
    expect(t.stuck).toMatchObject({ status: "cancelled", error: { code: "cancelled" } });
    expect(t.after).toMatchObject({ status: "cancelled", error: { code: "cancelled" } });
    expect(t.quick.status).toBe("succeeded");
    expect(report.status).not.toBe("succeeded");
    expect(report.summary).toEqual({ total: 3, succeeded: 1, failed: 0, skipped: 0, cancelled: 2 });
    expect(report.duration_ms).toBeGreaterThanOrEqual(900);
    await server.waitForIdle();
  });

  it("expressions: one expression keeps its JSON type, text gets JSON inserted; vars, --var, env, run.id, task outputs", async () => {
    const server = await reference();
    const { result, report } = await runPipeline(
      {
        vars: {
          obj: { a: [1, { b: true }], s: "x" },
          n: 42,
          flag: false,
          name: "world",
          over: "from-file",
          nothing: null,
        },
        tasks: [
          task("first", "echo", {
            input: {
              task: "hello ${{ vars.name }}",
              context: {
                obj: "${{ vars.obj }}",
                n: "${{ vars.n }}",
                flag: "${{ vars.flag }}",
                nothing: "${{ vars.nothing }}",
                deep: "${{ vars.obj.a[1].b }}",
                text: "n=${{ vars.n }} obj=${{ vars.obj }} flag=${{ vars.flag }}",
                over: "${{ vars.over }}",
                from_env: "${{ env.AGENTCTL_E2E_PLAIN }}",
                run: "${{ run.id }}",
                spaced: "${{vars.name}}",
              },
            },
          }),
          task("second", "echo", {
            needs: ["first"],
            input: {
              task: "${{ tasks.first.output.result.task }}",
              context: {
                obj: "${{ tasks.first.output.result.context.obj }}",
                first_item: "${{ tasks.first.output.result.context.obj.a[0] }}",
                status: "status=${{ tasks.first.output.status }}",
              },
            },
          }),
        ],
      },
      [server.url],
      ["--var", "over=from-flag"],
      { AGENTCTL_E2E_PLAIN: "value-from-the-environment" },
    );
    expect(result.exitCode, result.stderr).toBe(0);
    const runId = report.run_id as string;
    const first = only(server.requests, runId, "first").body as any;
    expect(first.task).toBe("hello world");
    expect(first.context).toEqual({
      obj: { a: [1, { b: true }], s: "x" },
      n: 42,
      flag: false,
      nothing: null,
      deep: true,
      text: 'n=42 obj={"a":[1,{"b":true}],"s":"x"} flag=false',
      over: "from-flag",
      from_env: "value-from-the-environment",
      run: runId,
      spaced: "world",
    });
    expect(first.session_id).toBe(runId);
    const second = only(server.requests, runId, "second").body as any;
    expect(second.task).toBe("hello world");
    expect(second.context).toEqual({
      obj: { a: [1, { b: true }], s: "x" },
      first_item: 1,
      status: "status=success",
    });
    // An env value is a secret: the server got it, the output does not show it.
    expect(result.stdout).not.toContain("value-from-the-environment");
  });

  it("a for_each whose expression gives no list fails that task with template, saying what it got", async () => {
    const server = await reference();
    const { result, report } = await runPipeline(
      {
        tasks: [
          task("first", "echo", { input: { task: "x" } }),
          task("counts", "echo", {
            needs: ["first"],
            for_each: "${{ tasks.first.output.result.task }}",
            input: { task: "${{ item }}" },
          }),
        ],
      },
      [server.url],
    );
    expect(result.exitCode, result.stderr).toBe(1);
    expect(byId(report).counts).toMatchObject({
      status: "failed",
      attempts: 0,
      error: { code: "template", message: 'for_each of counts is not a list (got "x")' },
    });
  });
});

function agentOk(path: string) {
  return {
    result: { path },
    status: "success",
    message: "",
    reasoning_steps: [],
    tool_calls: [],
    latency: 1,
    timestamp: new Date().toISOString(),
    metadata: {},
  };
}
