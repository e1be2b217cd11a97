import type { Ora } from "ora";
import type { CallEvent, GiveUpReason } from "../coordinator/types.js";
import type { RunObserver } from "../run/observer.js";
import { printable } from "../run/reporters/table.js";
import type { TaskReport } from "../run/types.js";
import type { Io } from "./io.js";

/** A spinner with live counts (done/running/failed); only on an interactive stderr. */
export async function spinnerObserver(total: number): Promise<RunObserver & { stop(): void }> {
  const { default: ora } = await import("ora");
  let running = 0;
  let done = 0;
  let failed = 0;
  const spinner: Ora = ora({ stream: process.stderr, text: "starting" }).start();
  const render = () => {
    spinner.text = `${done}/${total} done, ${running} running, ${failed} failed`;
  };
  return {
    taskStarted: () => {
      running++;
      render();
    },
    taskFinished: (r: TaskReport) => {
      if (r.status !== "skipped" && r.status !== "cancelled" && r.attempts > 0)
        running = Math.max(0, running - 1);
      done++;
      if (r.status === "failed") failed++;
      render();
    },
    stop: () => spinner.stop(),
  };
}

/** `--verbose`: one stderr line per attempt and per failed attempt. */
export function verboseObserver(io: Io, redact: (s: string) => string): RunObserver {
  const label = (task: string, index: number | undefined) =>
    index === undefined ? task : `${task}[${index}]`;
  return {
    callEvent: (task: string, index: number | undefined, e: CallEvent) => {
      const who = label(task, index);
      let line: string;
      switch (e.type) {
        case "attempt":
          line = `${who}: attempt ${e.attempt} on ${e.instance} (${e.endpoint})`;
          break;
        case "attempt_failed":
          line = `${who}: attempt ${e.attempt} on ${e.instance} failed [${e.error.code}] ${e.error.message}${next(e)}`;
          break;
        case "async_submitted":
          line = `${who}: submitted async task ${e.taskId} on ${e.instance}`;
          break;
      }
      io.err(io.color.dim(printable(redact(line))));
    },
    taskFinished: (r: TaskReport) => {
      io.err(
        io.color.dim(
          printable(redact(`${r.id}: ${r.status}${r.error ? ` [${r.error.code}] ${r.error.message}` : ""}`)),
        ),
      );
    },
  };
}

const GIVE_UP: Record<GiveUpReason, string> = {
  not_retryable: "; not retried (not a retryable failure)",
  no_retries_left: "; no retries left",
  circuits_open: "; not retried: the circuit of every instance that could take it is open",
  no_instance_left: "; not retried: no other instance serves it",
};

/** What follows a failed attempt, as the end of its log line. */
function next(e: Extract<CallEvent, { type: "attempt_failed" }>): string {
  if (e.failover) return "; failing over to another instance";
  if (e.retryInMs !== undefined) return `; retrying in ${e.retryInMs} ms`;
  return e.gaveUp ? GIVE_UP[e.gaveUp] : "";
}
