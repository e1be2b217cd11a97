import { existsSync, readdirSync } from "node:fs";
import { journalPath, readJournal, runIdentity, runsDir } from "./journal.js";
import { lockHeld } from "./lock.js";
import type { RunSummary } from "./types.js";

export interface RunListing {
  run_id: string;
  pipeline: string;
  file: string;
  started_at: string;
  /**
   * The run's final status; `running` while a live process holds it, `interrupted` when it
   * never finished, `unreadable` for a bad journal.
   */
  status: "succeeded" | "failed" | "cancelled" | "running" | "interrupted" | "unreadable";
  /** Tasks that ended so far, by status (the last state of each task). */
  counts: Omit<RunSummary, "total"> & { total: number };
}

/** Runs with a journal under `stateDir`, newest first. */
export function listRuns(stateDir: string, limit = 20): RunListing[] {
  const dir = runsDir(stateDir);
  if (!existsSync(dir)) return [];
  const ids = readdirSync(dir)
    .filter((f) => f.endsWith(".jsonl"))
    .map((f) => f.slice(0, -".jsonl".length))
    .sort()
    .reverse()
    .slice(0, limit);
  // An id orders by the second it was made in, then by a random suffix: within one second,
  // order by the start time the journal holds.
  const key = (r: RunListing) => [r.run_id.slice(0, 15), r.started_at, r.run_id];
  return ids
    .map((id) => describeRun(stateDir, id))
    .sort((a, b) => {
      const ka = key(a);
      const kb = key(b);
      for (let i = 0; i < ka.length; i++) {
        const c = kb[i]!.localeCompare(ka[i]!);
        if (c !== 0) return c;
      }
      return 0;
    });
}

function describeRun(stateDir: string, runId: string): RunListing {
  const empty = { total: 0, succeeded: 0, failed: 0, skipped: 0, cancelled: 0 };
  try {
    const contents = readJournal(journalPath(stateDir, runId));
    const { header, records } = contents;
    const last = new Map<string, keyof RunSummary>();
    let status: RunListing["status"] = "interrupted";
    for (const r of records) {
      if (r.type === "task_end") last.set(r.task, r.report.status);
      else if (r.type === "run_end") status = r.status;
      else if (r.type === "resume") {
        // A resumed run ends every task again (reused ones too): count from there.
        status = "interrupted";
        last.clear();
      }
    }
    if (status === "interrupted" && lockHeld(`${journalPath(stateDir, runId)}.lock`)) status = "running";
    const identity = runIdentity(contents);
    const counts = { ...empty, total: Object.keys(identity.tasks).length };
    for (const s of last.values()) if (s !== "total") counts[s]++;
    return {
      run_id: runId,
      // Forced onto another pipeline, the run is of that one (unknown in older journals).
      pipeline: identity.pipeline ?? header.pipeline,
      file: identity.file ?? header.file,
      started_at: header.started_at,
      status,
      counts,
    };
  } catch {
    return { run_id: runId, pipeline: "?", file: "?", started_at: "", status: "unreadable", counts: empty };
  }
}
