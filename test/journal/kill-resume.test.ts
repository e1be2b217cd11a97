import { appendFile } from "node:fs/promises";
import { describe, expect, it } from "vitest";
import { agentOutput } from "../helpers/fake-agent-server.js";
import {
  cli,
  fakeServer,
  journalPath,
  json,
  keyOf,
  type Rec,
  records,
  run,
  ScriptedAgents,
  tempDir,
  useJournalTests,
  waitUntil,
  writeText,
} from "../helpers/journal.js";

/**
 * SPEC §8: a real run killed with SIGKILL at several points, then `--resume`d. The servers'
 * request logs show that no finished call is made again, that a pending async task is polled
 * by its task id rather than submitted again, and that reused outputs feed later tasks.
 */

useJournalTests();

const server = () => fakeServer(["echo", "sleep"]);

const taskOf = (body: Rec): string => String(body.task ?? "");

describe("SIGKILL, then --resume", () => {
  it("before any task ended: unfinished tasks run again, with the same run id and keys", async () => {
    const s = await server();
    const agents = new ScriptedAgents(s, ({ body, phase }) =>
      phase === 1 ? "hang" : taskOf(body).toUpperCase(),
    );
    const dir = await tempDir();
    await writeText(
      dir,
      "p.yaml",
      `name: early
services: { svc: { instances: [ { endpoint: ${s.url} } ] } }
retries: 0
vars: { sep: "+" }
tasks:
  - { id: a, service: svc, agent: echo, input: { task: a } }
  - { id: b, service: svc, agent: echo, input: { task: b } }
  - id: c
    service: svc
    agent: echo
    needs: [a, b]
    input: { task: "\${{ tasks.a.output.result }}\${{ vars.sep }}\${{ tasks.b.output.result }}" }
`,
    );
    const first = cli(dir, ["run", "p.yaml", "--output", "json", "--var", "sep=~"]);
    const runId = await first.runId();
    await s.waitFor(() => s.agentCalls.length >= 2, 15_000, "a and b called");
    first.kill();
    expect((await first.done).signal).toBe("SIGKILL");
    const recs = records(journalPath(dir, runId));
    expect(recs[0]).toMatchObject({ type: "run", run_id: runId, vars: { sep: "~" } });
    expect(
      recs
        .filter((x) => x.type === "task_start")
        .map((x) => x.task)
        .sort(),
    ).toEqual(["a", "b"]);
    expect(recs.some((x) => x.type === "task_end" || x.type === "run_end")).toBe(false);

    agents.phase = 2;
    // No --var this time: the run keeps the vars it was started with.
    const r = await run(dir, ["run", "p.yaml", "--output", "json", "--resume", runId]);
    expect(r.exitCode, r.stderr).toBe(0);
    expect(r.stderr).toContain(`run ${runId}`);
    const result = json(r);
    expect(result).toMatchObject({ run_id: runId, status: "succeeded" });
    expect(result.tasks.map((t: Rec) => [t.id, t.status, t.output.result])).toEqual([
      ["a", "succeeded", "A"],
      ["b", "succeeded", "B"],
      ["c", "succeeded", "A~B"],
    ]);
    // Unfinished calls are made again with the same idempotency key; c only once.
    for (const t of ["a", "b"]) {
      expect(agents.callsOf(`${runId}:${t}`, 1)).toBe(1);
      expect(agents.callsOf(`${runId}:${t}`, 2)).toBe(1);
    }
    expect(agents.callsOf(`${runId}:c`)).toBe(1);
    expect(s.agentCalls.every((q) => (q.json as Rec).session_id === runId)).toBe(true);
    expect(records(journalPath(dir, runId)).at(-1)).toMatchObject({ type: "run_end", status: "succeeded" });
  });

  it("a resume interrupted before it calls anything keeps the tasks it reused; the next resume does not call them", async () => {
    const s = await server();
    const agents = new ScriptedAgents(s, ({ task, phase }) => (task === "b" && phase < 3 ? "hang" : task));
    // While resuming the first time, the health probe hangs: the SIGINT comes before any task.
    s.route("GET /health", () => (agents.phase === 2 ? { hang: true } : { json: { status: "ok" } }));
    const dir = await tempDir();
    await writeText(
      dir,
      "p.yaml",
      `name: interrupted-resume
services: { svc: { instances: [ { endpoint: ${s.url} } ] } }
tasks:
  - { id: a, service: svc, agent: echo, input: { task: a } }
  - { id: b, service: svc, agent: echo, needs: [a], input: { task: b } }
`,
    );
    const first = cli(dir, ["run", "p.yaml", "--output", "json"]);
    const runId = await first.runId();
    await s.waitFor(() => agents.callsOf(`${runId}:b`) === 1, 15_000, "b called");
    first.kill();
    await first.done;

    agents.phase = 2;
    const second = cli(dir, ["run", "p.yaml", "--output", "json", "--resume", runId]);
    await s.waitFor(() => s.received("GET /health").length >= 2, 15_000, "the resume's health probe");
    second.kill("SIGINT");
    const interrupted = await second.done;
    expect(interrupted.exitCode, interrupted.stderr).toBe(130);
    expect(json(interrupted).tasks.map((t: Rec) => [t.id, t.status])).toEqual([
      ["a", "succeeded"],
      ["b", "cancelled"],
    ]);

    agents.phase = 3;
    const third = await run(dir, ["run", "p.yaml", "--output", "json", "--resume", runId]);
    expect(third.exitCode, third.stderr).toBe(0);
    expect(json(third).tasks.map((t: Rec) => [t.id, t.status, t.output.result])).toEqual([
      ["a", "succeeded", "a"],
      ["b", "succeeded", "b"],
    ]);
    expect(agents.callsOf(`${runId}:a`)).toBe(1);
  });

  it("a journal where a succeeded task later ended otherwise (an older agentctl) still reuses it", async () => {
    const s = await server();
    const agents = new ScriptedAgents(s, ({ task }) => task);
    const dir = await tempDir();
    await writeText(
      dir,
      "p.yaml",
      `name: superseded
services: { svc: { instances: [ { endpoint: ${s.url} } ] } }
tasks:
  - { id: a, service: svc, agent: echo, input: { task: a } }
`,
    );
    const runId = json(await run(dir, ["run", "p.yaml", "--output", "json"])).run_id;
    const path = journalPath(dir, runId);
    const end = records(path).find((x) => x.type === "task_end")!;
    const cancelled = { ...end, report: { ...end.report, status: "cancelled", output: undefined } };
    await appendFile(path, `${JSON.stringify(cancelled)}\n`);
    const r = await run(dir, ["run", "p.yaml", "--output", "json", "--resume", runId]);
    expect(r.exitCode, r.stderr).toBe(0);
    expect(json(r).tasks[0]).toMatchObject({ id: "a", status: "succeeded", output: { result: "a" } });
    expect(agents.callsOf(`${runId}:a`)).toBe(1);
  });

  it("mid fan-out (20 items, concurrency 2): answered items are kept, the rest run, outputs feed later tasks", async () => {
    const s = await server();
    const words = Array.from({ length: 20 }, (_, i) => `w${i}`);
    const agents = new ScriptedAgents(s, ({ task, body, phase }) => {
      if (task === "seed") return words;
      if (task === "fan") {
        const i = Number(taskOf(body).slice(1));
        if (phase === 1 && i >= 6) return "hang";
        return { delayMs: 60, result: taskOf(body).toUpperCase() };
      }
      return `total=${taskOf(body)}`;
    });
    const dir = await tempDir();
    await writeText(
      dir,
      "p.yaml",
      `name: fan
services: { svc: { instances: [ { endpoint: ${s.url} } ] } }
retries: 0
tasks:
  - { id: seed, service: svc, agent: echo, input: { task: seed } }
  - id: fan
    service: svc
    agent: echo
    needs: [seed]
    for_each: "\${{ tasks.seed.output.result }}"
    input: { task: "\${{ item }}" }
  - id: total
    service: svc
    agent: echo
    needs: [fan]
    input:
      task: "\${{ tasks.fan.outputs[0].result }}|\${{ tasks.fan.outputs[19].result }}|\${{ tasks.seed.output.result[2] }}"
`,
    );
    const first = cli(dir, ["run", "p.yaml", "--output", "json", "--concurrency", "2"]);
    const runId = await first.runId();
    // Items 6 and 7 are called once items 0..5 have answered; they hang.
    await s.waitFor(() => s.agentCalls.length >= 1 + 8, 20_000, "6 items answered, 2 more called");
    await new Promise((r) => setTimeout(r, 300)); // nothing moves now; let the last answer land
    first.kill();
    await first.done;
    const before = records(journalPath(dir, runId));
    expect(
      before
        .filter((x) => x.type === "item")
        .map((x) => x.index)
        .sort((x, y) => x - y),
    ).toEqual([0, 1, 2, 3, 4, 5]);
    expect(before.find((x) => x.type === "task_end")?.task).toBe("seed");

    agents.phase = 2;
    const r = await run(dir, ["run", "p.yaml", "--output", "json", "--resume", runId, "--concurrency", "2"]);
    expect(r.exitCode, r.stderr).toBe(0);
    const result = json(r);
    expect(result).toMatchObject({ run_id: runId, status: "succeeded", summary: { succeeded: 3 } });
    const [seed, fan, total] = result.tasks as Rec[];
    // The reused outputs are in the result as if just run.
    expect(seed!.output.result).toEqual(words);
    expect(fan!.outputs.map((o: Rec) => o.result)).toEqual(words.map((w) => w.toUpperCase()));
    expect(total!.output.result).toBe("total=W0|W19|w2");

    // No finished call was repeated: one call per key, except items 6 and 7 (cut off by the kill).
    expect(agents.callsOf(`${runId}:seed`)).toBe(1);
    for (let i = 0; i < 20; i++) {
      const key = `${runId}:fan:${i}`;
      expect(agents.callsOf(key), key).toBe(i === 6 || i === 7 ? 2 : 1);
      expect(agents.callsOf(key, 2), key).toBe(i < 6 ? 0 : 1);
    }
    expect(agents.callsOf(`${runId}:total`)).toBe(1);
    expect(s.agentCalls.map(keyOf).every((k) => k.startsWith(`${runId}:`))).toBe(true);
  });

  it("a finished fan-out is reused whole: not called again, its outputs in the result and in expressions", async () => {
    const s = await server();
    const agents = new ScriptedAgents(s, ({ task, body, phase }) => {
      if (task === "fan") return `out-${taskOf(body)}`;
      return phase === 1 ? "hang" : body.context;
    });
    const dir = await tempDir();
    await writeText(
      dir,
      "p.yaml",
      `name: reuse
services: { svc: { instances: [ { endpoint: ${s.url} } ] } }
retries: 0
tasks:
  - { id: fan, service: svc, agent: echo, for_each: [p, q, r, s, t], input: { task: "\${{ item }}" } }
  - id: use
    service: svc
    agent: echo
    needs: [fan]
    input: { task: use, context: { all: "\${{ tasks.fan.outputs }}", third: "\${{ tasks.fan.outputs[2].result }}" } }
`,
    );
    const first = cli(dir, ["run", "p.yaml", "--output", "json"]);
    const runId = await first.runId();
    await s.waitFor(() => agents.callsOf(`${runId}:use`) === 1, 15_000, "use called");
    first.kill();
    await first.done;
    const fanEnd = records(journalPath(dir, runId)).find((x) => x.type === "task_end" && x.task === "fan");
    expect(fanEnd?.report.status).toBe("succeeded");

    agents.phase = 2;
    const r = await run(dir, ["run", "p.yaml", "--output", "json", "--resume", runId]);
    expect(r.exitCode, r.stderr).toBe(0);
    const [fan, use] = json(r).tasks as Rec[];
    const results = ["out-p", "out-q", "out-r", "out-s", "out-t"];
    expect(fan!.status).toBe("succeeded");
    expect(fan!.outputs.map((o: Rec) => o.result)).toEqual(results);
    expect(use!.output.result.third).toBe("out-r");
    expect(use!.output.result.all.map((o: Rec) => o.result)).toEqual(results);
    for (let i = 0; i < 5; i++) expect(agents.callsOf(`${runId}:fan:${i}`)).toBe(1);
    expect(agents.callsOf(`${runId}:use`, 2)).toBe(1);
  });

  it("while async tasks are pending: they are polled by their task id, never submitted again", async () => {
    const s = await server();
    let phase = 1;
    let counter = 0;
    const jobs = new Map<string, { key: string; task: string }>();
    s.route(
      (q) => q.method === "POST" && q.path.endsWith("/execute/async"),
      (q) => {
        const id = `t-${++counter}`;
        jobs.set(id, { key: keyOf(q), task: taskOf(q.json as Rec) });
        return { status: 202, json: { task_id: id } };
      },
    );
    s.route(/\/api\/v1\/agents\/tasks\//, (q) => {
      const id = decodeURIComponent(q.path.split("/").pop()!);
      const job = jobs.get(id);
      if (!job) return { status: 404, json: { error: "unknown task" } };
      // In the first run only item 0 finishes; the rest keep running until the resume.
      if (phase === 1 && !job.key.endsWith(":items:0")) return { status: 202, body: "" };
      return { json: agentOutput({ result: `done-${job.task}` }) };
    });
    s.route(
      (q) => q.method === "POST" && q.path.endsWith("/execute"),
      (q) => ({ json: agentOutput({ result: taskOf(q.json as Rec).toUpperCase() }) }),
    );
    const dir = await tempDir();
    await writeText(
      dir,
      "p.yaml",
      `name: async
services: { svc: { instances: [ { endpoint: ${s.url} } ] } }
retries: 0
tasks:
  - { id: prep, service: svc, agent: echo, input: { task: prep } }
  - id: job
    service: svc
    agent: sleep
    async: true
    poll_interval: 100ms
    needs: [prep]
    input: { task: "\${{ tasks.prep.output.result }}" }
  - id: items
    service: svc
    agent: sleep
    async: true
    poll_interval: 100ms
    for_each: [x0, x1, x2]
    input: { task: "\${{ item }}" }
  - id: after
    service: svc
    agent: echo
    needs: [job, items]
    input: { task: "\${{ tasks.job.output.result }}/\${{ tasks.items.outputs[0].result }}/\${{ tasks.items.outputs[2].result }}" }
`,
    );
    const first = cli(dir, ["run", "p.yaml", "--output", "json"]);
    const runId = await first.runId();
    const path = journalPath(dir, runId);
    const polled = (id: string) =>
      s.requests.some((q) => q.method === "GET" && q.path.endsWith(`/tasks/${id}`));
    await waitUntil(
      () =>
        jobs.size === 4 &&
        [...jobs.keys()].every(polled) &&
        records(path).some((x) => x.type === "item" && x.index === 0),
      20_000,
      "every async task submitted and polled, item 0 journaled",
    );
    first.kill();
    await first.done;
    const journaled = records(path).filter((x) => x.type === "async");
    expect(journaled.map((x) => (x.index === undefined ? x.task : `${x.task}:${x.index}`)).sort()).toEqual([
      "items:0",
      "items:1",
      "items:2",
      "job",
    ]);

    phase = 2;
    const mark = s.requests.length;
    const r = await run(dir, ["run", "p.yaml", "--output", "json", "--resume", runId]);
    expect(r.exitCode, r.stderr).toBe(0);
    const result = json(r);
    expect(result).toMatchObject({ run_id: runId, status: "succeeded" });
    const byId = Object.fromEntries((result.tasks as Rec[]).map((t) => [t.id, t]));
    expect(byId.job.output.result).toBe("done-PREP");
    expect(byId.items.outputs.map((o: Rec) => o.result)).toEqual(["done-x0", "done-x1", "done-x2"]);
    expect(byId.after.output.result).toBe("DONE-PREP/DONE-X0/DONE-X2");

    // Nothing submitted again: one async submit per key over both runs, and prep called once.
    const submits = s.requests.filter((q) => q.method === "POST" && q.path.endsWith("/execute/async"));
    expect(submits.map(keyOf).sort()).toEqual(
      ["items:0", "items:1", "items:2", "job"].map((k) => `${runId}:${k}`).sort(),
    );
    expect(s.agentCalls.filter((q) => keyOf(q) === `${runId}:prep`)).toHaveLength(1);
    // The pending ones were polled by their journaled ids after the resume; finished item 0 not.
    const resumedPolls = s.requests
      .slice(mark)
      .filter((q) => q.method === "GET" && q.path.includes("/tasks/"));
    const idOf = (k: string) => [...jobs].find(([, j]) => j.key === `${runId}:${k}`)![0];
    for (const k of ["job", "items:1", "items:2"]) {
      expect(
        resumedPolls.some((q) => q.path === `/api/v1/agents/tasks/${idOf(k)}`),
        k,
      ).toBe(true);
    }
    expect(resumedPolls.some((q) => q.path.endsWith(`/tasks/${idOf("items:0")}`))).toBe(false);
  });

  it("after SIGINT (exit 130) with an async task pending, the resume polls it instead of submitting again", async () => {
    const s = await server();
    let phase = 1;
    let counter = 0;
    s.route("POST /api/v1/agents/sleep/execute/async", () => ({
      status: 202,
      json: { task_id: `job-${++counter}` },
    }));
    s.route(/\/tasks\//, () =>
      phase === 1 ? { status: 202, body: "" } : { json: agentOutput({ result: "finished" }) },
    );
    const dir = await tempDir();
    await writeText(
      dir,
      "p.yaml",
      `name: sigint
services: { svc: { instances: [ { endpoint: ${s.url} } ] } }
tasks:
  - { id: job, service: svc, agent: sleep, async: true, poll_interval: 100ms, input: { task: x } }
`,
    );
    const first = cli(dir, ["run", "p.yaml", "--output", "json"]);
    const runId = await first.runId();
    await s.waitFor(() => s.received(/\/tasks\//).length >= 1, 15_000, "the task polled");
    first.kill("SIGINT");
    const end = await first.done;
    expect(end.exitCode).toBe(130);
    expect(json(end).tasks[0].status).toBe("cancelled");

    phase = 2;
    const r = await run(dir, ["run", "p.yaml", "--output", "json", "--resume", runId]);
    expect(r.exitCode, r.stderr).toBe(0);
    expect(json(r).tasks[0].output.result).toBe("finished");
    expect(s.received("POST /api/v1/agents/sleep/execute/async")).toHaveLength(1);
    expect(s.received("GET /api/v1/agents/tasks/job-1").length).toBeGreaterThan(1);
  });
});
