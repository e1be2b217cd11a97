import type { AgentctlError } from "../errors.js";
import type { AgentInput, AgentOutput } from "../protocol/types.js";
import type { CircuitBreakerConfig } from "../resilience/circuit-breaker.js";
import type { LoadBalancing } from "./balancer.js";

/** A task as goagent's coordinator takes it. */
export interface AgentTask {
  serviceName: string;
  agentName: string;
  input: AgentInput;
}

export interface TaskResult {
  task: AgentTask;
  output?: AgentOutput;
  error?: AgentctlError;
}

/** Settings that may differ per service (from a services file). */
export interface ServicePolicy {
  loadBalancing?: LoadBalancing;
  /** Per-attempt timeout, ms. */
  timeout?: number;
  /** Sent on every call to the service; secrets. */
  headers?: Record<string, string>;
  circuitBreaker?: CircuitBreakerConfig;
  maxResponseBytes?: number;
}

export interface RunOptions {
  signal?: AbortSignal;
  /** Ms: per attempt for `executeAgent`, for the whole call elsewhere. */
  timeout?: number;
}

/** What happened on one attempt, for logs and journals. */
export type CallEvent =
  | { type: "attempt"; attempt: number; instance: string; endpoint: string }
  | {
      type: "attempt_failed";
      attempt: number;
      instance: string;
      error: AgentctlError;
      /** Set when the call goes on: the wait before the next attempt. */
      retryInMs?: number;
      /** Set when the call goes on: true when it goes to an instance not tried yet (no wait). */
      failover?: boolean;
      /** Set when it does not: why this failure is the call's answer. */
      gaveUp?: GiveUpReason;
    }
  | AsyncSubmitted;

/**
 * Why a failed attempt ends its call: not worth retrying, out of attempts, or nowhere to send it
 * (the circuits of the instances left are open; no instance left serves the agent).
 */
export type GiveUpReason = "not_retryable" | "no_retries_left" | "circuits_open" | "no_instance_left";

export interface AsyncSubmitted {
  type: "async_submitted";
  attempt: number;
  instance: string;
  endpoint: string;
  taskId: string;
}

/** One call with everything the runner can say about it. */
export interface CallRequest extends AgentTask {
  /** Retries after the first attempt (default: the coordinator's). */
  retries?: number;
  /** Per-attempt timeout, ms (default: the service's, then the coordinator's). */
  timeout?: number;
  /** Submit with execute/async and poll for the result. */
  async?: boolean;
  pollInterval?: number;
  /** Same on every attempt of this call (default: a random one per call). */
  idempotencyKey?: string;
  /** An async task submitted earlier (e.g. before a crash): poll it instead of submitting again. */
  resumeAsync?: { taskId: string; endpoint: string; instance?: string };
  onEvent?: (event: CallEvent) => void;
}

export type CallOutcome =
  | { ok: true; output: AgentOutput; instance: string; attempts: number }
  | { ok: false; error: AgentctlError; instance?: string; attempts: number };
