import { AgentctlError } from "../errors.js";
import type { AgentInput, AgentOptions, AgentOutput } from "./types.js";

/** Option fields Go decodes as integers, booleans or numbers (its decoder is strict about types). */
const INTEGER_OPTIONS = ["max_tokens", "max_tool_calls", "max_history_length", "timeout"] as const;
const BOOLEAN_OPTIONS = ["enable_tools", "enable_memory", "load_history", "save_to_memory"] as const;

function isPlainObject(v: unknown): v is Record<string, unknown> {
  return typeof v === "object" && v !== null && !Array.isArray(v);
}

function coerceInteger(name: string, v: unknown): number {
  const n = typeof v === "string" && /^-?\d+$/.test(v.trim()) ? Number(v.trim()) : v;
  if (typeof n !== "number" || !Number.isSafeInteger(n)) {
    throw new AgentctlError("invalid", `options.${name} must be an integer, got ${JSON.stringify(v)}`);
  }
  return n;
}

function coerceBoolean(name: string, v: unknown): boolean {
  if (typeof v === "boolean") return v;
  if (v === "true") return true;
  if (v === "false") return false;
  throw new AgentctlError("invalid", `options.${name} must be a boolean, got ${JSON.stringify(v)}`);
}

function coerceNumber(name: string, v: unknown): number {
  const n = typeof v === "string" && v.trim() !== "" ? Number(v) : v;
  if (typeof n !== "number" || !Number.isFinite(n)) {
    throw new AgentctlError("invalid", `options.${name} must be a number, got ${JSON.stringify(v)}`);
  }
  return n;
}

function coerceString(name: string, v: unknown): string {
  if (typeof v === "string") return v;
  if (typeof v === "number" || typeof v === "boolean") return String(v);
  throw new AgentctlError("invalid", `${name} must be a string, got ${JSON.stringify(v)}`);
}

/**
 * Brings an input to the exact types a Go server decodes: integers as integers, numeric and
 * boolean strings converted, objects where objects belong, and a valid timestamp. Throws
 * `invalid` for a value that cannot be converted (a pipeline reports it as `template`: there,
 * only an expression can give a field the wrong type).
 */
export function encodeInput(input: AgentInput, now?: Date): AgentInput {
  if (!isPlainObject(input)) throw new AgentctlError("invalid", "agent input must be an object");
  // Object.assign, not a spread: `timestamp` may be added to the copy, and V8 (11.3) is ~2x
  // slower at that on a spread's copy; this runs once per call.
  const out: AgentInput = Object.assign({}, input);
  if (out.task !== undefined) out.task = coerceString("task", out.task);
  if (out.instruction !== undefined) out.instruction = coerceString("instruction", out.instruction);
  if (out.session_id !== undefined) out.session_id = coerceString("session_id", out.session_id);
  if (out.context !== undefined && out.context !== null && !isPlainObject(out.context)) {
    throw new AgentctlError("invalid", "context must be an object");
  }
  if (out.options !== undefined && out.options !== null) {
    if (!isPlainObject(out.options)) throw new AgentctlError("invalid", "options must be an object");
    const opts: AgentOptions = { ...out.options };
    for (const k of INTEGER_OPTIONS) if (opts[k] !== undefined) opts[k] = coerceInteger(k, opts[k]);
    for (const k of BOOLEAN_OPTIONS) if (opts[k] !== undefined) opts[k] = coerceBoolean(k, opts[k]);
    if (opts.temperature !== undefined) opts.temperature = coerceNumber("temperature", opts.temperature);
    if (opts.model !== undefined) opts.model = coerceString("options.model", opts.model);
    if (opts.allowed_tools !== undefined && !Array.isArray(opts.allowed_tools)) {
      throw new AgentctlError("invalid", "options.allowed_tools must be a list");
    }
    out.options = opts;
  }
  out.timestamp = rfc3339Timestamp(out.timestamp, now);
  return out;
}

const RFC3339 = /^(\d{4})-(\d{2})-(\d{2})T(\d{2}):(\d{2}):(\d{2})(\.\d{1,9})?(Z|[+-](\d{2}):(\d{2}))$/;

// The inputs of a batch or a fan-out often share one timestamp string: check it once (the check
// was 3 µs, the largest cost of a coordinator call of its own).
let lastRfc3339: string | undefined;

/** Whether Go's time.Time decoder (RFC 3339, strict about ranges) accepts the string. */
export function isRfc3339(s: string): boolean {
  if (s === lastRfc3339) return true;
  const ok = checkRfc3339(s);
  if (ok) lastRfc3339 = s;
  return ok;
}

function checkRfc3339(s: string): boolean {
  const m = RFC3339.exec(s);
  if (!m) return false;
  const [y, mo, d, h, mi, sec] = m.slice(1, 7).map(Number) as [
    number,
    number,
    number,
    number,
    number,
    number,
  ];
  const daysInMonth = new Date(Date.UTC(y, mo, 0)).getUTCDate();
  const zoneOk = m[9] === undefined || (Number(m[9]) < 24 && Number(m[10]) < 60);
  return mo >= 1 && mo <= 12 && d >= 1 && d <= daysInMonth && h < 24 && mi < 60 && sec < 60 && zoneOk;
}

/**
 * The input's timestamp as Go decodes it: an RFC 3339 string is kept as is, another parseable
 * time is rewritten in RFC 3339, anything else (absent, empty, invalid) becomes `now`.
 */
function rfc3339Timestamp(value: unknown, now: Date | undefined): string {
  if (typeof value === "string" && isRfc3339(value)) return value;
  const t = typeof value === "string" && value.trim() !== "" ? Date.parse(value) : Number.NaN;
  if (!Number.isNaN(t)) return new Date(t).toISOString();
  return now ? now.toISOString() : isoNow();
}

// Thousands of calls a second share a handful of milliseconds: format each one once.
let isoMs = Number.NaN;
let iso = "";

function isoNow(): string {
  const ms = Date.now();
  if (ms !== isoMs) {
    isoMs = ms;
    iso = new Date(ms).toISOString();
  }
  return iso;
}

function arrayOrEmpty(v: unknown): unknown[] {
  return Array.isArray(v) ? v : [];
}

/**
 * Decodes an AgentOutput leniently, as Go's encoder may send it: unknown fields dropped,
 * missing fields and `null` arrays/objects given empty values. Throws `bad_response` for a body
 * that is not a JSON object at all.
 */
export function decodeOutput(body: unknown): AgentOutput {
  if (!isPlainObject(body)) {
    throw new AgentctlError("bad_response", "response is not an AgentOutput object");
  }
  const out: AgentOutput = {
    result: body.result ?? null,
    status: typeof body.status === "string" ? body.status : "",
    message: typeof body.message === "string" ? body.message : "",
    reasoning_steps: arrayOrEmpty(body.reasoning_steps),
    tool_calls: arrayOrEmpty(body.tool_calls),
    latency: typeof body.latency === "number" && Number.isFinite(body.latency) ? Math.trunc(body.latency) : 0,
    timestamp: typeof body.timestamp === "string" ? body.timestamp : "",
    metadata: isPlainObject(body.metadata) ? body.metadata : {},
  };
  if (isPlainObject(body.token_usage)) out.token_usage = body.token_usage;
  return out;
}

export function decodeTaskId(body: unknown): string {
  const id = isPlainObject(body) ? body.task_id : undefined;
  // "." and ".." could not be polled: no path segment may be either.
  if (typeof id !== "string" || id === "" || id === "." || id === "..") {
    throw new AgentctlError("bad_response", "async submit response has no usable task_id");
  }
  return id;
}

export function decodeAgentList(body: unknown): string[] {
  if (!isPlainObject(body)) throw new AgentctlError("bad_response", "agent list is not an object");
  const agents = body.agents ?? [];
  if (!Array.isArray(agents) || !agents.every((a) => typeof a === "string")) {
    throw new AgentctlError("bad_response", "agent list has no string array `agents`");
  }
  return agents;
}
