import { appendFileSync, existsSync, readFileSync, writeFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import {
  failedRun,
  journalPath,
  json,
  twoTaskPipeline as pipeline,
  type Rec,
  resume,
  run,
  twoTasks,
  useJournalTests,
  writeText,
} from "../helpers/journal.js";

/**
 * SPEC §8 robustness: torn and corrupt journals, a changed pipeline (refused unless --force),
 * unknown run ids.
 */

useJournalTests();

describe("torn and corrupt journals", () => {
  it("a torn last line (half a record, as kill -9 mid-write leaves it) is ignored, and stays harmless", async () => {
    const t = await twoTasks();
    const runId = await failedRun(t);
    const path = journalPath(t.dir, runId);
    appendFileSync(path, '{"type":"task_end","task":"second","report":{"id":"sec');
    const r = await resume(t.dir, runId);
    expect(r.exitCode, r.stderr).toBe(0);
    expect(json(r).tasks.map((x: Rec) => x.output.result)).toEqual(["FIRST", "FIRST-WORLD"]);
    expect(t.calls("first", runId)).toBe(1);
    expect(t.calls("second", runId)).toBe(2);
    // What the resume appended starts on a line of its own: the whole file reads back…
    const text = readFileSync(path, "utf8");
    expect(text.endsWith("\n")).toBe(true);
    for (const line of text.trimEnd().split("\n")) expect(() => JSON.parse(line), line).not.toThrow();
    // …so the run can be listed and resumed again (nothing left to call).
    const again = await resume(t.dir, runId);
    expect(again.exitCode, again.stderr).toBe(0);
    expect(t.server.agentCalls).toHaveLength(3);
  });

  it("a corrupt line is reported with its line number (exit 2, nothing called), in the middle or last", async () => {
    const t = await twoTasks();
    const runId = await failedRun(t);
    const path = journalPath(t.dir, runId);
    const original = readFileSync(path, "utf8");
    const calls = t.server.agentCalls.length;

    // A complete last line (it has its newline: not torn) that is not JSON.
    const n = original.trimEnd().split("\n").length;
    appendFileSync(path, "not json at all\n");
    let r = await resume(t.dir, runId);
    expect(r.exitCode).toBe(2);
    expect(r.stderr).toContain(`:${n + 1}`);

    // A line in the middle.
    const lines = original.split("\n");
    expect(lines.length).toBeGreaterThan(4);
    lines[2] = '{"type":"task_end",,"task":"first"';
    writeFileSync(path, lines.join("\n"));
    r = await resume(t.dir, runId);
    expect(r.exitCode).toBe(2);
    expect(r.stderr).toMatch(/:3\b/);
    expect(r.stderr).toMatch(/corrupt/i);
    expect(r.stdout).toBe("");
    expect(t.server.agentCalls.length).toBe(calls);
    // Not silently repaired or dropped either; the refused resume left no lock behind.
    expect(readFileSync(path, "utf8")).toBe(lines.join("\n"));
    expect(existsSync(`${path}.lock`)).toBe(false);
  });
});

describe("vars on resume", () => {
  const withExtra = (url: string) => pipeline(url).replace("vars.who", "vars.extra");

  it("a --var the file does not declare is kept by a resume without --var", async () => {
    const t = await twoTasks();
    await writeText(t.dir, "p.yaml", withExtra(t.server.url));
    const first = await run(t.dir, ["run", "p.yaml", "--output", "json", "--var", "extra=given"]);
    expect(first.exitCode, first.stderr).toBe(1);
    const runId = json(first).run_id;
    t.set("ok");
    const r = await resume(t.dir, runId);
    expect(r.exitCode, r.stderr).toBe(0);
    expect(json(r).tasks.map((x: Rec) => x.output.result)).toEqual(["FIRST", "FIRST-GIVEN"]);
  });

  it("a var that is just stars, with no secret in it, resumes as it is", async () => {
    const t = await twoTasks();
    await writeText(t.dir, "p.yaml", withExtra(t.server.url));
    const first = await run(t.dir, ["run", "p.yaml", "--output", "json", "--var", "extra=***"]);
    expect(first.exitCode, first.stderr).toBe(1);
    t.set("ok");
    const r = await resume(t.dir, json(first).run_id);
    expect(r.exitCode, r.stderr).toBe(0);
    expect(json(r).tasks.map((x: Rec) => x.output.result)).toEqual(["FIRST", "FIRST-***"]);
  });

  it("a var that held a secret is not in the journal: a resume needs it again, and takes it", async () => {
    const t = await twoTasks();
    const secret = "tok-secret-77";
    const env = { AGENTCTL_T_TOKEN: secret };
    await writeText(
      t.dir,
      "p.yaml",
      withExtra(t.server.url).replace(
        "svc: { instances:",
        'svc: { headers: { authorization: "${{ env.AGENTCTL_T_TOKEN }}" }, instances:',
      ),
    );
    t.set("fail");
    const first = await run(t.dir, ["run", "p.yaml", "--output", "json", "--var", `extra=${secret}`], {
      env,
    });
    expect(first.exitCode, first.stderr).toBe(1);
    const runId = json(first).run_id;
    expect(readFileSync(journalPath(t.dir, runId), "utf8")).not.toContain(secret);
    t.set("ok");
    const without = await run(t.dir, ["run", "p.yaml", "--output", "json", "--resume", runId], { env });
    expect(without.exitCode).toBe(2);
    expect(without.stderr).toMatch(/vars that held secrets \(extra\).*--var/);
    const again = await run(
      t.dir,
      ["run", "p.yaml", "--output", "json", "--resume", runId, "--var", `extra=${secret}`],
      { env },
    );
    expect(again.exitCode, again.stderr).toBe(0);
    const sent = t.server.agentCalls.filter((q) => (q.json as Rec).task === `FIRST-${secret}`);
    // Once in the failed run, once in the resume: the real value both times.
    expect(sent).toHaveLength(2);
  });
});

describe("refusals", () => {
  it("a changed pipeline is refused with exit 2 naming what changed; --force goes on", async () => {
    const t = await twoTasks();
    const runId = await failedRun(t);
    const calls = t.server.agentCalls.length;

    // A task's definition changed.
    await writeText(t.dir, "p.yaml", pipeline(t.server.url).replace("}}-", "}}+"));
    let r = await resume(t.dir, runId);
    expect(r.exitCode).toBe(2);
    expect(r.stderr).toMatch(/changed/);
    expect(r.stderr).toMatch(/\bsecond\b/);
    expect(r.stderr).not.toMatch(/\bfirst\b/);
    expect(r.stderr).toContain("--force");
    expect(existsSync(`${journalPath(t.dir, runId)}.lock`)).toBe(false); // refused: lock released

    // A task added.
    const third = "  - { id: third, service: svc, agent: echo, needs: [second], input: { task: third } }\n";
    await writeText(t.dir, "p.yaml", pipeline(t.server.url, third));
    r = await resume(t.dir, runId);
    expect(r.exitCode).toBe(2);
    expect(r.stderr).toMatch(/added: third/);

    // Only a comment: the file is not the same file any more.
    await writeText(t.dir, "p.yaml", `${pipeline(t.server.url)}# edited\n`);
    r = await resume(t.dir, runId);
    expect(r.exitCode).toBe(2);
    expect(r.stderr).toMatch(/changed/);

    // Another pipeline altogether (the wrong run id, most likely): say whose run it is.
    await writeText(t.dir, "p.yaml", pipeline(t.server.url, third).replace("name: robust", "name: other"));
    r = await resume(t.dir, runId);
    expect(r.exitCode).toBe(2);
    expect(r.stderr).toContain('(it is a run of pipeline "robust", not "other": is it the right run id?)');

    // The same file, other vars.
    await writeText(t.dir, "p.yaml", pipeline(t.server.url));
    r = await resume(t.dir, runId, "--var", "who=mars");
    expect(r.exitCode).toBe(2);
    expect(r.stderr).toMatch(/vars changed: who/);
    expect(t.server.agentCalls.length).toBe(calls);

    // --force: the run goes on, the succeeded task is still not called again.
    await writeText(t.dir, "p.yaml", pipeline(t.server.url, third));
    r = await resume(t.dir, runId, "--force");
    expect(r.exitCode, r.stderr).toBe(0);
    const result = json(r);
    expect(result.run_id).toBe(runId);
    expect(result.tasks.map((x: Rec) => [x.id, x.status])).toEqual([
      ["first", "succeeded"],
      ["second", "succeeded"],
      ["third", "succeeded"],
    ]);
    expect(t.calls("first", runId)).toBe(1);
    expect(t.calls("third", runId)).toBe(1);

    // The run is of the new pipeline now: a plain resume needs no --force, and runs counts its tasks.
    r = await resume(t.dir, runId);
    expect(r.exitCode, r.stderr).toBe(0);
    // Forced onto a renamed pipeline, the run is of that name: a changed file now names it.
    await writeText(t.dir, "p.yaml", pipeline(t.server.url, third).replace("name: robust", "name: renamed"));
    expect((await resume(t.dir, runId, "--force")).exitCode).toBe(0);
    const runsNow = async () =>
      (json(await run(t.dir, ["runs", "--output", "json"])) as Rec[]).find((x) => x.run_id === runId);
    await writeText(
      t.dir,
      "p.yaml",
      `${pipeline(t.server.url, third).replace("name: robust", "name: again")}`,
    );
    r = await resume(t.dir, runId);
    expect(r.stderr).toContain('is a run of pipeline "renamed", not "again"');
    expect(await runsNow()).toMatchObject({ pipeline: "renamed" });
    // A forced resume written by an older version names no pipeline: nothing is claimed then.
    const path = journalPath(t.dir, runId);
    const lines = readFileSync(path, "utf8").split("\n");
    const older = (l: string) =>
      l.includes('"forced":true') ? l.replace(/"pipeline":"[^"]*","file":"[^"]*",/, "") : l;
    writeFileSync(path, lines.map(older).join("\n"));
    r = await resume(t.dir, runId);
    expect(r.exitCode).toBe(2);
    expect(r.stderr).not.toContain("is a run of pipeline");
    expect(await runsNow()).toMatchObject({ pipeline: "robust" });
    await writeText(t.dir, "p.yaml", pipeline(t.server.url, third));
    const listed = (json(await run(t.dir, ["runs", "--output", "json"])) as Rec[]).find(
      (x) => x.run_id === runId,
    );
    expect(listed).toMatchObject({
      status: "succeeded",
      counts: { total: 3, succeeded: 3, failed: 0, skipped: 0, cancelled: 0 },
    });
  });

  it("a forced resume with a task renamed reuses only this pipeline's tasks, and counts only them", async () => {
    const t = await twoTasks();
    const runId = await failedRun(t);
    await writeText(t.dir, "p.yaml", pipeline(t.server.url).replaceAll("second", "renamed"));
    const r = await resume(t.dir, runId, "--force");
    expect(r.exitCode, r.stderr).toBe(0);
    expect(r.stderr).toContain("(resumed: 1 task already done)");
    expect(json(r).tasks.map((x: Rec) => [x.id, x.status])).toEqual([
      ["first", "succeeded"],
      ["renamed", "succeeded"],
    ]);
    const listed = (json(await run(t.dir, ["runs", "--output", "json"])) as Rec[]).find(
      (x) => x.run_id === runId,
    );
    expect(listed?.counts).toEqual({ total: 2, succeeded: 2, failed: 0, skipped: 0, cancelled: 0 });
  });

  it("an unknown run id is exit 2, and so is an id that is not a plain name", async () => {
    const t = await twoTasks();
    for (const id of ["20990101-000000-abcdef", "../../etc/passwd"]) {
      const r = await resume(t.dir, id);
      expect(r.exitCode, id).toBe(2);
      expect(r.stderr, id).toMatch(/unknown run/);
    }
    const forceAlone = await run(t.dir, ["run", "p.yaml", "--force"]);
    expect(forceAlone.exitCode).toBe(2);
    expect(t.server.agentCalls).toHaveLength(0);
  });
});
