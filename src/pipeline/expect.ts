/**
 * `expect` checks on a task's AgentOutput (SPEC §5): each key is a path into the output
 * (`status`, `result.words`, `result.items[0].name`, `metadata["a.b"]`), each value the expected
 * value there — compared with deep equality, except that a `"/…/flags"` string is a regular
 * expression a string value must match.
 */
import { formatPath, type PathSegment, parsePath } from "./expressions.js";
import { previewJson, quote } from "./text.js";

/** Top-level AgentOutput fields an expect path may start with. */
export const OUTPUT_FIELDS = [
  "result",
  "status",
  "message",
  "reasoning_steps",
  "tool_calls",
  "token_usage",
  "latency",
  "timestamp",
  "metadata",
] as const;

const REGEX_LITERAL = /^\/(.*)\/([a-z]*)$/s;

/** Whether a string is written as a `/regex/flags` literal. */
export function isRegexLiteral(s: string): boolean {
  return REGEX_LITERAL.test(s);
}

/** The RegExp of a `/regex/flags` string, an error message when it is invalid, or undefined when it is not one. */
export function parseRegexLiteral(s: string): RegExp | { error: string } | undefined {
  const m = REGEX_LITERAL.exec(s);
  if (m === null) return undefined;
  try {
    return new RegExp(m[1] ?? "", m[2] ?? "");
  } catch (err) {
    const why = err instanceof Error ? err.message : String(err);
    // V8 says "Invalid regular expression: /(/: Unterminated group": keep the last part.
    const cut = why.lastIndexOf(": ");
    const reason = cut < 0 ? why : why.slice(cut + 2);
    return {
      error: `invalid regular expression ${quote(s)}: ${reason.charAt(0).toLowerCase()}${reason.slice(1)}`,
    };
  }
}

export interface ExpectProblem {
  key: string;
  message: string;
  /** The problem is the key (path) rather than the expected value. */
  atKey: boolean;
}

/** Problems known before the run: malformed paths, unknown output fields, invalid regexes. */
export function expectationProblems(expect: Record<string, unknown>): ExpectProblem[] {
  const problems: ExpectProblem[] = [];
  for (const [key, expected] of Object.entries(expect)) {
    const parsed = parsePath(key);
    if ("error" in parsed) {
      problems.push({ key, atKey: true, message: `invalid expect path ${quote(key)}: ${parsed.error}` });
    } else if (!(OUTPUT_FIELDS as readonly string[]).includes(parsed.root)) {
      problems.push({
        key,
        atKey: true,
        message: `expect path ${quote(key)} must start with an AgentOutput field (${OUTPUT_FIELDS.join(", ")})`,
      });
    }
    if (typeof expected === "string") {
      const re = parseRegexLiteral(expected);
      if (re !== undefined && "error" in re) problems.push({ key, atKey: false, message: re.error });
    }
  }
  return problems;
}

/**
 * Checks every expectation against an output. Returns undefined when all hold, else a message
 * naming each failing path with the expected and the actual value.
 */
export function checkExpectations(
  expect: Record<string, unknown> | undefined,
  output: unknown,
): string | undefined {
  if (expect === undefined) return undefined;
  const failures: string[] = [];
  for (const [key, expected] of Object.entries(expect)) {
    const failure = checkOne(key, expected, output);
    if (failure !== undefined) failures.push(failure);
  }
  return failures.length === 0 ? undefined : failures.join("; ");
}

function checkOne(key: string, expected: unknown, output: unknown): string | undefined {
  const parsed = parsePath(key);
  if ("error" in parsed) return `expect ${quote(key)}: invalid path: ${parsed.error}`;
  const actual = lookup(output, [parsed.root, ...parsed.path]);
  const shownPath = formatPath(parsed.root, parsed.path);
  if (typeof expected === "string") {
    const re = parseRegexLiteral(expected);
    if (re !== undefined) {
      if ("error" in re) return `expect ${shownPath}: ${re.error}`;
      if (actual.found && typeof actual.value === "string" && re.test(actual.value)) return undefined;
      return `expect ${shownPath}: expected a string matching ${expected}, got ${describeActual(actual)}`;
    }
  }
  if (actual.found && deepEqual(expected, actual.value)) return undefined;
  return `expect ${shownPath}: expected ${previewJson(expected)}, got ${describeActual(actual)}`;
}

type Lookup = { found: true; value: unknown } | { found: false };

function lookup(value: unknown, path: readonly PathSegment[]): Lookup {
  let current = value;
  for (const seg of path) {
    if (Array.isArray(current)) {
      const index = typeof seg === "number" ? seg : /^[0-9]{1,15}$/.test(seg) ? Number(seg) : -1;
      if (index < 0 || index >= current.length) return { found: false };
      current = current[index];
    } else if (typeof current === "object" && current !== null) {
      const key = String(seg);
      if (!Object.hasOwn(current, key)) return { found: false };
      current = (current as Record<string, unknown>)[key];
    } else {
      return { found: false };
    }
  }
  return current === undefined ? { found: false } : { found: true, value: current };
}

function describeActual(actual: Lookup): string {
  return actual.found ? previewJson(actual.value) : "nothing (no value at that path)";
}

/** Deep equality of JSON values (key order does not matter; `1` and `"1"` differ). */
export function deepEqual(a: unknown, b: unknown): boolean {
  if (a === b) return true;
  if (typeof a === "number" && typeof b === "number") return Number.isNaN(a) && Number.isNaN(b);
  if (typeof a !== "object" || typeof b !== "object" || a === null || b === null) return false;
  if (Array.isArray(a) !== Array.isArray(b)) return false;
  if (Array.isArray(a) && Array.isArray(b)) {
    return a.length === b.length && a.every((x, i) => deepEqual(x, b[i]));
  }
  const ra = a as Record<string, unknown>;
  const rb = b as Record<string, unknown>;
  const ka = Object.keys(ra);
  if (ka.length !== Object.keys(rb).length) return false;
  return ka.every((k) => Object.hasOwn(rb, k) && deepEqual(ra[k], rb[k]));
}
