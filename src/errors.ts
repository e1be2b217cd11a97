/**
 * One error class for every failure, carrying a stable `code` (SPEC §3). Callers branch on
 * `code`, never on `message`: messages are for people and may change.
 */
export type ErrorCode =
  | "connection"
  | "timeout"
  | "http_status"
  | "bad_response"
  | "agent_failed"
  | "circuit_open"
  | "no_instances"
  | "unknown_service"
  | "cancelled"
  | "template"
  | "invalid"
  | "skipped"
  | "assertion";

export const ERROR_CODES: readonly ErrorCode[] = [
  "connection",
  "timeout",
  "http_status",
  "bad_response",
  "agent_failed",
  "circuit_open",
  "no_instances",
  "unknown_service",
  "cancelled",
  "template",
  "invalid",
  "skipped",
  "assertion",
];

const RETRYABLE_STATUS = new Set([429, 500, 502, 503, 504]);

export interface AgentctlErrorOptions {
  status?: number;
  endpoint?: string;
  agent?: string;
  instance?: string;
  /** Start of the response body (at most 4 KiB) for `http_status` errors. */
  body?: string;
  /** Milliseconds a `Retry-After` header asked for. */
  retryAfterMs?: number;
  cause?: unknown;
  /** Overrides the default for the code (e.g. a 404 that should fail over). */
  retryable?: boolean;
}

export class AgentctlError extends Error {
  override readonly name = "AgentctlError";
  readonly code: ErrorCode;
  readonly retryable: boolean;
  /** Whether this failure says something bad about the instance (feeds its circuit breaker). */
  readonly countsAgainstInstance: boolean;
  readonly status?: number;
  readonly endpoint?: string;
  readonly agent?: string;
  instance?: string;
  readonly body?: string;
  readonly retryAfterMs?: number;

  constructor(code: ErrorCode, message: string, options: AgentctlErrorOptions = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.code = code;
    this.status = options.status;
    this.endpoint = options.endpoint;
    this.agent = options.agent;
    this.instance = options.instance;
    this.body = options.body;
    this.retryAfterMs = options.retryAfterMs;
    this.retryable = options.retryable ?? defaultRetryable(code, options.status);
    this.countsAgainstInstance = countsAgainst(code, options.status);
  }

  /** A plain object for JSON output: code, message and status only (no bodies, no causes). */
  toJSON(): { code: ErrorCode; message: string; status?: number } {
    return this.status === undefined
      ? { code: this.code, message: this.message }
      : { code: this.code, message: this.message, status: this.status };
  }
}

function defaultRetryable(code: ErrorCode, status: number | undefined): boolean {
  switch (code) {
    case "connection":
    case "timeout":
      return true;
    case "http_status":
      return status !== undefined && RETRYABLE_STATUS.has(status);
    default:
      return false;
  }
}

function countsAgainst(code: ErrorCode, status: number | undefined): boolean {
  switch (code) {
    case "connection":
    case "timeout":
    case "bad_response":
      return true;
    case "http_status":
      return status !== undefined && status >= 500;
    default:
      return false;
  }
}

export function isAgentctlError(err: unknown): err is AgentctlError {
  return err instanceof AgentctlError;
}

/** Wraps anything thrown into an AgentctlError, keeping the original as `cause`. */
export function toAgentctlError(err: unknown, fallback: ErrorCode = "invalid"): AgentctlError {
  if (err instanceof AgentctlError) return err;
  const message = err instanceof Error ? err.message : String(err);
  return new AgentctlError(fallback, message, { cause: err });
}
