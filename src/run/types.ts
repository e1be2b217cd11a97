import type { ErrorCode } from "../errors.js";
import type { AgentOutput } from "../protocol/types.js";

export type TaskStatus = "succeeded" | "failed" | "skipped" | "cancelled";
export type RunStatus = "succeeded" | "failed" | "cancelled";

export interface TaskErrorReport {
  code: ErrorCode;
  message: string;
  status?: number;
}

/** One task's final state: exactly one of the four statuses (SPEC §4 "nothing lost"). */
export interface TaskReport {
  id: string;
  service: string;
  agent: string;
  status: TaskStatus;
  instance?: string;
  attempts: number;
  duration_ms: number;
  output?: AgentOutput;
  /** For `for_each` tasks: one output (or null) per item, in item order. */
  outputs?: (AgentOutput | null)[];
  error?: TaskErrorReport;
  /** For `for_each` tasks with failed items: each one's error, by item index (`error` is the first). */
  item_errors?: ItemErrorReport[];
}

export interface ItemErrorReport extends TaskErrorReport {
  index: number;
}

export interface RunSummary {
  total: number;
  succeeded: number;
  failed: number;
  skipped: number;
  cancelled: number;
}

/** The result of a run, exactly the JSON document of SPEC §6. */
export interface RunReport {
  pipeline: string;
  run_id: string;
  status: RunStatus;
  started_at: string;
  duration_ms: number;
  summary: RunSummary;
  tasks: TaskReport[];
}

export function summarize(tasks: readonly TaskReport[]): RunSummary {
  const s: RunSummary = { total: tasks.length, succeeded: 0, failed: 0, skipped: 0, cancelled: 0 };
  for (const t of tasks) s[t.status]++;
  return s;
}
