import { setMaxListeners } from "node:events";
import type { Coordinator } from "../coordinator/coordinator.js";
import { mapWindow } from "../coordinator/map-window.js";
import type { CallEvent, CallOutcome } from "../coordinator/types.js";
import { AgentctlError, toAgentctlError } from "../errors.js";
import { checkExpectations } from "../pipeline/expect.js";
import { evaluateTemplate, type TemplateScope } from "../pipeline/expressions.js";
import { planPipeline } from "../pipeline/planner.js";
import { count, showValue } from "../pipeline/text.js";
import type { PipelineConfig, TaskConfig } from "../pipeline/types.js";
import type { AgentOutput } from "../protocol/types.js";
import { Semaphore } from "../resilience/semaphore.js";
import { toAgentInput } from "./input.js";
import type { RunObserver } from "./observer.js";
import { type ItemErrorReport, type RunReport, type RunStatus, summarize, type TaskReport } from "./types.js";

const DEFAULT_WINDOW = 64;

export interface AsyncHandle {
  taskId: string;
  endpoint: string;
  instance?: string;
}

/** What an earlier, interrupted run of the same id already did (from its journal). */
export interface ResumeState {
  /** Tasks that succeeded: reused as they are, never called again. */
  done: Map<string, TaskReport>;
  /** `for_each` items that succeeded, per task. */
  items: Map<string, Map<number, AgentOutput>>;
  /** Async tasks submitted and not known to be finished, keyed `task` or `task:index`. */
  pendingAsync: Map<string, AsyncHandle>;
}

export interface RunSettings {
  runId: string;
  /** Retries and per-attempt timeout after CLI overrides (task values still win). */
  retries?: number;
  timeoutMs?: number;
  /** Bound on the whole run; its passing cancels what is unfinished and fails the run. */
  deadlineMs?: number;
  /** Interrupts (SIGINT/SIGTERM): unfinished tasks are cancelled. */
  signal?: AbortSignal;
  env: Record<string, string | undefined>;
  observer?: RunObserver;
  resume?: ResumeState;
  /**
   * Tasks, and items of one `for_each` task, in progress at once (default 64): each is calling
   * or waiting out a retry's backoff. Bounds the run's memory; the CLI sets it to the
   * coordinator's concurrency limit, so no call waits for a slot (a wait costs more per call
   * than anything else in the runner), and calls backing off leave their slots unused.
   */
  window?: number;
}

/**
 * Runs a validated pipeline on a coordinator: a DAG of promises (each task awaits its needs),
 * `for_each` fan-out, expressions, `expect`. Every task ends in exactly one final state, whatever
 * happens; the returned report lists them in file order.
 */
export async function runPipeline(
  pipeline: PipelineConfig,
  coordinator: Coordinator,
  settings: RunSettings,
): Promise<RunReport> {
  const startedAt = new Date();
  const t0 = performance.now();
  const abort = new AbortController();
  // Every call in flight listens on the run's signal: far more than the default 10.
  setMaxListeners(0, abort.signal);
  let deadlinePassed = false;
  const onInterrupt = () => abort.abort(new AgentctlError("cancelled", "the run was interrupted"));
  if (settings.signal?.aborted) onInterrupt();
  settings.signal?.addEventListener("abort", onInterrupt, { once: true });
  const deadlineTimer =
    settings.deadlineMs !== undefined
      ? setTimeout(() => {
          deadlinePassed = true;
          abort.abort(
            new AgentctlError("cancelled", `the run's deadline of ${settings.deadlineMs} ms passed`),
          );
        }, settings.deadlineMs)
      : undefined;

  const scopeTasks: Record<string, { output?: unknown; outputs?: readonly unknown[] }> = {};
  // Promises are made in a topological order: a task may need one written after it in the file.
  const plan = planPipeline(pipeline);
  const promises = new Map<string, Promise<TaskReport>>();
  const runner = new TaskRunner(pipeline, coordinator, settings, abort.signal, scopeTasks);
  const gate = new Semaphore(settings.window ?? DEFAULT_WINDOW);

  const settle = (task: TaskConfig, report: TaskReport): TaskReport => {
    if (report.status === "succeeded")
      scopeTasks[task.id] = { output: report.output, outputs: report.outputs };
    settings.observer?.taskFinished?.(report);
    return report;
  };

  for (const id of plan.order) {
    const { task, index, needs } = plan.byId.get(id)!;
    const promise = (async (): Promise<TaskReport> => {
      // Done in the resumed run is done, whatever happens now (an interrupt, a need not reused).
      const reused = settings.resume?.done.get(task.id);
      if (reused) return settle(task, reused);
      const needReports = await Promise.all(needs.map((need) => promises.get(need)!));
      const blocker = needReports.find((r) => r.status !== "succeeded");
      if (blocker) {
        if (blocker.status === "cancelled" || abort.signal.aborted)
          return settle(task, cancelledReport(task));
        return settle(task, {
          ...emptyReport(task, "skipped"),
          error: {
            code: "skipped",
            message: `not run: ${blocker.id} ${blocker.status === "skipped" ? "was skipped" : "failed"}`,
          },
        });
      }
      if (abort.signal.aborted) return settle(task, cancelledReport(task));
      // Ready tasks start a window at a time, so 10,000 independent tasks do not all hold
      // their resolved inputs at once.
      const started = await gate.acquire(abort.signal).then(
        () => true,
        () => false,
      );
      if (!started) return settle(task, cancelledReport(task));
      try {
        settings.observer?.taskStarted?.(task.id);
        const chained = pipeline.mode === "sequential" && index > 0;
        const previous = chained
          ? needReports.find((r) => r.id === pipeline.tasks[index - 1]!.id)?.output?.result
          : undefined;
        return settle(task, await runner.run(task, chained, previous));
      } finally {
        gate.release();
      }
    })();
    promises.set(task.id, promise);
  }

  const reports = await Promise.all(pipeline.tasks.map((t) => promises.get(t.id)!));
  if (deadlineTimer) clearTimeout(deadlineTimer);
  settings.signal?.removeEventListener("abort", onInterrupt);
  const summary = summarize(reports);
  let status: RunStatus = summary.succeeded === summary.total ? "succeeded" : "failed";
  if (abort.signal.aborted && !deadlinePassed && summary.succeeded < summary.total) status = "cancelled";
  return {
    pipeline: pipeline.name,
    run_id: settings.runId,
    status,
    started_at: startedAt.toISOString(),
    duration_ms: Math.round(performance.now() - t0),
    summary,
    tasks: reports,
  };
}

function emptyReport(task: TaskConfig, status: TaskReport["status"]): TaskReport {
  return { id: task.id, service: task.service, agent: task.agent, status, attempts: 0, duration_ms: 0 };
}

function cancelledReport(task: TaskConfig): TaskReport {
  return {
    ...emptyReport(task, "cancelled"),
    error: { code: "cancelled", message: "cancelled before it started" },
  };
}

/** Runs one task: resolves its input, fans out, calls, checks `expect`. */
class TaskRunner {
  constructor(
    private readonly pipeline: PipelineConfig,
    private readonly coordinator: Coordinator,
    private readonly settings: RunSettings,
    private readonly signal: AbortSignal,
    private readonly tasks: Record<string, { output?: unknown; outputs?: readonly unknown[] }>,
  ) {}

  async run(task: TaskConfig, chained: boolean, previous: unknown): Promise<TaskReport> {
    const t0 = performance.now();
    const scope: TemplateScope = {
      vars: this.pipeline.vars,
      env: this.settings.env,
      tasks: this.tasks,
      run: { id: this.settings.runId },
    };
    const finish = (r: Omit<TaskReport, "duration_ms">): TaskReport => ({
      ...r,
      duration_ms: Math.round(performance.now() - t0),
    });
    const base = emptyReport(task, "failed");
    if (task.forEach === undefined) {
      const outcome = await this.call(task, scope, undefined, chained, previous);
      if (!outcome.ok) {
        return finish({
          ...base,
          instance: outcome.instance,
          attempts: outcome.attempts,
          status: statusOf(outcome.error),
          error: outcome.error.toJSON(),
        });
      }
      return finish({
        ...base,
        status: "succeeded",
        instance: outcome.instance,
        attempts: outcome.attempts,
        output: outcome.output,
      });
    }
    let items: unknown;
    try {
      items = evaluateTemplate(task.forEach, scope).value;
    } catch (err) {
      return finish({ ...base, error: toAgentctlError(err, "template").toJSON() });
    }
    if (!Array.isArray(items)) {
      return finish({
        ...base,
        error: {
          code: "template",
          message: `for_each of ${task.id} is not a list (got ${showValue(items)})`,
        },
      });
    }
    return finish(await this.fanOut(task, scope, items, chained, previous, base));
  }

  private async fanOut(
    task: TaskConfig,
    scope: TemplateScope,
    items: unknown[],
    chained: boolean,
    previous: unknown,
    base: TaskReport,
  ): Promise<Omit<TaskReport, "duration_ms">> {
    const outputs: (AgentOutput | null)[] = new Array(items.length).fill(null);
    const done = this.settings.resume?.items.get(task.id);
    let attempts = 0;
    const itemErrors: ItemErrorReport[] = [];
    let anyCancelled = false;
    const instances = new Set<string>();
    // Items are prepared a window at a time: memory stays bounded for huge lists while the
    // coordinator's concurrency limit does the real throttling.
    await mapWindow(items, this.settings.window ?? DEFAULT_WINDOW, async (item, index) => {
      const reused = done?.get(index);
      if (reused) {
        outputs[index] = reused;
        return;
      }
      if (this.signal.aborted) {
        anyCancelled = true;
        return;
      }
      // A literal, not { ...scope, item, index }: V8 (11.3) builds a spread followed by more
      // properties on a slow path, ~3 µs per item.
      const itemScope: TemplateScope = {
        vars: scope.vars,
        env: scope.env,
        tasks: scope.tasks,
        run: scope.run,
        item,
        index,
      };
      const outcome = await this.call(task, itemScope, index, chained, previous);
      attempts += outcome.attempts;
      if (outcome.instance) instances.add(outcome.instance);
      if (outcome.ok) {
        outputs[index] = outcome.output;
        this.settings.observer?.itemFinished?.(task.id, index, outcome.output);
      } else {
        const error = outcome.error.toJSON();
        if (error.code === "cancelled") anyCancelled = true;
        else itemErrors.push({ index, ...error });
        this.settings.observer?.itemFinished?.(task.id, index, null, error);
      }
    });
    const instance =
      instances.size === 1
        ? [...instances][0]
        : instances.size > 1
          ? `${instances.size} instances`
          : undefined;
    const report = { ...base, attempts, instance, outputs };
    if (itemErrors.length > 0) {
      itemErrors.sort((a, b) => a.index - b.index);
      const { index, ...first } = itemErrors[0]!;
      const more = itemErrors.length > 1 ? ` (and ${count(itemErrors.length - 1, "more item")})` : "";
      const error = { ...first, message: `item ${index}: ${first.message}${more}` };
      return { ...report, status: "failed", error, item_errors: itemErrors };
    }
    if (anyCancelled)
      return {
        ...report,
        status: "cancelled",
        error: {
          code: "cancelled",
          message: `cancelled: ${outputs.filter((o) => o !== null).length} of ${items.length} items finished`,
        },
      };
    return { ...report, status: "succeeded" };
  }

  /**
   * Where a call's events go, or undefined when nobody reads them: they are built per attempt,
   * and a run without --verbose only journals async submissions.
   */
  private eventsOf(task: TaskConfig, index: number | undefined): ((event: CallEvent) => void) | undefined {
    const observer = this.settings.observer;
    const all = observer?.callEvent !== undefined;
    const submitted = task.async === true && observer?.asyncSubmitted !== undefined;
    if (!observer || (!all && !submitted)) return undefined;
    return (event) => {
      observer.callEvent?.(task.id, index, event);
      if (submitted && event.type === "async_submitted") observer.asyncSubmitted?.(task.id, index, event);
    };
  }

  /** One call (a task, or one item of it), with its `expect` checked on success. */
  private async call(
    task: TaskConfig,
    scope: TemplateScope,
    index: number | undefined,
    chained: boolean,
    previous: unknown,
  ): Promise<CallOutcome> {
    const key = index === undefined ? task.id : `${task.id}:${index}`;
    let input: ReturnType<typeof toAgentInput>;
    try {
      input = toAgentInput(evaluateTemplate(task.input ?? {}, scope).value, {
        sessionId: this.settings.runId,
        previousOutput: chained ? { value: previous } : undefined,
      });
    } catch (err) {
      return { ok: false, error: toAgentctlError(err, "template"), attempts: 0 };
    }
    const outcome = await this.coordinator.call(
      {
        serviceName: task.service,
        agentName: task.agent,
        input,
        retries: task.retries ?? this.settings.retries,
        timeout: task.timeoutMs ?? this.settings.timeoutMs,
        async: task.async,
        pollInterval: task.pollIntervalMs,
        idempotencyKey: `${this.settings.runId}:${key}`,
        resumeAsync: this.settings.resume?.pendingAsync.get(key),
        onEvent: this.eventsOf(task, index),
      },
      { signal: this.signal },
    );
    // Refused before anything was sent: the loader checked names, headers and literal types,
    // so what is left is a value an expression gave a field of the wrong type.
    if (!outcome.ok && outcome.error.code === "invalid" && outcome.attempts === 0) {
      return {
        ...outcome,
        error: new AgentctlError("template", outcome.error.message, { agent: task.agent }),
      };
    }
    if (outcome.ok && task.expect) {
      const problem = checkExpectations(task.expect, outcome.output);
      if (problem !== undefined) {
        return {
          ok: false,
          error: new AgentctlError("assertion", problem, { agent: task.agent, instance: outcome.instance }),
          instance: outcome.instance,
          attempts: outcome.attempts,
        };
      }
    }
    return outcome;
  }
}

function statusOf(err: AgentctlError): TaskReport["status"] {
  return err.code === "cancelled" ? "cancelled" : "failed";
}
