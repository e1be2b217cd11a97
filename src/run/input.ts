import { AgentctlError } from "../errors.js";
import { parseDuration } from "../pipeline/duration.js";
import type { AgentInput } from "../protocol/types.js";

export interface InputDefaults {
  /** `session_id` when the input has none (the CLI uses the run id). */
  sessionId?: string;
  /** Sequential mode: `context.previous_output` (wrapped, since the value may be undefined). */
  previousOutput?: { value: unknown };
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
  return input;
}
