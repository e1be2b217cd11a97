/**
 * Execution plan of a pipeline: the dependencies each task really has (its `needs`, and in
 * sequential mode the task before it), a topological order and the levels (tasks of one level
 * only depend on earlier levels). Used by the runner and by `--dry-run`.
 */
import { AgentctlError } from "../errors.js";
import { formatDuration } from "./duration.js";
import { count } from "./text.js";
import type { PipelineConfig, PipelineMode, TaskConfig } from "./types.js";

export interface PlanStep {
  id: string;
  /** Position in the file, from 0. */
  index: number;
  task: TaskConfig;
  /** What the task waits for: its `needs` (deduplicated), plus the previous task in sequential mode. */
  needs: string[];
  /** Tasks that wait for this one. */
  dependents: string[];
  /** 0 for tasks that wait for nothing; otherwise 1 + the highest level among `needs`. */
  level: number;
}

export interface Plan {
  name: string;
  mode: PipelineMode;
  /** In file order. */
  steps: PlanStep[];
  /** Task ids in a topological order (by level, then file order). */
  order: string[];
  /** Task ids by level. */
  levels: string[][];
  byId: Map<string, PlanStep>;
}

/**
 * A cycle in a graph, as a closed path (`["a", "b", "a"]`), or undefined when there is none.
 * `edges(id)` lists what `id` depends on; ids it names that are not in `ids` are ignored.
 * Iterative: a chain of 100,000 tasks does not exhaust the stack.
 */
export function findCycle(
  ids: readonly string[],
  edges: (id: string) => readonly string[],
): string[] | undefined {
  const known = new Set(ids);
  const state = new Map<string, 1 | 2>(); // 1 = on the current path, 2 = done
  for (const start of ids) {
    if (state.has(start)) continue;
    const path: string[] = [start];
    const iters: number[] = [0];
    state.set(start, 1);
    while (path.length > 0) {
      const top = path.length - 1;
      const id = path[top] as string;
      const deps = edges(id);
      const i = iters[top] as number;
      if (i < deps.length) {
        iters[top] = i + 1;
        const dep = deps[i] as string;
        if (!known.has(dep)) continue;
        const s = state.get(dep);
        if (s === 1) return [...path.slice(path.indexOf(dep)), dep];
        if (s === undefined) {
          state.set(dep, 1);
          path.push(dep);
          iters.push(0);
        }
      } else {
        state.set(id, 2);
        path.pop();
        iters.pop();
      }
    }
  }
  return undefined;
}

/** The dependencies each task waits for, by mode (see {@link PlanStep.needs}). */
export function effectiveNeeds(config: Pick<PipelineConfig, "mode" | "tasks">): Map<string, string[]> {
  const out = new Map<string, string[]>();
  config.tasks.forEach((task, index) => {
    const needs = new Set(task.needs);
    const previous = index > 0 ? config.tasks[index - 1] : undefined;
    if (config.mode === "sequential" && previous !== undefined) needs.add(previous.id);
    out.set(task.id, [...needs]);
  });
  return out;
}

/**
 * Plans a pipeline. Throws an {@link AgentctlError} with code `invalid` for a duplicate id, an
 * unknown id in `needs` or a cycle — problems the loader reports as diagnostics first.
 */
export function planPipeline(config: Pick<PipelineConfig, "name" | "mode" | "tasks">): Plan {
  const byId = new Map<string, PlanStep>();
  const needsOf = effectiveNeeds(config);
  config.tasks.forEach((task, index) => {
    if (byId.has(task.id)) throw new AgentctlError("invalid", `duplicate task id "${task.id}"`);
    byId.set(task.id, {
      id: task.id,
      index,
      task,
      needs: needsOf.get(task.id) ?? [],
      dependents: [],
      level: 0,
    });
  });
  for (const step of byId.values()) {
    for (const need of step.needs) {
      const dep = byId.get(need);
      if (dep === undefined)
        throw new AgentctlError("invalid", `task "${step.id}" needs unknown task "${need}"`);
      dep.dependents.push(step.id);
    }
  }
  const ids = [...byId.keys()];
  const cycle = findCycle(ids, (id) => byId.get(id)?.needs ?? []);
  if (cycle !== undefined) throw new AgentctlError("invalid", `dependency cycle: ${cycle.join(" → ")}`);

  // Levels by Kahn's algorithm (iterative; the graph is acyclic here).
  const pending = new Map(ids.map((id) => [id, byId.get(id)?.needs.length ?? 0]));
  let frontier = ids.filter((id) => pending.get(id) === 0);
  const levels: string[][] = [];
  while (frontier.length > 0) {
    const level = levels.length;
    levels.push(frontier);
    const next: string[] = [];
    for (const id of frontier) {
      const step = byId.get(id) as PlanStep;
      step.level = level;
      for (const dependent of step.dependents) {
        const left = (pending.get(dependent) ?? 0) - 1;
        pending.set(dependent, left);
        if (left === 0) next.push(dependent);
      }
    }
    next.sort((a, b) => (byId.get(a)?.index ?? 0) - (byId.get(b)?.index ?? 0));
    frontier = next;
  }
  const steps = [...byId.values()];
  return { name: config.name, mode: config.mode, steps, order: levels.flat(), levels, byId };
}

/** The plan as `run --dry-run --output json` prints it: tasks in file order, and the levels. */
export interface PlanDocument {
  pipeline: string;
  mode: PipelineMode;
  /** Task ids by level: a level's tasks only wait for earlier levels. */
  levels: string[][];
  tasks: {
    id: string;
    service: string;
    agent: string;
    needs: string[];
    level: number;
    for_each: boolean;
    async: boolean;
    timeout_ms?: number;
    retries?: number;
  }[];
}

export function planDocument(plan: Plan): PlanDocument {
  return {
    pipeline: plan.name,
    mode: plan.mode,
    levels: plan.levels,
    tasks: plan.steps.map(({ id, task, needs, level }) => ({
      id,
      service: task.service,
      agent: task.agent,
      needs,
      level,
      for_each: task.forEach !== undefined,
      async: task.async === true,
      ...(task.timeoutMs === undefined ? {} : { timeout_ms: task.timeoutMs }),
      ...(task.retries === undefined ? {} : { retries: task.retries }),
    })),
  };
}

/** Lines describing the plan for `--dry-run`: each task in order, with what it waits for. */
export function describePlan(plan: Plan): string[] {
  const n = plan.steps.length;
  const lines = [
    `pipeline ${plan.name}: ${count(n, "task")}, ${plan.mode}, ${count(plan.levels.length, "level")}`,
  ];
  const width = Math.min(32, Math.max(0, ...plan.steps.map((s) => s.id.length)));
  let position = 0;
  plan.levels.forEach((level, i) => {
    lines.push(`level ${i + 1}:`);
    for (const id of level) {
      const step = plan.byId.get(id);
      if (step === undefined) continue;
      position += 1;
      const task = step.task;
      const details: string[] = [];
      if (task.forEach !== undefined) details.push("for_each");
      if (task.async) details.push("async");
      if (task.timeoutMs !== undefined) details.push(`timeout ${formatDuration(task.timeoutMs)}`);
      if (task.retries !== undefined) details.push(`retries ${task.retries}`);
      if (task.expect !== undefined) details.push("expect");
      const needs = step.needs.length > 0 ? `  needs ${step.needs.join(", ")}` : "";
      const extra = details.length > 0 ? `  (${details.join(", ")})` : "";
      lines.push(`  ${position}. ${id.padEnd(width)}  ${task.service}/${task.agent}${needs}${extra}`);
    }
  });
  return lines;
}
