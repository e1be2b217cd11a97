import { AgentctlError } from "../errors.js";
import { cancelledError } from "../resilience/abort.js";

/** System and undici error codes of a failed connection (refused, reset, DNS, TLS). */
const CONNECTION_CODES = new Set([
  "ECONNREFUSED",
  "ECONNRESET",
  "ECONNABORTED",
  "EPIPE",
  "ENOTFOUND",
  "EAI_AGAIN",
  "EHOSTUNREACH",
  "ENETUNREACH",
  "EHOSTDOWN",
  "ENETDOWN",
  "ETIMEDOUT",
  "EADDRNOTAVAIL",
  "UND_ERR_SOCKET",
  "UND_ERR_CLOSED",
  "UND_ERR_DESTROYED",
  "UND_ERR_CONNECT_TIMEOUT",
  "UND_ERR_PRX_TLS",
  "UND_ERR_SOCKS",
]);

const TIMEOUT_CODES = new Set(["UND_ERR_HEADERS_TIMEOUT", "UND_ERR_BODY_TIMEOUT"]);
const BAD_RESPONSE_CODES = new Set([
  "UND_ERR_RES_CONTENT_LENGTH_MISMATCH",
  "UND_ERR_RES_EXCEEDED_MAX_SIZE",
  "UND_ERR_HTTP_PARSER",
  "UND_ERR_HEADERS_OVERFLOW",
  "HPE_INVALID_CONSTANT",
]);

function errorCode(err: unknown): string | undefined {
  let e: unknown = err;
  // undici and Node wrap the system error; the innermost code is the informative one.
  for (let depth = 0; depth < 4 && e && typeof e === "object"; depth++) {
    const code = (e as { code?: unknown }).code;
    if (
      typeof code === "string" &&
      (CONNECTION_CODES.has(code) ||
        TIMEOUT_CODES.has(code) ||
        BAD_RESPONSE_CODES.has(code) ||
        code.startsWith("ERR_TLS") ||
        code.includes("CERT"))
    ) {
      return code;
    }
    e = (e as { cause?: unknown }).cause;
  }
  const top = (err as { code?: unknown } | null)?.code;
  return typeof top === "string" ? top : undefined;
}

export interface FailureContext {
  endpoint: string;
  agent?: string;
  /** The call's timeout, ms (for the message). */
  timeout: number;
  /** Whether our own timer for the call fired (short timeouts). */
  timedOut?: boolean;
  parent?: AbortSignal;
}

/**
 * Turns whatever a request threw into an AgentctlError, from the failure itself: whether the
 * caller cancelled, then the error's code (undici's or the system's, a timeout included).
 * Messages are never inspected.
 */
export function classifyFailure(err: unknown, ctx: FailureContext): AgentctlError {
  const where = { endpoint: ctx.endpoint, agent: ctx.agent, cause: err };
  if (err instanceof AgentctlError && err.code !== "cancelled" && err.code !== "timeout") return err;
  if (ctx.parent?.aborted) return cancelledError(ctx.parent);
  if (ctx.timedOut)
    return new AgentctlError("timeout", `${describe(ctx)} timed out after ${ctx.timeout} ms`, where);
  const code = errorCode(err);
  if (code !== undefined) {
    if (TIMEOUT_CODES.has(code)) {
      return new AgentctlError("timeout", `${describe(ctx)} timed out after ${ctx.timeout} ms`, where);
    }
    if (BAD_RESPONSE_CODES.has(code))
      return new AgentctlError("bad_response", `${describe(ctx)}: malformed response (${code})`, where);
    if (CONNECTION_CODES.has(code) || code.startsWith("ERR_TLS") || code.includes("CERT")) {
      return new AgentctlError("connection", `${describe(ctx)}: connection failed (${code})`, where);
    }
    if (code === "UND_ERR_INVALID_ARG" || code === "ERR_INVALID_URL") {
      // undici's message names what is wrong ("invalid authorization header"), never a value.
      const why = err instanceof Error && err.message ? ` (${err.message})` : "";
      return new AgentctlError("invalid", `${describe(ctx)}: invalid request${why}`, where);
    }
  }
  // An unclassified I/O failure is treated as a connection problem: retryable, counted.
  return new AgentctlError(
    "connection",
    `${describe(ctx)}: request failed${code ? ` (${code})` : ""}`,
    where,
  );
}

function describe(ctx: FailureContext): string {
  return ctx.agent ? `${ctx.agent} at ${ctx.endpoint}` : ctx.endpoint;
}
