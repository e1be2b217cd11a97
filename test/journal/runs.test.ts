import { appendFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import { agentOutput } from "../helpers/fake-agent-server.js";
import {
  cli,
  fakeServer,
  journalPath,
  json,
  keyOf,
  type Rec,
  run,
  tempDir,
  useJournalTests,
  writeText,
} from "../helpers/journal.js";

/** `agentctl runs`: recent runs from their journals (id, pipeline, started, status, counts). */

useJournalTests();

describe("agentctl runs", () => {
  it("lists nothing in a fresh directory (exit 0)", async () => {
    const dir = await tempDir();
    const asJson = await run(dir, ["runs", "--output", "json"]);
    expect(asJson.exitCode).toBe(0);
    expect(json(asJson)).toEqual([]);
    const table = await run(dir, ["runs"]);
    expect(table.exitCode).toBe(0);
    expect(table.stdout).toBe("");
    expect(table.stderr).toMatch(/no runs/);
  });

  it("shows succeeded, failed, interrupted and unreadable runs with their counts, newest first", async () => {
    const server = await fakeServer();
    let mode: "ok" | "fail" | "hang" = "ok";
    server.route(
      (q) => q.method === "POST" && q.path.endsWith("/execute"),
      (q) => {
        const task = String((q.json as Rec).task);
        if (task === "b" && mode === "fail") return { status: 500, json: { error: "boom" } };
        if (task === "b" && mode === "hang") return { hang: true };
        return { json: agentOutput({ result: task }) };
      },
    );
    const dir = await tempDir();
    await writeText(
      dir,
      "p.yaml",
      `name: listed
services: { svc: { instances: [ { endpoint: ${server.url} } ] } }
retries: 0
tasks:
  - { id: a, service: svc, agent: echo, input: { task: a } }
  - { id: b, service: svc, agent: echo, needs: [a], input: { task: b } }
  - { id: c, service: svc, agent: echo, needs: [b], input: { task: c } }
`,
    );
    const ok = json(await run(dir, ["run", "p.yaml", "--output", "json"])).run_id as string;
    mode = "fail";
    const failed = json(await run(dir, ["run", "p.yaml", "--output", "json"])).run_id as string;
    mode = "hang";
    const killed = cli(dir, ["run", "p.yaml", "--output", "json"]);
    const interrupted = await killed.runId();
    await server.waitFor(() => server.agentCalls.some((q) => keyOf(q) === `${interrupted}:b`), 15_000);
    killed.kill("SIGKILL");
    await killed.done;

    const r = await run(dir, ["runs", "--output", "json"]);
    expect(r.exitCode, r.stderr).toBe(0);
    const runs = json(r) as Rec[];
    expect(runs.map((x) => x.run_id)).toEqual([interrupted, failed, ok]);
    const byId = Object.fromEntries(runs.map((x) => [x.run_id, x]));
    expect(byId[ok]).toMatchObject({
      pipeline: "listed",
      status: "succeeded",
      counts: { total: 3, succeeded: 3, failed: 0, skipped: 0, cancelled: 0 },
    });
    expect(byId[failed]).toMatchObject({
      status: "failed",
      counts: { total: 3, succeeded: 1, failed: 1, skipped: 1, cancelled: 0 },
    });
    expect(byId[interrupted]).toMatchObject({
      status: "interrupted",
      counts: { total: 3, succeeded: 1, failed: 0, skipped: 0, cancelled: 0 },
    });
    for (const x of runs) expect(Number.isNaN(Date.parse(x.started_at))).toBe(false);

    const table = await run(dir, ["runs"]);
    expect(table.exitCode).toBe(0);
    const rows = table.stdout.split("\n");
    for (const [id, status, done] of [
      [ok, "succeeded", "3/3"],
      [failed, "failed", "1/3"],
      [interrupted, "interrupted", "1/3"],
    ] as const) {
      const row = rows.find((line) => line.includes(id));
      expect(row, id).toBeDefined();
      expect(row).toContain("listed");
      expect(row).toContain(status);
      expect(row).toContain(done);
    }
    // Newest first in the table too.
    expect(table.stdout.indexOf(interrupted)).toBeLessThan(table.stdout.indexOf(failed));
    expect(table.stdout.indexOf(failed)).toBeLessThan(table.stdout.indexOf(ok));

    // Resumed to the end, the interrupted run is listed as succeeded; a corrupt journal is
    // listed (as unreadable) without breaking the listing.
    mode = "ok";
    const resumed = await run(dir, ["run", "p.yaml", "--output", "json", "--resume", interrupted]);
    expect(resumed.exitCode, resumed.stderr).toBe(0);
    appendFileSync(journalPath(dir, failed), "garbage\n");
    const after = json(await run(dir, ["runs", "--output", "json"])) as Rec[];
    const now = Object.fromEntries(after.map((x) => [x.run_id, x]));
    expect(now[interrupted]).toMatchObject({ status: "succeeded", counts: { succeeded: 3 } });
    expect(now[failed]!.status).toBe("unreadable");
    expect(now[ok]!.status).toBe("succeeded");
  });
});
