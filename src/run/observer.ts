import type { AsyncSubmitted, CallEvent } from "../coordinator/types.js";
import type { AgentOutput } from "../protocol/types.js";
import type { TaskErrorReport, TaskReport } from "./types.js";

/**
 * What a run tells the outside while it goes: progress displays, verbose logs and the journal
 * all listen here. Every method is optional and must not throw.
 */
export interface RunObserver {
  taskStarted?(taskId: string): void;
  /** A call of a task (index for a `for_each` item) made an attempt or saw one fail. */
  callEvent?(taskId: string, index: number | undefined, event: CallEvent): void;
  /** An async agent accepted a call (also a `callEvent`); only async tasks have these. */
  asyncSubmitted?(taskId: string, index: number | undefined, event: AsyncSubmitted): void;
  /** One `for_each` item finished (the task goes on). */
  itemFinished?(taskId: string, index: number, output: AgentOutput | null, error?: TaskErrorReport): void;
  taskFinished?(report: TaskReport): void;
}

/**
 * Fans one set of observer calls out to several observers. A method nobody listens to is left
 * out, so the runner can skip building events no one reads (attempt events come per call).
 */
export function combineObservers(...observers: (RunObserver | undefined)[]): RunObserver {
  const list = observers.filter((o): o is RunObserver => o !== undefined);
  const having = (m: keyof RunObserver) => list.filter((o) => o[m] !== undefined);
  const started = having("taskStarted");
  const events = having("callEvent");
  const submitted = having("asyncSubmitted");
  const items = having("itemFinished");
  const finished = having("taskFinished");
  const combined: RunObserver = {};
  if (started.length > 0) {
    combined.taskStarted = (id) => {
      for (const o of started) o.taskStarted!(id);
    };
  }
  if (events.length > 0) {
    combined.callEvent = (id, index, event) => {
      for (const o of events) o.callEvent!(id, index, event);
    };
  }
  if (submitted.length > 0) {
    combined.asyncSubmitted = (id, index, event) => {
      for (const o of submitted) o.asyncSubmitted!(id, index, event);
    };
  }
  if (items.length > 0) {
    combined.itemFinished = (id, index, output, error) => {
      for (const o of items) o.itemFinished!(id, index, output, error);
    };
  }
  if (finished.length > 0) {
    combined.taskFinished = (report) => {
      for (const o of finished) o.taskFinished!(report);
    };
  }
  return combined;
}
