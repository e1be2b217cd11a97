import { randomUUID } from "node:crypto";
import { setMaxListeners } from "node:events";
import type { CallOptions, Client } from "../client/client.js";
import { AgentctlError, toAgentctlError } from "../errors.js";
import type { AgentInput, AgentOutput } from "../protocol/types.js";
import type { Registry, ServiceInstance } from "../registry/registry.js";
import { cancelledError, deadline, sleep } from "../resilience/abort.js";
import { type BackoffConfig, backoffDelay } from "../resilience/backoff.js";
import { Semaphore } from "../resilience/semaphore.js";
import { Balancer, type LoadBalancing } from "./balancer.js";
import { HealthMonitor, type HealthOptions, type ProbeResult } from "./health.js";
import { mapWindow } from "./map-window.js";
import type { AgentTask, CallOutcome, CallRequest, RunOptions, ServicePolicy, TaskResult } from "./types.js";

export interface CoordinatorOptions {
  /** Agent calls in flight at once across everything this coordinator runs (default 16). */
  maxConcurrency?: number;
  /** Retries after the first attempt (default 2). */
  retries?: number;
  loadBalancing?: LoadBalancing;
  /** Per-attempt timeout, ms (default: the client's). */
  timeout?: number;
  services?: Record<string, ServicePolicy>;
  backoff?: BackoffConfig;
  health?: HealthOptions;
  /** Default async poll interval, ms (default 1 s). */
  pollInterval?: number;
  /** Random source for jitter, for tests. */
  random?: () => number;
}

interface Attempt {
  instance: ServiceInstance;
  number: number;
  /** An async task was submitted (or is known): whatever fails later, the attempt was made. */
  sent?: boolean;
}

/** A held concurrency slot; releasing it twice releases it once. */
class Slot {
  private held = true;
  constructor(private readonly semaphore: Semaphore) {}

  release(): void {
    if (this.held) {
      this.held = false;
      this.semaphore.release();
    }
  }
}

interface AttemptContext {
  key: string;
  signal: AbortSignal | undefined;
  slot: Slot;
  /** Consecutive poll failures tolerated. */
  retries: number;
  /** A known async task id: poll it rather than submitting. */
  taskId?: string;
}

/**
 * Runs agent calls over a registry: picks an eligible instance, fails over, retries with
 * backoff, respects each instance's circuit breaker and a global concurrency limit.
 */
export class Coordinator {
  readonly health: HealthMonitor;
  private readonly semaphore: Semaphore;
  private readonly balancer = new Balancer();
  private readonly retries: number;
  private readonly loadBalancing: LoadBalancing;
  private readonly timeout: number | undefined;
  private readonly services: Record<string, ServicePolicy>;
  private readonly backoff: BackoffConfig;
  private readonly pollInterval: number;
  private readonly random: () => number;

  constructor(
    readonly registry: Registry,
    readonly client: Client,
    options: CoordinatorOptions = {},
  ) {
    this.semaphore = new Semaphore(
      options.maxConcurrency && options.maxConcurrency > 0 ? options.maxConcurrency : 16,
    );
    this.retries = options.retries ?? 2;
    this.loadBalancing = options.loadBalancing ?? "round_robin";
    this.timeout = options.timeout;
    this.services = options.services ?? {};
    this.backoff = options.backoff ?? {};
    this.pollInterval = options.pollInterval ?? 1000;
    this.random = options.random ?? Math.random;
    this.health = new HealthMonitor(registry, client, {
      headers: (service) => this.services[service]?.headers,
      ...options.health,
    });
  }

  /**
   * Probes every instance (of `services`, default all) and starts re-probing the unhealthy.
   * `{ signal }` aborts the probes (an aborted probe leaves the instance's health as it was).
   */
  checkHealth(services?: readonly string[], options: { signal?: AbortSignal } = {}): Promise<ProbeResult[]> {
    return this.health.probeAll(services, options.signal);
  }

  /** Stops background work; the registry and client belong to the caller. */
  close(): void {
    this.health.stop();
  }

  /** One call with retries and failover; `{ timeout }` bounds each attempt. */
  async executeAgent(
    service: string,
    agent: string,
    input: AgentInput,
    options: RunOptions = {},
  ): Promise<AgentOutput> {
    return unwrap(
      await this.call(
        { serviceName: service, agentName: agent, input, timeout: options.timeout },
        { signal: options.signal },
      ),
    );
  }

  /** One call with at most `maxRetries` retries; `{ timeout }` bounds the whole call. */
  async executeAgentWithRetry(
    service: string,
    agent: string,
    input: AgentInput,
    maxRetries: number,
    options: RunOptions = {},
  ): Promise<AgentOutput> {
    return unwrap(
      await this.call({ serviceName: service, agentName: agent, input, retries: maxRetries }, options),
    );
  }

  /** Every task at once (bounded by the concurrency limit); one result per task, in order. */
  async executeParallel(tasks: readonly AgentTask[], options: RunOptions = {}): Promise<TaskResult[]> {
    // Twice the limit in flight keeps every slot busy while some calls wait out a backoff.
    return this.withDeadline(options, (signal) =>
      mapWindow(tasks, this.semaphore.limit * 2, async (task): Promise<TaskResult> => {
        const outcome = await this.call(task, { signal });
        return outcome.ok ? { task, output: outcome.output } : { task, error: outcome.error };
      }),
    );
  }

  /**
   * Tasks one after another, each given `context.previous_output` = the previous result; the
   * first failure stops the chain and the rest are reported `skipped`.
   */
  async executeSequential(tasks: readonly AgentTask[], options: RunOptions = {}): Promise<TaskResult[]> {
    return this.withDeadline(options, async (signal) => {
      const results: TaskResult[] = [];
      let previous: AgentOutput | undefined;
      let failedAt: number | undefined;
      for (const [i, task] of tasks.entries()) {
        if (failedAt !== undefined) {
          // Interrupted (signal or deadline): what was never started is cancelled, not skipped.
          if (signal?.aborted) {
            results.push({ task, error: cancelledError(signal) });
            continue;
          }
          const blocker = tasks[failedAt]!;
          results.push({
            task,
            error: new AgentctlError(
              "skipped",
              `not run: task ${failedAt} (${blocker.agentName}) did not succeed`,
            ),
          });
          continue;
        }
        const input =
          previous === undefined
            ? task.input
            : { ...task.input, context: { ...task.input.context, previous_output: previous.result } };
        const outcome = await this.call({ ...task, input }, { signal });
        if (outcome.ok) {
          previous = outcome.output;
          results.push({ task, output: outcome.output });
        } else {
          failedAt = i;
          results.push({ task, error: outcome.error });
        }
      }
      return results;
    });
  }

  /**
   * The full call: never rejects. With `{ timeout }`, that is a deadline for the whole call
   * (attempts, backoff and polling); its passing reports `cancelled`.
   */
  call(request: CallRequest, options: RunOptions = {}): Promise<CallOutcome> {
    if (options.timeout !== undefined) {
      return this.withDeadline(options, (signal) => this.run(request, signal));
    }
    return this.run(request, options.signal);
  }

  private async withDeadline<T>(
    options: RunOptions,
    fn: (signal: AbortSignal | undefined) => Promise<T>,
  ): Promise<T> {
    // A caller's signal gets one listener here, however many calls run under it.
    if (options.timeout === undefined && options.signal === undefined) return fn(undefined);
    const dl = deadline(options.timeout, options.signal);
    // Every call of the batch listens on this signal: hundreds at once is expected.
    setMaxListeners(0, dl.signal);
    try {
      return await fn(dl.signal);
    } finally {
      dl.dispose();
    }
  }

  private async run(request: CallRequest, signal: AbortSignal | undefined): Promise<CallOutcome> {
    const policy = this.services[request.serviceName] ?? {};
    const retries = Math.max(0, request.retries ?? this.retries);
    const key = request.idempotencyKey ?? randomUUID();
    // Instances that failed this call, and how; most calls never need one.
    let failed: Map<string, FailedAs> | undefined;
    let attempts = 0;
    let budget = retries + 1;
    let backoffs = 0;
    let lastInstance: string | undefined;
    let resume = request.resumeAsync;
    for (;;) {
      let attempt: Attempt | undefined;
      // The slot is taken before an instance is chosen, so choosing and calling happen in one
      // tick: no other call can take a half-open circuit's single probe in between.
      const slot =
        !signal?.aborted && this.semaphore.tryAcquire() ? new Slot(this.semaphore) : await this.slot(signal);
      try {
        if (!slot) throw cancelledError(signal);
        if (resume) {
          attempt = { instance: this.resumeTarget(request, resume), number: ++attempts };
        } else {
          attempt = { instance: this.choose(request, policy, failed ?? NONE_FAILED), number: ++attempts };
        }
        lastInstance = attempt.instance.id;
        request.onEvent?.({
          type: "attempt",
          attempt: attempt.number,
          instance: attempt.instance.id,
          endpoint: attempt.instance.endpoint,
        });
        const output = await this.attempt(request, policy, attempt, {
          key,
          signal,
          slot,
          retries,
          taskId: resume?.taskId,
        });
        if (output.status === "failed") {
          const error = new AgentctlError(
            "agent_failed",
            output.message || `agent ${request.agentName} reported failure`,
            {
              agent: request.agentName,
              endpoint: attempt.instance.endpoint,
              instance: attempt.instance.id,
            },
          );
          return { ok: false, error, instance: attempt.instance.id, attempts };
        }
        return { ok: true, output, instance: attempt.instance.id, attempts };
      } catch (thrown) {
        slot?.release();
        const error = toAgentctlError(thrown, "connection");
        // Refused before sending (an input of the wrong type, a closed client): no attempt.
        if (error.code === "invalid" && attempt && !attempt.sent) {
          return { ok: false, error, attempts: attempts - 1 };
        }
        if (attempt) error.instance ??= attempt.instance.id;
        if (!attempt || error.code === "cancelled" || signal?.aborted) {
          const final = signal?.aborted && error.code !== "cancelled" ? cancelledError(signal) : error;
          return { ok: false, error: final, instance: lastInstance, attempts };
        }
        resume = undefined;
        // A 404 on submit means "not served here" (not retryable by itself); a lost async task is
        // a 404 marked retryable by poll(), and is a real failed attempt.
        const notServed = error.code === "http_status" && error.status === 404 && !error.retryable;
        failed ??= new Map();
        failed.set(attempt.instance.id, notServed ? "not_served" : "failed");
        // A 404 is routing ("not served here"), not a failure of the call: it costs no retry, and
        // that instance is not asked again, not even after a backoff.
        if (!notServed) budget--;
        const { untried: canFailOver, callable, circuitOpen } = this.remaining(request, policy, failed);
        // With every circuit now open (or every instance left saying "not served here"),
        // waiting cannot help: the real failure is the answer.
        if (!(error.retryable || notServed) || budget <= 0 || !callable) {
          request.onEvent?.({
            type: "attempt_failed",
            attempt: attempt.number,
            instance: attempt.instance.id,
            error,
            gaveUp: !(error.retryable || notServed)
              ? "not_retryable"
              : budget <= 0
                ? "no_retries_left"
                : circuitOpen
                  ? "circuits_open"
                  : "no_instance_left",
          });
          return { ok: false, error, instance: attempt.instance.id, attempts };
        }
        let wait = 0;
        if (!canFailOver) {
          wait = Math.max(backoffDelay(backoffs++, this.backoff, this.random), error.retryAfterMs ?? 0);
        }
        request.onEvent?.({
          type: "attempt_failed",
          attempt: attempt.number,
          instance: attempt.instance.id,
          error,
          retryInMs: wait,
          failover: canFailOver,
        });
        if (wait > 0) {
          try {
            await sleep(wait, signal);
          } catch (e) {
            return { ok: false, error: toAgentctlError(e, "cancelled"), instance: lastInstance, attempts };
          }
        }
      }
    }
  }

  /**
   * Whether an eligible instance could take the next attempt at all, one not yet failed, and
   * whether an open circuit is what keeps one from it.
   */
  private remaining(
    request: AgentTask,
    policy: ServicePolicy,
    failed: ReadonlyMap<string, FailedAs>,
  ): { untried: boolean; callable: boolean; circuitOpen: boolean } {
    const r = { untried: false, callable: false, circuitOpen: false };
    if (!this.registry.hasService(request.serviceName)) return r;
    for (const i of this.registry.getAllInstances(request.serviceName)) {
      if (!serves(i, request.agentName) || failed.get(i.id) === "not_served") continue;
      if (!this.breaker(i, policy).callable) {
        r.circuitOpen = true;
        continue;
      }
      r.callable = true;
      if (!failed.has(i.id)) r.untried = true;
    }
    return r;
  }

  /**
   * Untried instances first; among those, healthy with a closed circuit, then healthy, then the
   * rest (an all-unhealthy service is still tried). Open circuits are never chosen.
   */
  private choose(
    request: AgentTask,
    policy: ServicePolicy,
    failed: ReadonlyMap<string, FailedAs>,
  ): ServiceInstance {
    // One pass, ranking callable instances: untried before already failed; within those, healthy
    // before unhealthy (an all-unhealthy service is still tried). A half-open circuit with its
    // probe free ranks like a closed one, so its single probe goes out while others get the rest.
    let best: ServiceInstance[] = [];
    let bestRank = Number.POSITIVE_INFINITY;
    let eligible = false;
    for (const i of this.registry.getAllInstances(request.serviceName)) {
      if (!serves(i, request.agentName)) continue;
      eligible = true;
      if (failed.get(i.id) === "not_served" || !this.breaker(i, policy).callable) continue;
      const rank = (failed.has(i.id) ? 2 : 0) + (i.healthy ? 0 : 1);
      if (rank < bestRank) {
        bestRank = rank;
        best = [i];
      } else if (rank === bestRank) {
        best.push(i);
      }
    }
    if (!eligible) {
      throw new AgentctlError(
        "no_instances",
        `no instance of ${request.serviceName} serves ${request.agentName}`,
        {
          agent: request.agentName,
        },
      );
    }
    if (best.length === 0) {
      throw new AgentctlError(
        "circuit_open",
        `every instance of ${request.serviceName} has an open circuit`,
        {
          agent: request.agentName,
        },
      );
    }
    return this.balancer.pick(request.serviceName, best, policy.loadBalancing ?? this.loadBalancing);
  }

  private resumeTarget(request: AgentTask, resume: NonNullable<CallRequest["resumeAsync"]>): ServiceInstance {
    const known = this.registry.hasService(request.serviceName)
      ? this.registry.getAllInstances(request.serviceName).find((i) => i.endpoint === resume.endpoint)
      : undefined;
    if (known) return known;
    // The instance left the registry since; its task may still be there, so poll it directly.
    const t = Date.now();
    return {
      id: resume.instance ?? resume.endpoint,
      serviceName: request.serviceName,
      endpoint: resume.endpoint,
      healthy: true,
      outOfService: false,
      registeredAt: t,
      lastSeen: t,
    };
  }

  private breaker(instance: ServiceInstance, policy: ServicePolicy) {
    return this.client.circuitBreaker(instance.endpoint, policy.circuitBreaker);
  }

  private async attempt(
    request: CallRequest,
    policy: ServicePolicy,
    attempt: Attempt,
    ctx: AttemptContext,
  ): Promise<AgentOutput> {
    const { signal, slot } = ctx;
    const { instance } = attempt;
    // Async attempts (submit and polling) need a bound of their own: the client's default.
    const timeout = request.timeout ?? policy.timeout ?? this.timeout ?? this.client.timeout;
    const callOptions: CallOptions = {
      signal,
      timeout,
      idempotencyKey: ctx.key,
      headers: policy.headers,
      maxResponseBytes: policy.maxResponseBytes,
    };
    this.balancer.begin(instance.id);
    try {
      if (request.async) return await this.asyncAttempt(request, attempt, ctx, callOptions);
      return await this.client.executeAgent(instance.endpoint, request.agentName, request.input, callOptions);
    } finally {
      slot.release();
      this.balancer.end(instance.id);
    }
  }

  /**
   * An attempt of an async agent: submit (or take the known task id), give the slot back, poll.
   * The whole of it, polls included, is bounded by the attempt's timeout.
   */
  private async asyncAttempt(
    request: CallRequest,
    attempt: Attempt,
    ctx: AttemptContext,
    callOptions: CallOptions,
  ): Promise<AgentOutput> {
    const { instance } = attempt;
    const { signal } = ctx;
    const timeout = callOptions.timeout;
    const dl = deadline(timeout, signal);
    try {
      const pollOptions: CallOptions = { ...callOptions, signal: dl.signal, timeout: undefined };
      let taskId = ctx.taskId;
      attempt.sent = taskId !== undefined;
      if (taskId === undefined) {
        taskId = await this.client.executeAgentAsync(
          instance.endpoint,
          request.agentName,
          request.input,
          pollOptions,
        );
        request.onEvent?.({
          type: "async_submitted",
          attempt: attempt.number,
          instance: instance.id,
          endpoint: instance.endpoint,
          taskId,
        });
        attempt.sent = true;
      }
      ctx.slot.release();
      return await this.poll(request, instance, taskId, pollOptions, ctx.retries);
    } catch (err) {
      if (dl.timedOut() && !signal?.aborted) {
        throw new AgentctlError(
          "timeout",
          `async task of ${request.agentName} timed out after ${timeout} ms`,
          {
            endpoint: instance.endpoint,
            agent: request.agentName,
            instance: instance.id,
            cause: err,
          },
        );
      }
      throw err;
    } finally {
      dl.dispose();
    }
  }

  /** A concurrency slot once one is free; undefined when cancelled while waiting. */
  private async slot(signal: AbortSignal | undefined): Promise<Slot | undefined> {
    try {
      await this.semaphore.acquire(signal);
    } catch {
      return undefined;
    }
    return new Slot(this.semaphore);
  }

  /**
   * Polls one async task. Connection errors and 5xx are retried on the same instance and task id
   * (with backoff) up to `retries` consecutive failures; a 404 means the server lost the task.
   */
  private async poll(
    request: CallRequest,
    instance: ServiceInstance,
    taskId: string,
    options: CallOptions,
    retries: number,
  ): Promise<AgentOutput> {
    const interval = request.pollInterval ?? this.pollInterval;
    let consecutiveFailures = 0;
    for (;;) {
      await sleep(interval, options.signal);
      try {
        const r = await this.semaphore.run(
          () => this.client.getAsyncResult(instance.endpoint, taskId, options),
          options.signal,
        );
        consecutiveFailures = 0;
        if (r.completed) return r.output!;
      } catch (err) {
        const e = toAgentctlError(err, "connection");
        const transient = e.code === "connection" || (e.code === "http_status" && (e.status ?? 0) >= 500);
        if (!transient || ++consecutiveFailures > retries) {
          // A lost task (404) is a retryable failure of this attempt: the next one submits again.
          if (e.code === "http_status" && e.status === 404) {
            throw new AgentctlError(
              "http_status",
              `async task ${taskId} is unknown to ${instance.endpoint}`,
              {
                status: 404,
                endpoint: instance.endpoint,
                agent: request.agentName,
                retryable: true,
              },
            );
          }
          throw e;
        }
        await sleep(
          Math.max(backoffDelay(consecutiveFailures - 1, this.backoff, this.random), e.retryAfterMs ?? 0),
          options.signal,
        );
      }
    }
  }
}

const NONE_FAILED: ReadonlyMap<string, FailedAs> = new Map();

/** How an instance failed a call: a real failure, or a 404 ("this agent is not served here"). */
type FailedAs = "failed" | "not_served";

function serves(instance: ServiceInstance, agent: string): boolean {
  return !instance.outOfService && (!instance.agents || instance.agents.includes(agent));
}

function unwrap(outcome: CallOutcome): AgentOutput {
  if (outcome.ok) return outcome.output;
  throw outcome.error;
}
