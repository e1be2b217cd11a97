import type { IncomingMessage } from "node:http";
import { isRfc3339 } from "../protocol/encoding.js";
import { MAX_JSON_DEPTH, nestsDeeperThan } from "../protocol/json-depth.js";
import type { AgentInput } from "../protocol/types.js";

/** A request problem answered with `status` and `{"error": message}`. */
export class HttpError extends Error {
  constructor(
    readonly status: number,
    message: string,
  ) {
    super(message);
  }
}

/** Reads the whole body, refusing (413) a declared or actual size over `limit` bytes. */
export function readBody(req: IncomingMessage, limit: number): Promise<Buffer> {
  const tooLarge = () => new HttpError(413, `request body over ${limit} bytes`);
  if (Number(req.headers["content-length"]) > limit) return Promise.reject(tooLarge());
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    req.on("data", (chunk: Buffer) => {
      size += chunk.length;
      // Past the limit, drop the rest: the 413 closes the connection anyway.
      if (size > limit) reject(tooLarge());
      else chunks.push(chunk);
    });
    req.on("end", () => resolve(chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks)));
    req.on("error", reject);
    req.on("close", () => {
      if (!req.complete) reject(new HttpError(400, "request aborted"));
    });
  });
}

type FieldType = "string" | "integer" | "number" | "boolean" | "strings";

// The types Go's strict decoder expects for goagent's AgentInput (null is always fine in Go).
const INPUT_FIELDS: Record<string, FieldType> = {
  task: "string",
  instruction: "string",
  session_id: "string",
};
const OPTION_FIELDS: Record<string, FieldType> = {
  temperature: "number",
  max_tokens: "integer",
  model: "string",
  enable_tools: "boolean",
  allowed_tools: "strings",
  max_tool_calls: "integer",
  enable_memory: "boolean",
  load_history: "boolean",
  save_to_memory: "boolean",
  max_history_length: "integer",
  timeout: "integer",
};
/** Go decodes integers into int64: outside its range is an error, not a rounding. */
const INT64_LIMIT = 2 ** 63;

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === "object" && v !== null && !Array.isArray(v);
}

function fits(type: FieldType, v: unknown): boolean {
  if (v === null || v === undefined) return true;
  switch (type) {
    case "string":
      return typeof v === "string";
    case "integer":
      // (A whole number written 5.0 or 1e3, which Go refuses, reads as 5 and 1000 here.)
      return Number.isInteger(v) && (v as number) >= -INT64_LIMIT && (v as number) < INT64_LIMIT;
    case "number":
      return typeof v === "number";
    case "boolean":
      return typeof v === "boolean";
    case "strings":
      return Array.isArray(v) && v.every((s) => s === null || typeof s === "string");
  }
}

/** The first way `value` would fail Go's decoding of an AgentInput, if any. */
function inputProblem(value: unknown): string | undefined {
  if (!isObject(value)) return "body must be a JSON object (AgentInput)";
  for (const [field, type] of Object.entries(INPUT_FIELDS)) {
    if (!fits(type, value[field])) return `${field} must be a ${type}`;
  }
  const { timestamp, context, options } = value;
  if (timestamp != null && !(typeof timestamp === "string" && isRfc3339(timestamp))) {
    return "timestamp must be an RFC 3339 time";
  }
  if (context != null && !isObject(context)) return "context must be an object";
  if (options == null) return undefined;
  if (!isObject(options)) return "options must be an object";
  for (const [field, type] of Object.entries(OPTION_FIELDS)) {
    if (!fits(type, options[field])) {
      return `options.${field} must be ${type === "strings" ? "a list of strings" : `a ${type}`}`;
    }
  }
  return undefined;
}

/** Parses and type-checks an AgentInput body as the Go server would (400 otherwise). */
export function parseAgentInput(body: Buffer): AgentInput {
  const text = body.toString("utf8");
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    throw new HttpError(400, "request body is not valid JSON");
  }
  if (nestsDeeperThan(value, text))
    throw new HttpError(400, `request body nests deeper than ${MAX_JSON_DEPTH} levels`);
  // Go decodes `null` into an AgentInput as nothing at all: an empty input.
  if (value === null) return {};
  const problem = inputProblem(value);
  if (problem !== undefined) throw new HttpError(400, `invalid AgentInput: ${problem}`);
  return value as AgentInput;
}
