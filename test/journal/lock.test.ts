import { existsSync, utimesSync, writeFileSync } from "node:fs";
import { hostname } from "node:os";
import { describe, expect, it } from "vitest";
import { agentOutput } from "../helpers/fake-agent-server.js";
import {
  type Cli,
  cli,
  failedRun,
  fakeServer,
  journalPath,
  json,
  keyOf,
  type Rec,
  records,
  resume,
  tempDir,
  twoTaskPipeline,
  twoTasks,
  useJournalTests,
  waitUntil,
  writeText,
} from "../helpers/journal.js";

/**
 * SPEC §8: one process at a time resumes a run — two resumes of the same id at once cannot both
 * proceed — and a lock left behind by a SIGKILLed run does not block its resume.
 */

useJournalTests();

describe("the run lock", () => {
  it("a lock left by a SIGKILLed run does not block resuming it; files a killed locker left aside are removed", async () => {
    const t = await twoTasks();
    t.set("hang");
    const child = cli(t.dir, ["run", "p.yaml", "--output", "json"]);
    const runId = await child.runId();
    await t.server.waitFor(() => t.calls("second", runId) === 1, 15_000, "second called");
    const lock = `${journalPath(t.dir, runId)}.lock`;
    expect(existsSync(lock)).toBe(true);
    child.kill("SIGKILL");
    await child.done;
    expect(existsSync(lock)).toBe(true); // left behind by the dead owner
    // What a process killed between writing a lock aside and linking it leaves: removed when
    // its pid is dead (above Linux's largest pid) and the file old, kept otherwise.
    const aside = (pid: number, ageS: number, of = lock) => {
      const file = `${of}.${pid}.0badf00d.tmp`;
      writeFileSync(file, "{}");
      const at = Date.now() / 1000 - ageS;
      utimesSync(file, at, at);
      return file;
    };
    const orphan = aside(4_194_399, 60);
    const fresh = aside(4_194_398, 0);
    const live = aside(process.pid, 60);
    // Another run's, never resumed (its journal may not even exist): taken care of too.
    const others = aside(4_194_397, 60, `${journalPath(t.dir, "20260101-000000-abcdef")}.lock`);
    t.set("ok");
    const r = await resume(t.dir, runId);
    expect(r.exitCode, r.stderr).toBe(0);
    expect(t.calls("first", runId)).toBe(1);
    expect(existsSync(lock)).toBe(false);
    expect([orphan, fresh, live, others].map(existsSync)).toEqual([false, true, true, false]);
  });

  it("a garbage lock file is stale; a lock held by a live process refuses the resume (exit 2)", async () => {
    const t = await twoTasks();
    const runId = await failedRun(t);
    const lock = `${journalPath(t.dir, runId)}.lock`;
    // Held by a live process on this host (the test runner itself).
    writeFileSync(lock, JSON.stringify({ pid: process.pid, host: hostname(), at: new Date().toISOString() }));
    const held = await resume(t.dir, runId);
    expect(held.exitCode).toBe(2);
    expect(held.stderr).toMatch(/in progress|being resumed/);
    expect(held.stderr).toContain(String(process.pid));
    expect(t.calls("second", runId)).toBe(1);
    // Garbage (not a lock this code writes): stale.
    writeFileSync(lock, '{"pid":');
    const r = await resume(t.dir, runId);
    expect(r.exitCode, r.stderr).toBe(0);
  });

  it("two resumes of the same run at once: exactly one proceeds, the other exits 2 (5 rounds)", async () => {
    const server = await fakeServer();
    let release: ((reply: Rec) => void) | undefined;
    server.route(
      (q) => q.method === "POST" && q.path.endsWith("/execute"),
      (q) => {
        const task = String((q.json as Rec).task);
        if (task === "first") return { json: agentOutput({ result: "FIRST" }) };
        // `second` waits for the test: a winner holds the run (and its lock) meanwhile.
        return new Promise((resolve) => {
          release = (reply) => resolve(reply);
        });
      },
    );
    const dir = await tempDir();
    await writeText(dir, "p.yaml", twoTaskPipeline(server.url));
    const start = cli(dir, ["run", "p.yaml", "--output", "json"]);
    const runId = await start.runId();
    const seconds = () => server.agentCalls.filter((q) => keyOf(q) === `${runId}:second`).length;
    await waitUntil(() => seconds() === 1, 15_000, "second called");
    release!({ status: 500, json: { error: "boom" } });
    expect((await start.done).exitCode).toBe(1);

    const rounds = 5;
    for (let round = 1; round <= rounds; round++) {
      const pair: Cli[] = [0, 1].map(() =>
        cli(dir, ["run", "p.yaml", "--output", "json", "--resume", runId]),
      );
      // The loser gives up at once; the winner is stuck on `second` until released.
      await waitUntil(() => pair.some((c) => c.exited), 15_000, `round ${round}: one resume to end`);
      const loser = pair.find((c) => c.exited)!;
      const winner = pair.find((c) => c !== loser)!;
      const lost = await loser.done;
      expect(lost.exitCode, `round ${round}: ${lost.stderr}`).toBe(2);
      expect(lost.stderr).toMatch(/in progress|being resumed/);
      expect(lost.stdout).toBe("");
      await waitUntil(() => seconds() === round + 1, 15_000, `round ${round}: second called by the winner`);
      expect(winner.exited).toBe(false);
      const last = round === rounds;
      release!(last ? { json: agentOutput({ result: "DONE" }) } : { status: 500, json: { error: "boom" } });
      const won = await winner.done;
      expect(won.exitCode, won.stderr).toBe(last ? 0 : 1);
      expect(json(won).run_id).toBe(runId);
    }
    // One call of `second` per round (the loser called nothing), `first` never again.
    expect(seconds()).toBe(rounds + 1);
    expect(server.agentCalls.filter((q) => keyOf(q) === `${runId}:first`)).toHaveLength(1);
    const recs = records(journalPath(dir, runId));
    expect(recs.filter((x) => x.type === "resume")).toHaveLength(rounds);
    expect(recs.at(-1)).toMatchObject({ type: "run_end", status: "succeeded" });
  }, 90_000);
});
