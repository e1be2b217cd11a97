import { AgentctlError } from "../errors.js";
import { parseDuration } from "../pipeline/duration.js";
import { encodeInput } from "../protocol/encoding.js";
import type { AgentInput } from "../protocol/types.js";

export interface InputDefaults {
  /** `session_id` when the input has none (the CLI uses the run id). */
  sessionId?: string;
  /** Sequential mode: `context.previous_output` (wrapped, since the value may be undefined). */
  previousOutput?: { value: unknown };
  /**
   * Expressions give some typed field its value ({@link typedByExpressions}): check the wire
   * types here, so that a wrong one fails the task with `template` (the client would say
   * `invalid`, as it does to a library caller's bad input).
   */
  checkTypes?: boolean;
}

const TYPED_FIELDS = ["task", "instruction", "session_id", "context", "options"] as const;

const isExpression = (v: unknown) => typeof v === "string" && v.includes("${{");

/**
 * Whether an expression decides the value of a field the wire format types (task, context,
 * options.max_tokens…): only then can the type be wrong at run time, since the loader checks
 * literals. Expressions inside `context` (any JSON) do not count.
 */
export function typedByExpressions(input: unknown): boolean {
  if (typeof input !== "object" || input === null) return isExpression(input);
  const fields = input as Record<string, unknown>;
  if (TYPED_FIELDS.some((f) => isExpression(fields[f]))) return true;
  const options = fields.options;
  return typeof options === "object" && options !== null && Object.values(options).some(isExpression);
}

/**
 * Turns a task's resolved `input` into the wire AgentInput: `options.timeout` from a duration
 * to nanoseconds, defaults filled in. Type conversion of the other fields happens in encoding.
 */
export function toAgentInput(value: unknown, defaults: InputDefaults): AgentInput {
  if (typeof value !== "object" || value === null || Array.isArray(value)) {
    throw new AgentctlError("template", "input must be a mapping");
  }
  // Object.assign, not a spread: fields are added to the copy below, and V8 (11.3) is ~2x
  // slower at that on a spread's copy; this runs once per call.
  const input: AgentInput = Object.assign({}, value as AgentInput);
  if (input.options && typeof input.options === "object" && input.options.timeout !== undefined) {
    const raw = input.options.timeout as unknown;
    const ms = parseDuration(raw);
    if (ms === undefined)
      throw new AgentctlError("template", `options.timeout ${JSON.stringify(raw)} is not a duration`);
    input.options = { ...input.options, timeout: Math.round(ms * 1_000_000) };
  }
  if (input.session_id === undefined && defaults.sessionId !== undefined)
    input.session_id = defaults.sessionId;
  if (defaults.previousOutput) {
    const context = input.context && typeof input.context === "object" ? input.context : {};
    input.context = { ...context, previous_output: defaults.previousOutput.value ?? null };
  }
  if (!defaults.checkTypes) return input;
  let typed: AgentInput;
  try {
    typed = encodeInput(input);
  } catch (err) {
    throw new AgentctlError("template", (err as Error).message);
  }
  // The timestamp is the attempt's (the client sets it), not this moment's.
  typed.timestamp = input.timestamp;
  return typed;
}
