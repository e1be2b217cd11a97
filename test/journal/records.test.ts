import { createHash } from "node:crypto";
import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { type AgentServer, startAgentServer } from "../../src/server/index.js";
import { agentOutput } from "../helpers/fake-agent-server.js";
import {
  callsPerKey,
  cli,
  closeAfterTest,
  fakeServer,
  journalFiles,
  journalPath,
  json,
  keyOf,
  records,
  run,
  tempDir,
  useJournalTests,
  writeText,
} from "../helpers/journal.js";

/** SPEC §8: what the journal holds, that it reaches the file at once, and what it never holds. */

useJournalTests();

async function reference(): Promise<AgentServer> {
  return closeAfterTest(await startAgentServer({ port: 0, recordRequests: true }));
}

const fake = () => fakeServer(["echo", "upper", "sleep"]);

const fullPipeline = (url: string) => `name: records
services:
  svc:
    headers: { authorization: "Bearer \${{ env.JOURNAL_TOKEN }}" }
    instances:
      - endpoint: ${url}
vars: { who: world, n: 3 }
retries: 0
tasks:
  - id: greet
    service: svc
    agent: echo
    input: { task: "hello \${{ vars.who }}" }
  - id: fan
    service: svc
    agent: upper
    needs: [greet]
    for_each: ["a", "b", "c"]
    input: { task: "\${{ item }}-\${{ index }}" }
  - id: later
    service: svc
    agent: sleep
    async: true
    poll_interval: 50ms
    needs: [fan]
    input:
      task: "\${{ tasks.fan.outputs[1].result }}"
      context: { ms: 150, secret: "\${{ env.JOURNAL_TOKEN }}" }
`;

const SECRET = "tok-7f3a9c-very-secret";

describe("the journal of a run", () => {
  it("holds the run header (hash, vars), task_start, async, item, task_end and run_end records", async () => {
    const server = await reference();
    const dir = await tempDir();
    const file = await writeText(dir, "p.yaml", fullPipeline(server.url));
    const r = await run(dir, ["run", "p.yaml", "--output", "json", "--var", "who=there"], {
      env: { JOURNAL_TOKEN: SECRET },
    });
    expect(r.exitCode, r.stderr).toBe(0);
    const result = json(r);
    const runId: string = result.run_id;
    expect(runId).toMatch(/^[A-Za-z0-9_.-]+$/);
    // The run id is on stderr (at the start) and in the JSON result.
    expect(r.stderr).toContain(`run ${runId}`);
    expect(journalFiles(dir)).toEqual([`${runId}.jsonl`]);

    const recs = records(journalPath(dir, runId));
    const header = recs[0]!;
    expect(header).toMatchObject({ type: "run", run_id: runId, pipeline: "records" });
    expect(header.hash).toBe(createHash("sha256").update(readFileSync(file)).digest("hex"));
    expect(header.vars).toEqual({ who: "there", n: 3 });
    expect(typeof header.started_at).toBe("string");

    const types = recs.map((x) => x.type);
    expect(types[types.length - 1]).toBe("run_end");
    expect(recs.at(-1)).toMatchObject({
      status: "succeeded",
      summary: { total: 3, succeeded: 3, failed: 0, skipped: 0, cancelled: 0 },
    });
    for (const id of ["greet", "fan", "later"]) {
      const start = recs.findIndex((x) => x.type === "task_start" && x.task === id);
      const end = recs.findIndex((x) => x.type === "task_end" && x.task === id);
      expect(start, id).toBeGreaterThan(0);
      expect(end, id).toBeGreaterThan(start);
      expect(recs[end]!.report.status).toBe("succeeded");
    }
    // One item record per fan-out item, each with its output.
    const items = recs.filter((x) => x.type === "item" && x.task === "fan");
    expect(items.map((x) => x.index).sort()).toEqual([0, 1, 2]);
    expect(items.find((x) => x.index === 1)!.output.result).toBe("B-1");
    // The async task id, as the server gave it and as it was polled.
    const asyncRec = recs.find((x) => x.type === "async");
    expect(asyncRec).toMatchObject({ task: "later", endpoint: server.url });
    const polled = server.requests.filter((q) => q.method === "GET" && q.path.includes("/tasks/"));
    expect(polled.length).toBeGreaterThan(0);
    expect(polled.every((q) => q.path === `/api/v1/agents/tasks/${asyncRec!.task_id}`)).toBe(true);
    const laterStart = recs.findIndex((x) => x.type === "task_start" && x.task === "later");
    const laterEnd = recs.findIndex((x) => x.type === "task_end" && x.task === "later");
    const asyncAt = recs.indexOf(asyncRec!);
    expect(asyncAt).toBeGreaterThan(laterStart);
    expect(asyncAt).toBeLessThan(laterEnd);
    // The task_end of a single task carries its output.
    expect(recs[laterEnd]!.report.output.result.task).toBe("B-1");
  });

  it("never holds a secret: header values and env values are redacted", async () => {
    const server = await reference();
    const dir = await tempDir();
    await writeText(dir, "p.yaml", fullPipeline(server.url));
    const r = await run(dir, ["run", "p.yaml", "--output", "json"], { env: { JOURNAL_TOKEN: SECRET } });
    expect(r.exitCode, r.stderr).toBe(0);
    // The secret was really used on the wire…
    expect(server.requests.some((q) => q.headers.authorization === `Bearer ${SECRET}`)).toBe(true);
    expect(JSON.stringify(server.requests.map((q) => q.body))).toContain(SECRET);
    // …and is nowhere in the journal (nor in the output).
    const text = readFileSync(journalPath(dir, json(r).run_id), "utf8");
    expect(text.length).toBeGreaterThan(0);
    expect(text).not.toContain(SECRET);
    expect(text).not.toContain("tok-7f3a9c");
    expect(r.stdout).not.toContain(SECRET);
    expect(r.stderr).not.toContain(SECRET);
  });

  it("--state-dir moves the journal, and resuming looks there", async () => {
    const server = await fake();
    let fail = true;
    server.route(
      (q) => q.method === "POST" && q.path.endsWith("/execute"),
      (q) =>
        fail && (q.json as { task?: string }).task === "second"
          ? { status: 500, json: { error: "boom" } }
          : { json: agentOutput({ result: (q.json as { task?: string }).task }) },
    );
    const dir = await tempDir();
    await writeText(
      dir,
      "p.yaml",
      `name: moved
services: { svc: { instances: [ { endpoint: ${server.url} } ] } }
retries: 0
tasks:
  - { id: first, service: svc, agent: echo, input: { task: first } }
  - { id: second, service: svc, agent: echo, needs: [first], input: { task: second } }
`,
    );
    const r1 = await run(dir, ["run", "p.yaml", "--output", "json", "--state-dir", "state/here"]);
    expect(r1.exitCode, r1.stderr).toBe(1);
    const runId = json(r1).run_id;
    expect(existsSync(journalPath(dir, runId, "state/here"))).toBe(true);
    expect(existsSync(join(dir, ".agentctl"))).toBe(false);

    fail = false;
    // Without --state-dir the run is unknown (nothing is called)…
    const before = server.agentCalls.length;
    const lost = await run(dir, ["run", "p.yaml", "--output", "json", "--resume", runId]);
    expect(lost.exitCode).toBe(2);
    expect(server.agentCalls.length).toBe(before);
    // …with it, the run resumes and `first` is not called again.
    const r2 = await run(dir, [
      "run",
      "p.yaml",
      "--output",
      "json",
      "--resume",
      runId,
      "--state-dir",
      "state/here",
    ]);
    expect(r2.exitCode, r2.stderr).toBe(0);
    expect(json(r2).run_id).toBe(runId);
    expect(callsPerKey(server.requests).get(`${runId}:first`)).toBe(1);
    expect(callsPerKey(server.requests).get(`${runId}:second`)).toBe(2);
    expect(existsSync(join(dir, ".agentctl"))).toBe(false);
    const runs = await run(dir, ["runs", "--state-dir", "state/here", "--output", "json"]);
    expect(json(runs).map((x: { run_id: string }) => x.run_id)).toEqual([runId]);
  });
});

describe("records reach the file before the run moves on (SIGKILL right after)", () => {
  it("a task's task_end is in the file when the task that needs it calls", async () => {
    const server = await fake();
    const dir = await tempDir();
    await writeText(
      dir,
      "p.yaml",
      `name: flush
services: { svc: { instances: [ { endpoint: ${server.url} } ] } }
tasks:
  - { id: first, service: svc, agent: echo, input: { task: one } }
  - { id: second, service: svc, agent: echo, needs: [first], input: { task: "\${{ tasks.first.output.result }}" } }
`,
    );
    let child: ReturnType<typeof cli> | undefined;
    server.route(
      (q) => q.method === "POST" && q.path.endsWith("/execute"),
      (q) => {
        if ((q.json as { task?: string }).task === "one") return { json: agentOutput({ result: "ONE" }) };
        // `second` called: `first` is over. Kill at once, in this very callback.
        child!.kill("SIGKILL");
        return { hang: true };
      },
    );
    child = cli(dir, ["run", "p.yaml", "--output", "json"]);
    const end = await child.done;
    expect(end.signal).toBe("SIGKILL");
    const [file] = journalFiles(dir);
    const recs = records(join(dir, ".agentctl", "runs", file!));
    const firstEnd = recs.find((x) => x.type === "task_end" && x.task === "first");
    expect(firstEnd?.report).toMatchObject({ status: "succeeded", output: { result: "ONE" } });
    expect(recs.some((x) => x.type === "task_start" && x.task === "second")).toBe(true);
    expect(recs.some((x) => x.type === "task_end" && x.task === "second")).toBe(false);
    expect(recs.some((x) => x.type === "run_end")).toBe(false);
  });

  it("an async task's id is in the file when it is first polled", async () => {
    const server = await fake();
    const dir = await tempDir();
    await writeText(
      dir,
      "p.yaml",
      `name: flush-async
services: { svc: { instances: [ { endpoint: ${server.url} } ] } }
tasks:
  - { id: job, service: svc, agent: sleep, async: true, poll_interval: 50ms, input: { task: x } }
`,
    );
    let child: ReturnType<typeof cli> | undefined;
    server.route("POST /api/v1/agents/sleep/execute/async", { status: 202, json: { task_id: "job-77" } });
    server.route(/\/tasks\//, () => {
      child!.kill("SIGKILL");
      return { status: 202, body: "" };
    });
    child = cli(dir, ["run", "p.yaml", "--output", "json"]);
    const end = await child.done;
    expect(end.signal).toBe("SIGKILL");
    const [file] = journalFiles(dir);
    const recs = records(join(dir, ".agentctl", "runs", file!));
    expect(recs.find((x) => x.type === "async")).toMatchObject({ task: "job", task_id: "job-77" });
  });

  it("every answered fan-out item is in the file when the run is killed mid fan-out", async () => {
    const server = await fake();
    const dir = await tempDir();
    await writeText(
      dir,
      "p.yaml",
      `name: flush-fan
services: { svc: { instances: [ { endpoint: ${server.url} } ] } }
tasks:
  - id: fan
    service: svc
    agent: echo
    for_each: [0, 1, 2, 3, 4, 5, 6, 7, 8, 9]
    input: { task: "\${{ item }}" }
`,
    );
    server.route(
      (q) => q.method === "POST" && q.path.endsWith("/execute"),
      (q) => {
        const n = Number((q.json as { task: string }).task);
        return n < 4 ? { delayMs: 20, json: agentOutput({ result: n }) } : { hang: true };
      },
    );
    const child = cli(dir, ["run", "p.yaml", "--output", "json", "--concurrency", "2"]);
    // Items 4 and 5 are called once items 0..3 have answered; they hang.
    await server.waitFor(() => server.agentCalls.length >= 6, 15_000, "items 4 and 5 called");
    const runId = await child.runId();
    // Nothing happens in the run now (4 and 5 hang); the margin outlasts the 50 ms item batch.
    await new Promise((r) => setTimeout(r, 300));
    child.kill("SIGKILL");
    await child.done;
    const recs = records(journalPath(dir, runId));
    const items = recs.filter((x) => x.type === "item");
    expect(items.map((x) => x.index).sort()).toEqual([0, 1, 2, 3]);
    expect(items.every((x) => x.output.result === x.index)).toBe(true);
    expect(recs.some((x) => x.type === "task_end")).toBe(false);
    // Every key is `<run_id>:fan:<index>`.
    expect(server.agentCalls.map(keyOf).sort()).toEqual(
      [0, 1, 2, 3, 4, 5].map((i) => `${runId}:fan:${i}`).sort(),
    );
  });
});
