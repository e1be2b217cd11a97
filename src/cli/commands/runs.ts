import Table from "cli-table3";
import { listRuns } from "../../run/runs.js";
import { EXIT } from "../exit-codes.js";
import { createIo } from "../io.js";

export interface RunsFlags {
  stateDir?: string;
  limit: number;
  output: "table" | "json";
  color: boolean;
}

/** `agentctl runs`: recent runs from their journals, so a user can find the id to resume. */
export function runsCommand(flags: RunsFlags): number {
  const io = createIo(!flags.color);
  const runs = listRuns(flags.stateDir ?? ".agentctl", flags.limit);
  if (flags.output === "json") {
    io.out(JSON.stringify(runs, null, 2));
    return EXIT.ok;
  }
  if (runs.length === 0) {
    io.err(`no runs in ${flags.stateDir ?? ".agentctl"}/runs`);
    return EXIT.ok;
  }
  const table = new Table({
    head: ["run id", "pipeline", "started", "status", "done", "failed", "skipped", "cancelled"].map((h) =>
      io.color.bold(h),
    ),
    style: { head: [], border: [] },
  });
  for (const r of runs) {
    const c = r.counts;
    const status =
      r.status === "succeeded"
        ? io.color.green(r.status)
        : r.status === "interrupted"
          ? io.color.yellow(r.status)
          : io.color.red(r.status);
    table.push([
      r.run_id,
      r.pipeline,
      r.started_at,
      status,
      `${c.succeeded}/${c.total}`,
      String(c.failed),
      String(c.skipped),
      String(c.cancelled),
    ]);
  }
  io.out(table.toString());
  return EXIT.ok;
}
