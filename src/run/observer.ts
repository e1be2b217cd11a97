import type { CallEvent } from "../coordinator/types.js";
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
  /** One `for_each` item finished (the task goes on). */
  itemFinished?(taskId: string, index: number, output: AgentOutput | null, error?: TaskErrorReport): void;
  taskFinished?(report: TaskReport): void;
}

/** Fans one set of observer calls out to several observers. */
export function combineObservers(...observers: (RunObserver | undefined)[]): RunObserver {
  const list = observers.filter((o): o is RunObserver => o !== undefined);
  return {
    taskStarted: (id) => {
      for (const o of list) o.taskStarted?.(id);
    },
    callEvent: (id, index, event) => {
      for (const o of list) o.callEvent?.(id, index, event);
    },
    itemFinished: (id, index, output, error) => {
      for (const o of list) o.itemFinished?.(id, index, output, error);
    },
    taskFinished: (report) => {
      for (const o of list) o.taskFinished?.(report);
    },
  };
}
