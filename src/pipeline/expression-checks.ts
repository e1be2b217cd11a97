// biome-ignore-all lint/suspicious/noTemplateCurlyInString: ${{ }} is the pipeline expression syntax
/**
 * What the pipeline's `${{ }}` expressions may read where they are written (vars, env, run, item,
 * index, the outputs of tasks this one depends on), and the input fields whose types are known
 * before the run.
 */
import { type Checker, isObject, pathText } from "./checker.js";
import { parseDuration } from "./duration.js";
import { OUTPUT_FIELDS } from "./expect.js";
import {
  type Expression,
  envValue,
  evaluateString,
  findExpressions,
  findStrings,
  type TemplateSite,
} from "./expressions.js";
import { quote, showValue } from "./text.js";
import type { PipelineMode } from "./types.js";
import type { JsonPath } from "./validate-schema.js";
import type { YamlSource } from "./yaml-source.js";

/** A task of the pipeline being checked, as far as the checks of its references need it. */
export interface TaskInfo {
  index: number;
  id: string;
  raw: Record<string, unknown>;
  needs: string[];
  forEach: boolean;
}

/** Where a set of expressions is written: what they may refer to from there. */
export interface RefContext {
  check: Checker;
  vars: Record<string, unknown>;
  mode: PipelineMode;
  /** The task the expressions belong to (undefined for a duplicate). */
  self: TaskInfo | undefined;
  byId: Map<string, TaskInfo>;
  ids: string[];
  /** Whether a task (transitively) depends on another. */
  dependsOn: (task: TaskInfo, on: TaskInfo) => boolean;
  /** `item` and `index` are defined (the input of a for_each task). */
  itemAllowed: boolean;
  /** Collects the names of the vars expressions read (to tell an unused `--var`). */
  varsRead: Set<string>;
  /** The run's environment, when known (`run`, not `validate`): unset variables are problems. */
  env: Readonly<Record<string, string | undefined>> | undefined;
}

export function checkSites(ctx: RefContext, sites: TemplateSite[]): void {
  for (const site of sites) {
    for (const e of site.parsed.errors) ctx.check.errorInString(site.at, e.offset, e.message);
    for (const part of site.parsed.parts) {
      if (part.kind === "expression") {
        const problem = referenceProblem(ctx, part.expression);
        if (problem !== undefined) ctx.check.errorInString(site.at, part.expression.start, problem);
      }
    }
  }
}

/** An output's fields are the AgentOutput's: `output.reslt` is a typo the run would only find late. */
function outputFieldProblem(
  ctx: RefContext,
  field: string | number | undefined,
  text: string,
): string | undefined {
  if (field === undefined || (OUTPUT_FIELDS as readonly unknown[]).includes(field)) return undefined;
  const hint = typeof field === "string" ? ctx.check.hint(field, OUTPUT_FIELDS) : "";
  return `an output has no field ${quote(String(field))} in ${text}${hint || ` (an AgentOutput has ${OUTPUT_FIELDS.join(", ")})`}`;
}

function referenceProblem(ctx: RefContext, expr: Expression): string | undefined {
  const { path, text } = expr;
  switch (expr.root) {
    case "vars": {
      const name = path[0];
      if (name === undefined) return undefined;
      ctx.varsRead.add(String(name));
      if (!Object.hasOwn(ctx.vars, String(name))) {
        const hint = ctx.check.hint(String(name), Object.keys(ctx.vars));
        return `unknown var ${quote(String(name))} in ${text}${hint || " (define it under vars: or pass --var NAME=VALUE)"}`;
      }
      try {
        evaluateString(text, { vars: ctx.vars });
      } catch (err) {
        return err instanceof Error ? err.message : String(err);
      }
      return undefined;
    }
    case "env": {
      const name = path[0];
      if (path.length !== 1 || typeof name !== "string") return `use ${"${{ env.NAME }}"} (got ${text})`;
      return ctx.env !== undefined && envValue(ctx.env, name) === undefined
        ? `environment variable ${name} is not set`
        : undefined;
    }
    case "run":
      return path.length === 1 && path[0] === "id" ? undefined : `only run.id is defined (got ${text})`;
    case "item":
      return ctx.itemAllowed ? undefined : `item is only defined in the input of a for_each task (${text})`;
    case "index":
      if (!ctx.itemAllowed) return `index is only defined in the input of a for_each task (${text})`;
      return path.length === 0 ? undefined : `index is a number: it has no fields (${text})`;
    case "tasks": {
      const id = path[0];
      if (typeof id !== "string") return `expected tasks.ID.output or tasks.ID.outputs (got ${text})`;
      const target = ctx.byId.get(id);
      if (target === undefined) return `unknown task ${quote(id)} in ${text}${ctx.check.hint(id, ctx.ids)}`;
      if (ctx.self !== undefined && id === ctx.self.id) return `a task cannot read its own output (${text})`;
      if (ctx.self !== undefined && !ctx.dependsOn(ctx.self, target)) {
        return ctx.mode === "sequential"
          ? `${text} reads task ${quote(id)}, which runs after this one`
          : `${text} reads task ${quote(id)}, which this task does not depend on: add it to needs`;
      }
      const field = path[1];
      if (field === undefined) return `expected tasks.${id}.output or tasks.${id}.outputs (got ${text})`;
      if (field === "outputs") {
        if (!target.forEach)
          return `task ${quote(id)} has no outputs: it is not a for_each task (use tasks.${id}.output) in ${text}`;
        return typeof path[2] === "number" ? outputFieldProblem(ctx, path[3], text) : undefined;
      }
      if (field === "output") {
        return target.forEach
          ? `task ${quote(id)} is a for_each task: use tasks.${id}.outputs (the list of its outputs) in ${text}`
          : outputFieldProblem(ctx, path[2], text);
      }
      return `expected tasks.${id}.output or tasks.${id}.outputs (got ${text})`;
    }
    default:
      return undefined;
  }
}

/** The value of a string whose expressions all read `vars` (known before the run). */
export function staticValue(
  s: string,
  vars: Record<string, unknown>,
): { known: true; value: unknown } | { known: false } {
  const sites = findExpressions(s);
  const site = sites[0];
  if (site === undefined) return { known: true, value: s };
  if (site.parsed.errors.length > 0) return { known: false };
  for (const part of site.parsed.parts) {
    if (part.kind === "expression" && part.expression.root !== "vars") return { known: false };
  }
  try {
    return { known: true, value: evaluateString(s, { vars }) };
  } catch {
    return { known: false };
  }
}

const INTEGER_OPTIONS = ["max_tokens", "max_tool_calls", "max_history_length"];
const BOOLEAN_OPTIONS = ["enable_tools", "enable_memory", "load_history", "save_to_memory"];

/**
 * Types of input fields that are known before the run (literals, and expressions reading only
 * `vars`): the same conversions the run makes, reported now rather than failing the task.
 */
export function checkInputTypes(
  check: Checker,
  at: JsonPath,
  input: Record<string, unknown>,
  vars: Record<string, unknown>,
) {
  const known = (v: unknown): { known: true; value: unknown } | { known: false } =>
    typeof v === "string" && v.includes("${{") ? staticValue(v, vars) : { known: false };
  const report = (path: JsonPath, raw: unknown, value: unknown, what: string) => {
    check.error(path, `${pathText(path)}: ${quote(String(raw))} gives ${showValue(value)}, not ${what}`);
  };
  for (const field of ["task", "instruction", "session_id"]) {
    const k = known(input[field]);
    if (k.known && !["string", "number", "boolean"].includes(typeof k.value)) {
      report([...at, field], input[field], k.value, "a string");
    }
  }
  const context = known(input.context);
  if (context.known && !isObject(context.value) && context.value !== null) {
    report([...at, "context"], input.context, context.value, "a mapping");
  }
  const optionsKnown = known(input.options);
  if (optionsKnown.known && !isObject(optionsKnown.value) && optionsKnown.value !== null) {
    report([...at, "options"], input.options, optionsKnown.value, "a mapping");
  }
  const options = input.options;
  if (!isObject(options)) return;
  const o = [...at, "options"];
  for (const name of INTEGER_OPTIONS) {
    const k = known(options[name]);
    if (k.known && !isIntegerLike(k.value)) report([...o, name], options[name], k.value, "an integer");
  }
  for (const name of BOOLEAN_OPTIONS) {
    const k = known(options[name]);
    if (k.known && !isBooleanLike(k.value)) report([...o, name], options[name], k.value, "true or false");
  }
  const temperature = known(options.temperature);
  if (temperature.known && !isNumberLike(temperature.value)) {
    report([...o, "temperature"], options.temperature, temperature.value, "a number");
  }
  const tools = known(options.allowed_tools);
  if (tools.known && !Array.isArray(tools.value)) {
    report([...o, "allowed_tools"], options.allowed_tools, tools.value, "a list");
  }
  const timeout = options.timeout;
  const t = known(timeout);
  if (t.known) {
    if (parseDuration(t.value) === undefined)
      report([...o, "timeout"], timeout, t.value, 'a duration like "30s"');
  } else {
    check.duration([...o, "timeout"], timeout, false);
  }
}

function isIntegerLike(v: unknown): boolean {
  if (typeof v === "number") return Number.isSafeInteger(v);
  return typeof v === "string" && /^-?\d{1,15}$/.test(v.trim());
}
function isBooleanLike(v: unknown): boolean {
  return typeof v === "boolean" || v === "true" || v === "false";
}
function isNumberLike(v: unknown): boolean {
  if (typeof v === "number") return Number.isFinite(v);
  return typeof v === "string" && v.trim() !== "" && Number.isFinite(Number(v));
}

/** `{{ vars.x }}` and the like, reading one of `roots`: an expression without its `$`, sent as text. */
const dollarless = (roots: string) => new RegExp(`(?:^|[^$])(\\{\\{\\s*(?:${roots})\\b[^{}]*\\}\\})`);
const DOLLARLESS = dollarless("vars|env|tasks|run");
/** In a `for_each` task, where `item` and `index` are expressions too. */
const DOLLARLESS_ITEM = dollarless("item|index|vars|env|tasks|run");

/** Warns of what looks like an expression written without its `$` (it would be sent as text). */
export function warnDollarless(src: YamlSource, value: unknown, at: JsonPath, forEach: boolean): void {
  const pattern = forEach ? DOLLARLESS_ITEM : DOLLARLESS;
  for (const site of findStrings(value, at, (v) => v.includes("{{") && pattern.test(v)).slice(0, 20)) {
    const written = pattern.exec(site.text)![1]!;
    src.warning(site.at, `${quote(written)} is sent as text: an expression is written $${written}`);
  }
}

/** Expressions where nothing evaluates them are kept as written: worth a warning. */
export function warnUnevaluated(src: YamlSource, value: unknown, at: JsonPath): void {
  for (const site of findExpressions(value, at).slice(0, 20)) {
    src.warning(site.at, "expressions are not evaluated here: the text is used as written");
  }
}
