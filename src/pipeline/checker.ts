// biome-ignore-all lint/suspicious/noTemplateCurlyInString: ${{ }} is the pipeline expression syntax
/**
 * From a file to a schema-checked document and a {@link Checker} that reports further problems at
 * JSON paths, with the positions of their YAML source; helpers shared by the pipeline and
 * services checks.
 */
import { readFileSync, statSync } from "node:fs";
import type { Collector } from "./diagnostics.js";
import { durationProblem, parseDuration } from "./duration.js";
import { formatPath } from "./expressions.js";
import { schemaPhrases } from "./schema.js";
import { didYouMean } from "./text.js";
import type { Diagnostic } from "./types.js";
import { type JsonPath, type JsonSchema, validateSchema } from "./validate-schema.js";
import { MAX_FILE_BYTES, parseYaml, type YamlSource } from "./yaml-source.js";

/** The text of a file, or why it cannot be read (never too large to parse safely). */
export function readSource(path: string): { text: string } | { diagnostic: Diagnostic } {
  const fail = (message: string) => ({ diagnostic: { file: path, line: 0, column: 0, message } });
  try {
    if (path.includes("\0")) return fail("cannot read the file: the path contains a NUL byte");
    const stat = statSync(path);
    if (stat.isDirectory()) return fail("cannot read the file: it is a directory");
    if (stat.size > MAX_FILE_BYTES) return fail(tooLarge(stat.size));
    const text = readFileSync(path, "utf8");
    if (text.length > MAX_FILE_BYTES) return fail(tooLarge(text.length));
    return { text };
  } catch (err) {
    return fail(`cannot read the file: ${ioMessage(err)}`);
  }
}

function tooLarge(size: number): string {
  return `the file is too large (${size} bytes; at most ${MAX_FILE_BYTES} bytes)`;
}

function ioMessage(err: unknown): string {
  const code = (err as { code?: unknown } | null)?.code;
  switch (code) {
    case "ENOENT":
      return "no such file";
    case "EACCES":
    case "EPERM":
      return "permission denied";
    case "EISDIR":
      return "it is a directory";
    case "ENOTDIR":
      return "a part of the path is not a directory";
    case "ENAMETOOLONG":
      return "the path is too long";
    default: {
      // Node's messages repeat the path, which may be anything: keep them short.
      const message = err instanceof Error ? err.message : String(err);
      return message.length > 200 ? `${message.slice(0, 200)}…` : message;
    }
  }
}

/** Parses YAML text and checks it against a schema; `undefined` value when it cannot be used. */
function parseAndValidate(text: string, file: string, schema: JsonSchema, what: string): YamlSource {
  if (text.length > MAX_FILE_BYTES) {
    const src = parseYaml(file, "");
    src.diagnostics.push({ file, line: 0, column: 0, message: tooLarge(text.length) });
    src.value = undefined;
    return src;
  }
  const src = parseYaml(file, text);
  if (src.value === undefined) return src;
  if (src.value === null) {
    src.errorAt(0, `the file is empty: expected ${what}`);
    src.value = undefined;
    return src;
  }
  for (const e of validateSchema(schema, src.value, { phrases: schemaPhrases })) {
    const subject =
      e.atKey || e.message.startsWith("missing required key") || e.path.length === 0
        ? ""
        : `${pathText(e.path)}: `;
    src.error(e.path, subject + e.message, e.atKey);
  }
  return src;
}

export function pathText(path: JsonPath): string {
  const [first, ...rest] = path;
  return first === undefined ? "" : formatPath(String(first), rest);
}

/** Parses and schema-checks a file; undefined (problems in `out`) when it is not a mapping. */
export function startChecking(
  text: string,
  file: string,
  schema: JsonSchema,
  what: string,
  out: Collector,
): { src: YamlSource; doc: Record<string, unknown>; check: Checker } | undefined {
  const src = parseAndValidate(text, file, schema, what);
  const doc = src.value;
  if (!isObject(doc)) {
    out.take(src);
    return undefined;
  }
  const check = new Checker(src);
  for (const d of src.diagnostics) check.markReported(d);
  return { src, doc, check };
}

/** Reports problems at JSON paths, at most one per path (the schema's comes first). */
export class Checker {
  readonly src: YamlSource;
  private readonly reported = new Set<string>();

  constructor(src: YamlSource) {
    this.src = src;
  }

  private suggestions = 200;

  /** ` (did you mean "x"?)`, for the first couple of hundred problems (bounded work). */
  hint(word: string, candidates: Iterable<string>): string {
    return --this.suggestions >= 0 ? didYouMean(word, candidates) : "";
  }

  markReported(d: Diagnostic): void {
    this.reported.add(`${d.line}:${d.column}`);
  }

  error(path: JsonPath, message: string, atKey = false): void {
    const pos = this.src.position(path, atKey);
    // A second message where the schema already reported one would be noise.
    if (this.reported.has(`${pos.line}:${pos.column}`)) return;
    this.src.error(path, message, atKey);
  }

  /** An error about a part of the string at `path` (an expression in it). */
  errorInString(path: JsonPath, index: number, message: string): void {
    const pos = this.src.position(path);
    if (this.reported.has(`${pos.line}:${pos.column}`)) return;
    this.src.errorInString(path, index, message);
  }

  /** Problems of a schema-valid duration: too long, or zero where it must be positive. */
  duration(path: JsonPath, value: unknown, positive: boolean): void {
    if (value === undefined || (typeof value === "string" && value.includes("${{"))) return;
    const ms = parseDuration(value);
    if (ms === undefined) {
      const problem = durationProblem(value);
      if (problem !== undefined) this.error(path, `${pathText(path)}: ${problem}`);
    } else if (positive && ms === 0) {
      this.error(path, `${pathText(path)}: must be more than 0`);
    }
  }
}

export function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === "object" && v !== null && !Array.isArray(v);
}

/** A copy without prototype: any key (`__proto__` included) is an ordinary own property. */
export function nullProto<T>(from: Record<string, T>): Record<string, T> {
  const out = Object.create(null) as Record<string, T>;
  for (const [k, v] of Object.entries(from)) out[k] = v;
  return out;
}

export function setIf<T extends object, K extends keyof T>(
  target: T,
  key: K,
  value: T[K] | undefined | unknown,
): void {
  if (value !== undefined) target[key] = value as T[K];
}
