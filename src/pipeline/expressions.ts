// biome-ignore-all lint/suspicious/noTemplateCurlyInString: ${{ }} is the pipeline expression syntax
/**
 * `${{ }}` expressions (SPEC §5): a small, safe evaluator. An expression is a path — a root
 * (`vars`, `env`, `tasks`, `item`, `index`, `run`) followed by `.name`, `[n]` and `["key"]`
 * segments — and nothing else: no operators, no calls, never `eval`/`Function`.
 *
 * Evaluation rules:
 * - a string that is exactly one expression (no other characters) becomes the value's JSON type;
 * - an expression inside a longer string is inserted as text: strings as they are, numbers and
 *   booleans as written in JSON, `null` as `null`, lists and mappings as compact JSON;
 * - a path that does not resolve is an {@link AgentctlError} with code `template` naming the
 *   expression (never an empty string);
 * - only own properties are read, and `__proto__`, `constructor` and `prototype` are rejected
 *   when the expression is parsed;
 * - every value read from `env` is collected in `secrets`, for the caller to redact.
 */
import { AgentctlError } from "../errors.js";
import { didYouMean, quote } from "./text.js";
import type { JsonPath } from "./validate-schema.js";

export type PathSegment = string | number;

export const EXPRESSION_ROOTS = ["vars", "env", "tasks", "item", "index", "run"] as const;
export type ExpressionRoot = (typeof EXPRESSION_ROOTS)[number];

export interface Expression {
  root: ExpressionRoot;
  path: PathSegment[];
  /** Offsets of `${{` and just after `}}` in the string. */
  start: number;
  end: number;
  /** The expression as written, `${{ … }}` included (cut when very long). */
  text: string;
}

export type TemplatePart = { kind: "text"; text: string } | { kind: "expression"; expression: Expression };

export interface TemplateError {
  /** Offset in the string where the problem is. */
  offset: number;
  message: string;
}

export interface ParsedTemplate {
  parts: TemplatePart[];
  errors: TemplateError[];
}

export interface TemplateScope {
  vars?: Readonly<Record<string, unknown>>;
  /** Environment variables; every value read is a secret. */
  env?: Readonly<Record<string, string | undefined>>;
  /** Results so far: `output` (AgentOutput) of a task, `outputs` (one per item) of a for_each task. */
  tasks?: Readonly<Record<string, { output?: unknown; outputs?: readonly unknown[] }>>;
  /** The current item of a for_each task (an own property only there). */
  item?: unknown;
  /** The index of the current item, from 0 (an own property only in a for_each task). */
  index?: number;
  run?: { id: string };
}

export interface EvaluateResult {
  value: unknown;
  /** Values read from `env` (non-empty ones), to be redacted wherever output is shown. */
  secrets: string[];
}

const FORBIDDEN = new Set(["__proto__", "constructor", "prototype"]);
const OPEN = "${{";
const CLOSE = "}}";

/** Whether `s` holds an expression opener at all (cheap; no parsing). */
export function hasExpression(s: string): boolean {
  return s.includes(OPEN);
}

/** Splits a string into literal text and expressions, reporting every syntax error. */
export function parseTemplate(s: string): ParsedTemplate {
  const parts: TemplatePart[] = [];
  const errors: TemplateError[] = [];
  let i = 0;
  while (i <= s.length) {
    const start = s.indexOf(OPEN, i);
    if (start < 0) {
      if (i < s.length) parts.push({ kind: "text", text: s.slice(i) });
      break;
    }
    if (start > i) parts.push({ kind: "text", text: s.slice(i, start) });
    let j = skipSpaces(s, start + OPEN.length);
    const fail = (offset: number, message: string): boolean => {
      errors.push({ offset, message });
      const close = s.indexOf(CLOSE, start + OPEN.length);
      if (close < 0) return false;
      i = close + CLOSE.length;
      return true;
    };
    if (j >= s.length) {
      errors.push({ offset: start, message: `unterminated expression ${cut(s.slice(start))}: missing "}}"` });
      break;
    }
    if (s.startsWith(CLOSE, j)) {
      errors.push({ offset: start, message: "empty expression ${{ }}" });
      i = j + CLOSE.length;
      continue;
    }
    const read = readPath(s, j);
    if ("error" in read) {
      if (!fail(read.offset, `${read.error} in expression ${exprText(s, start)}`)) break;
      continue;
    }
    j = skipSpaces(s, read.end);
    if (!s.startsWith(CLOSE, j)) {
      if (j >= s.length) {
        errors.push({
          offset: start,
          message: `unterminated expression ${cut(s.slice(start))}: missing "}}"`,
        });
        break;
      }
      const message = `unexpected ${quote(s.charAt(j))} in expression ${exprText(s, start)} (only paths like vars.NAME or tasks.ID.output.result[0] are allowed)`;
      if (!fail(j, message)) break;
      continue;
    }
    const end = j + CLOSE.length;
    const text = cut(s.slice(start, end));
    if (!(EXPRESSION_ROOTS as readonly string[]).includes(read.root)) {
      errors.push({
        offset: start,
        message: `unknown name ${quote(read.root)} in ${text}${didYouMean(read.root, EXPRESSION_ROOTS)} (expected vars, env, tasks, item, index or run)`,
      });
    } else {
      parts.push({
        kind: "expression",
        expression: { root: read.root as ExpressionRoot, path: read.path, start, end, text },
      });
    }
    i = end;
  }
  return { parts, errors };
}

/**
 * Parses a bare path such as `result.words`, `result.items[0]` or `metadata["a.b"]` (as `expect`
 * keys are written). The root may be any name.
 */
export function parsePath(text: string): { root: string; path: PathSegment[] } | { error: string } {
  const read = readPath(text, 0);
  if ("error" in read) return { error: read.error };
  if (read.end !== text.length) return { error: `unexpected ${quote(text.charAt(read.end))}` };
  return { root: read.root, path: read.path };
}

/** `tasks.a.output["x y"][0]` */
export function formatPath(root: string, path: readonly PathSegment[]): string {
  let out = root;
  for (const seg of path) {
    if (typeof seg === "number") out += `[${seg}]`;
    else if (/^[A-Za-z0-9_-]+$/.test(seg)) out += `.${seg}`;
    else out += `[${JSON.stringify(seg)}]`;
  }
  return out;
}

type ReadResult = { root: string; path: PathSegment[]; end: number } | { error: string; offset: number };

function readPath(s: string, start: number): ReadResult {
  let i = start;
  const root = matchRun(s, i, isIdentStart, isIdentChar);
  if (root === 0) {
    return { error: `expected a name like vars.NAME, got ${quote(s.charAt(i))}`, offset: i };
  }
  const rootName = s.slice(i, i + root);
  i += root;
  const path: PathSegment[] = [];
  for (;;) {
    const c = s.charAt(i);
    if (c === ".") {
      const n = matchRun(s, i + 1, isNameChar, isNameChar);
      if (n === 0) return { error: 'expected a name after "."', offset: i + 1 };
      const name = s.slice(i + 1, i + 1 + n);
      if (FORBIDDEN.has(name)) return { error: `${quote(name)} cannot be used`, offset: i + 1 };
      path.push(name);
      i += 1 + n;
    } else if (c === "[") {
      let j = skipSpaces(s, i + 1);
      const d = s.charAt(j);
      if (d >= "0" && d <= "9") {
        const n = matchRun(s, j, isDigit, isDigit);
        if (n > 15) return { error: "index too large", offset: j };
        path.push(Number(s.slice(j, j + n)));
        j += n;
      } else if (d === '"' || d === "'") {
        const str = readQuoted(s, j);
        if ("error" in str) return str;
        if (FORBIDDEN.has(str.value)) return { error: `${quote(str.value)} cannot be used`, offset: j };
        path.push(str.value);
        j = str.end;
      } else {
        return { error: 'expected an index like [0] or a key like ["name"]', offset: j };
      }
      j = skipSpaces(s, j);
      if (s.charAt(j) !== "]") return { error: 'missing "]"', offset: j };
      i = j + 1;
    } else {
      break;
    }
  }
  if (FORBIDDEN.has(rootName)) return { error: `${quote(rootName)} cannot be used`, offset: start };
  return { root: rootName, path, end: i };
}

function readQuoted(
  s: string,
  start: number,
): { value: string; end: number } | { error: string; offset: number } {
  const q = s.charAt(start);
  let value = "";
  let i = start + 1;
  while (i < s.length) {
    const c = s.charAt(i);
    if (c === q) return { value, end: i + 1 };
    if (c === "\\") {
      const next = s.charAt(i + 1);
      if (next !== q && next !== "\\") return { error: `unknown escape "\\${next}"`, offset: i };
      value += next;
      i += 2;
    } else {
      value += c;
      i += 1;
    }
  }
  return { error: "unterminated quoted key", offset: start };
}

function matchRun(
  s: string,
  start: number,
  first: (c: number) => boolean,
  rest: (c: number) => boolean,
): number {
  if (start >= s.length || !first(s.charCodeAt(start))) return 0;
  let i = start + 1;
  while (i < s.length && rest(s.charCodeAt(i))) i++;
  return i - start;
}

function isIdentStart(c: number): boolean {
  return (c >= 65 && c <= 90) || (c >= 97 && c <= 122) || c === 95;
}
function isIdentChar(c: number): boolean {
  return isIdentStart(c) || isDigit(c);
}
function isNameChar(c: number): boolean {
  return isIdentChar(c) || c === 45;
}
function isDigit(c: number): boolean {
  return c >= 48 && c <= 57;
}
function skipSpaces(s: string, i: number): number {
  while (i < s.length && (s.charAt(i) === " " || s.charAt(i) === "\t" || s.charAt(i) === "\n")) i++;
  return i;
}
function cut(text: string, max = 100): string {
  return text.length > max ? `${text.slice(0, max)}…` : text;
}
function exprText(s: string, start: number): string {
  const close = s.indexOf(CLOSE, start);
  return cut(close < 0 ? s.slice(start) : s.slice(start, close + CLOSE.length));
}

// ---------------------------------------------------------------------------------------------
// Evaluation

const cache = new Map<string, ParsedTemplate>();

function parseCached(s: string): ParsedTemplate {
  const hit = cache.get(s);
  if (hit !== undefined) return hit;
  const parsed = parseTemplate(s);
  if (s.length <= 4096) {
    if (cache.size >= 1000) cache.clear();
    cache.set(s, parsed);
  }
  return parsed;
}

/**
 * Evaluates every string in `value` (objects and lists are walked; keys are left alone) against
 * `scope`. Throws an {@link AgentctlError} with code `template` when an expression is malformed
 * or does not resolve.
 */
export function evaluateTemplate(value: unknown, scope: TemplateScope): EvaluateResult {
  const secrets = new Set<string>();
  const out = walk(value, scope, secrets);
  return { value: out, secrets: [...secrets] };
}

function walk(value: unknown, scope: TemplateScope, secrets: Set<string>): unknown {
  if (typeof value === "string") return evaluateString(value, scope, secrets);
  if (Array.isArray(value)) return value.map((v) => walk(v, scope, secrets));
  if (isPlainObject(value)) {
    // A plain loop: this runs once per call of a fan-out, so it should allocate only the result.
    const out: Record<string, unknown> = {};
    for (const k of Object.keys(value)) {
      const v = walk(value[k], scope, secrets);
      // A key named __proto__ stays an ordinary key (as Object.fromEntries would keep it).
      if (k === "__proto__")
        Object.defineProperty(out, k, { value: v, enumerable: true, writable: true, configurable: true });
      else out[k] = v;
    }
    return out;
  }
  return value;
}

/** Evaluates one string (see the module comment for the rules). */
export function evaluateString(s: string, scope: TemplateScope, secrets?: Set<string>): unknown {
  if (!s.includes(OPEN)) return s;
  const parsed = parseCached(s);
  const first = parsed.errors[0];
  if (first !== undefined) throw new AgentctlError("template", first.message);
  const only = parsed.parts[0];
  if (parsed.parts.length === 1 && only?.kind === "expression") {
    return resolveExpression(only.expression, scope, secrets);
  }
  let text = "";
  for (const part of parsed.parts) {
    text += part.kind === "text" ? part.text : toText(resolveExpression(part.expression, scope, secrets));
  }
  return text;
}

/** How a value is written when inserted into a longer string. */
export function toText(v: unknown): string {
  if (typeof v === "string") return v;
  if (v === null) return "null";
  if (typeof v === "object") return JSON.stringify(v);
  return String(v);
}

/** A variable of `env`, or undefined when it is not set (an empty value is set). */
export function envValue(
  env: Readonly<Record<string, string | undefined>>,
  name: string,
): string | undefined {
  const v = Object.hasOwn(env, name) ? env[name] : undefined;
  return typeof v === "string" ? v : undefined;
}

/** The value an expression names in `scope`; throws AgentctlError `template` when there is none. */
export function resolveExpression(expr: Expression, scope: TemplateScope, secrets?: Set<string>): unknown {
  const fail = (why: string): never => {
    throw new AgentctlError("template", `cannot resolve ${expr.text}: ${why}`);
  };
  let current: unknown;
  let path = expr.path;
  switch (expr.root) {
    case "env": {
      const name = path[0];
      if (path.length !== 1 || typeof name !== "string") return fail("use env.NAME");
      const v = scope.env === undefined ? undefined : envValue(scope.env, name);
      if (v === undefined) return fail(`environment variable ${name} is not set`);
      if (v !== "") secrets?.add(v);
      return v;
    }
    case "item":
    case "index":
      if (!Object.hasOwn(scope, expr.root)) return fail(`${expr.root} is only defined in a for_each task`);
      current = scope[expr.root];
      break;
    case "tasks": {
      const id = path[0];
      const tasks = scope.tasks;
      if (typeof id !== "string") return fail("use tasks.ID.output or tasks.ID.outputs");
      if (tasks === undefined || !Object.hasOwn(tasks, id) || tasks[id] === undefined) {
        return fail(`task ${quote(id)} has no output (it has not run or did not succeed)`);
      }
      current = tasks[id];
      path = path.slice(1);
      return walkPath(current, path, formatPath("tasks", [id]), fail);
    }
    default:
      current = scope[expr.root];
      if (current === undefined) return fail(`${expr.root} is not available here`);
  }
  return walkPath(current, path, expr.root, fail);
}

function walkPath(
  start: unknown,
  path: readonly PathSegment[],
  rootText: string,
  fail: (why: string) => never,
): unknown {
  let current = start;
  let where = rootText;
  for (const seg of path) {
    if (Array.isArray(current)) {
      const index = typeof seg === "number" ? seg : /^[0-9]{1,15}$/.test(seg) ? Number(seg) : Number.NaN;
      if (!Number.isInteger(index)) return fail(`${where} is a list; use an index like ${where}[0]`);
      if (index >= current.length) {
        return fail(`${where} has no item [${index}] (it has ${current.length})`);
      }
      current = current[index];
    } else if (isPlainObject(current)) {
      const key = String(seg);
      if (!Object.hasOwn(current, key)) return fail(`${where} has no key ${quote(key)}`);
      current = current[key];
    } else {
      return fail(`${where} is ${kindOf(current)}, not a mapping or a list`);
    }
    where = formatPath(where, [seg]);
  }
  if (current === undefined) return fail(`${where} has no value`);
  return current;
}

function kindOf(v: unknown): string {
  if (v === null) return "null";
  if (v === undefined) return "undefined";
  if (typeof v === "string") return "a string";
  if (typeof v === "number") return "a number";
  if (typeof v === "boolean") return "a boolean";
  return typeof v;
}

function isPlainObject(v: unknown): v is Record<string, unknown> {
  return typeof v === "object" && v !== null && !Array.isArray(v);
}

// ---------------------------------------------------------------------------------------------
// Static analysis

export interface TemplateSite {
  /** Where the string is inside the walked value. */
  at: JsonPath;
  parsed: ParsedTemplate;
}

/** Every string holding `${{` inside `value`, parsed, with its location. */
export function findExpressions(value: unknown, at: JsonPath = []): TemplateSite[] {
  return findStrings(value, at, (v) => v.includes(OPEN)).map((s) => ({
    at: s.at,
    parsed: parseCached(s.text),
  }));
}

/** Every string inside `value` that `keep` accepts, with its location. */
export function findStrings(
  value: unknown,
  at: JsonPath,
  keep: (text: string) => boolean,
): { at: JsonPath; text: string }[] {
  const sites: { at: JsonPath; text: string }[] = [];
  // One path, pushed and popped, copied only where a site is found: a for_each of 20,000
  // literal items would otherwise allocate 20,000 paths per walk.
  const path = [...at];
  const visit = (v: unknown): void => {
    if (typeof v === "string") {
      if (keep(v)) sites.push({ at: [...path], text: v });
    } else if (Array.isArray(v)) {
      for (let i = 0; i < v.length; i++) {
        path.push(i);
        visit(v[i]);
        path.pop();
      }
    } else if (isPlainObject(v)) {
      for (const k of Object.keys(v)) {
        path.push(k);
        visit(v[k]);
        path.pop();
      }
    }
  };
  visit(value);
  return sites;
}

/** The ids of the tasks that `value` (an input, a for_each) refers to as `tasks.ID`, in order of appearance. */
export function referencedTasks(value: unknown): string[] {
  const ids = new Set<string>();
  for (const site of findExpressions(value)) {
    for (const part of site.parsed.parts) {
      if (part.kind !== "expression" || part.expression.root !== "tasks") continue;
      const id = part.expression.path[0];
      if (typeof id === "string") ids.add(id);
    }
  }
  return [...ids];
}
