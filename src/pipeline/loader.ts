// biome-ignore-all lint/suspicious/noTemplateCurlyInString: ${{ }} is the pipeline expression syntax
/**
 * Pipeline and services files → validated, typed configuration. Every problem is reported at
 * once as a {@link Diagnostic} (`file:line:column: message`); nothing here throws, whatever the
 * files hold.
 *
 * Order of checks: YAML syntax (positions from the parser), then the JSON Schema of `schema.ts`
 * (positions mapped from JSON paths back to YAML nodes), then what a schema cannot say: unknown or
 * duplicate task ids, cycles, expressions, services and agents, `expect` paths, durations.
 */
import { readFileSync, statSync } from "node:fs";
import { dirname, isAbsolute, join } from "node:path";
import { durationProblem, parseDuration } from "./duration.js";
import { expectationProblems } from "./expect.js";
import {
  type Expression,
  evaluateString,
  findExpressions,
  formatPath,
  type TemplateSite,
} from "./expressions.js";
import { findCycle } from "./planner.js";
import { pipelineSchema, schemaPhrases, servicesFileSchema } from "./schema.js";
import { didYouMean, quote, showValue } from "./text.js";
import type {
  CircuitBreakerSettings,
  Diagnostic,
  InstanceConfig,
  LoadBalancing,
  PipelineConfig,
  PipelineLoadResult,
  PipelineMode,
  ServiceConfig,
  ServicesConfig,
  ServicesLoadResult,
  TaskConfig,
} from "./types.js";
import { type JsonPath, type JsonSchema, validateSchema } from "./validate-schema.js";
import { MAX_FILE_BYTES, parseYaml, type YamlSource } from "./yaml-source.js";

export interface LoadOptions {
  /** `--var NAME=VALUE` values; they override the file's `vars`. */
  vars?: Record<string, string>;
  /**
   * A services file given on the command line (`--services`), relative to the current directory.
   * It replaces the pipeline's own `services`.
   */
  services?: string;
  /**
   * Instances come from a registry (`--registry`): task services and agents are not checked
   * against the services of the files (which may still be read, for their headers).
   *
   * A pipeline with no `services:` and no `services` option is valid either way: its services
   * come from elsewhere at run time, so they are not checked.
   */
  externalServices?: boolean;
}

export interface ServicesOptions {
  /** Instances come from a registry: services may give settings only. */
  instancesElsewhere?: boolean;
}

/** At most this many diagnostics are returned (the last one says how many were left out). */
export const MAX_DIAGNOSTICS = 1000;

/** `file:line:column: message` (`file: message` for a problem with the whole file). */
export function formatDiagnostic(d: Diagnostic, severity: "error" | "warning" = "error"): string {
  const where = d.line > 0 ? `${d.file}:${d.line}:${d.column}` : d.file;
  return `${where}: ${severity === "warning" ? "warning: " : ""}${d.message}`;
}

/** Reads, validates and types a pipeline file (and the services file it names). Never throws. */
export function loadPipeline(path: string, options: LoadOptions = {}): PipelineLoadResult {
  const read = readSource(path);
  if ("diagnostic" in read) return { diagnostics: [read.diagnostic], warnings: [] };
  return parsePipeline(read.text, path, options);
}

/** Reads, validates and types a services file. Never throws. */
export function loadServices(path: string): ServicesLoadResult {
  const read = readSource(path);
  if ("diagnostic" in read) return { diagnostics: [read.diagnostic], warnings: [] };
  return parseServices(read.text, path);
}

/**
 * Validates and types pipeline text as if read from `file` (a services path in it is relative to
 * `file`'s directory). Never throws.
 */
export function parsePipeline(text: string, file: string, options: LoadOptions = {}): PipelineLoadResult {
  const out = new Collector();
  try {
    const pipeline = checkPipeline(text, file, options, out);
    const diagnostics = out.finish();
    return diagnostics.length === 0 && pipeline !== undefined
      ? { pipeline, diagnostics, warnings: out.warnings }
      : { diagnostics, warnings: out.warnings };
  } catch (err) {
    out.diagnostics.push(internalError(file, err));
    return { diagnostics: out.finish(), warnings: out.warnings };
  }
}

/** Validates and types services file text. Never throws. */
export function parseServices(text: string, file: string, options: ServicesOptions = {}): ServicesLoadResult {
  const out = new Collector();
  try {
    const services = checkServicesFile(text, file, out, options.instancesElsewhere === true);
    const diagnostics = out.finish();
    return diagnostics.length === 0 && services !== undefined
      ? { services, diagnostics, warnings: out.warnings }
      : { diagnostics, warnings: out.warnings };
  } catch (err) {
    out.diagnostics.push(internalError(file, err));
    return { diagnostics: out.finish(), warnings: out.warnings };
  }
}

// ---------------------------------------------------------------------------------------------

class Collector {
  readonly diagnostics: Diagnostic[] = [];
  readonly warnings: Diagnostic[] = [];

  take(src: YamlSource): void {
    this.diagnostics.push(...src.diagnostics);
    this.warnings.push(...src.warnings);
    src.diagnostics.length = 0;
    src.warnings.length = 0;
  }

  finish(): Diagnostic[] {
    const sorted = sortDiagnostics(this.diagnostics);
    const w = sortDiagnostics(this.warnings);
    this.warnings.splice(0, this.warnings.length, ...w.slice(0, MAX_DIAGNOSTICS));
    if (sorted.length <= MAX_DIAGNOSTICS) return sorted;
    const shown = sorted.slice(0, MAX_DIAGNOSTICS - 1);
    const last = sorted[MAX_DIAGNOSTICS - 1] as Diagnostic;
    shown.push({ ...last, message: `${sorted.length - shown.length} more problems not shown` });
    return shown;
  }
}

function sortDiagnostics(list: readonly Diagnostic[]): Diagnostic[] {
  const fileOrder = new Map<string, number>();
  for (const d of list) if (!fileOrder.has(d.file)) fileOrder.set(d.file, fileOrder.size);
  const seen = new Set<string>();
  return [...list]
    .sort(
      (a, b) =>
        (fileOrder.get(a.file) ?? 0) - (fileOrder.get(b.file) ?? 0) || a.line - b.line || a.column - b.column,
    )
    .filter((d) => {
      const key = `${d.file}\0${d.line}\0${d.column}\0${d.message}`;
      if (seen.has(key)) return false;
      seen.add(key);
      return true;
    });
}

function internalError(file: string, err: unknown): Diagnostic {
  const message = err instanceof Error ? err.message : String(err);
  return { file, line: 0, column: 0, message: `internal error while validating: ${message}` };
}

function readSource(path: string): { text: string } | { diagnostic: Diagnostic } {
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

function pathText(path: JsonPath): string {
  const [first, ...rest] = path;
  return first === undefined ? "" : formatPath(String(first), rest);
}

// ---------------------------------------------------------------------------------------------
// Pipelines

interface TaskInfo {
  index: number;
  id: string;
  raw: Record<string, unknown>;
  needs: string[];
  forEach: boolean;
}

/** Parses and schema-checks a file; undefined (problems in `out`) when it is not a mapping. */
function startChecking(
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

function checkPipeline(
  text: string,
  file: string,
  options: LoadOptions,
  out: Collector,
): PipelineConfig | undefined {
  const started = startChecking(text, file, pipelineSchema, "a pipeline (name, tasks, …)", out);
  if (!started) return undefined;
  const { src, doc, check } = started;

  const mode: PipelineMode = doc.mode === "sequential" ? "sequential" : "parallel";
  const vars = nullProto(isObject(doc.vars) ? doc.vars : {});
  for (const [k, v] of Object.entries(options.vars ?? {})) vars[k] = v;

  warnUnevaluated(src, doc.vars, ["vars"]);
  check.duration(["timeout"], doc.timeout, true);
  checkCircuitBreaker(check, ["circuit_breaker"], doc.circuit_breaker);

  // Tasks: ids, needs, cycles.
  const rawTasks = Array.isArray(doc.tasks) ? doc.tasks : [];
  const tasks: TaskInfo[] = [];
  const firstIndex = new Map<string, number>();
  rawTasks.forEach((raw, index) => {
    if (!isObject(raw) || typeof raw.id !== "string") return;
    const id = raw.id;
    const first = firstIndex.get(id);
    if (first !== undefined) {
      check.error(
        ["tasks", index, "id"],
        `duplicate task id ${quote(id)} (first defined at line ${src.position(["tasks", first, "id"]).line})`,
      );
      return;
    }
    firstIndex.set(id, index);
    const needs = Array.isArray(raw.needs) ? raw.needs.filter((n): n is string => typeof n === "string") : [];
    tasks.push({ index, id, raw, needs, forEach: raw.for_each !== undefined });
  });
  const byId = new Map(tasks.map((t) => [t.id, t]));
  const ids = [...byId.keys()];

  for (const task of tasks) {
    const needs = task.raw.needs;
    if (!Array.isArray(needs)) continue;
    const seen = new Set<string>();
    needs.forEach((need, j) => {
      if (typeof need !== "string") return;
      const at = ["tasks", task.index, "needs", j];
      const target = byId.get(need);
      if (need === task.id) check.error(at, `task ${quote(task.id)} cannot need itself`);
      else if (target === undefined)
        check.error(at, `unknown task ${quote(need)} in needs${check.hint(need, ids)}`);
      else if (mode === "sequential" && target.index > task.index) {
        check.error(
          at,
          `in sequential mode tasks run in file order: ${quote(task.id)} cannot need ${quote(need)}, which comes after it`,
        );
      }
      if (seen.has(need)) src.warning(at, `${quote(need)} is listed twice in needs`);
      seen.add(need);
    });
  }
  if (mode === "parallel") reportCycles(check, tasks, byId);

  // Which tasks each task may read through `tasks.ID`: its (transitive) dependencies.
  const dependsOn = dependencyCheck(mode, byId, src);

  // Services.
  const services = resolvePipelineServices(check, doc, file, options, out);

  // Per task.
  rawTasks.forEach((raw, index) => {
    if (!isObject(raw)) return;
    const info = typeof raw.id === "string" ? byId.get(raw.id) : undefined;
    const self = info?.index === index ? info : undefined;
    const base: JsonPath = ["tasks", index];
    const refCtx: RefContext = {
      check,
      vars,
      mode,
      self,
      byId,
      ids,
      dependsOn,
      itemAllowed: false,
    };

    const badAgent = raw.agent === "." || raw.agent === "..";
    if (badAgent) check.error([...base, "agent"], `invalid agent name ${quote(String(raw.agent))}`);
    check.duration([...base, "timeout"], raw.timeout, true);
    check.duration([...base, "poll_interval"], raw.poll_interval, true);

    // for_each: a list, or exactly one expression.
    const forEach = raw.for_each;
    if (typeof forEach === "string") {
      const sites = findExpressions(forEach, [...base, "for_each"]);
      const site = sites[0];
      let shapeOk = true;
      if (site !== undefined && site.parsed.errors.length === 0) {
        const only = site.parsed.parts[0];
        if (site.parsed.parts.length !== 1 || only?.kind !== "expression") {
          shapeOk = false;
          check.error(
            [...base, "for_each"],
            "for_each must be a list or a single ${{ }} expression (text around an expression makes a string, not a list)",
          );
        }
      }
      checkSites(refCtx, sites);
      const known = staticValue(forEach, vars);
      if (shapeOk && known.known && !Array.isArray(known.value)) {
        check.error(
          [...base, "for_each"],
          `for_each must give a list; ${quote(forEach)} is ${showValue(known.value)}`,
        );
      }
    } else if (Array.isArray(forEach)) {
      checkSites(refCtx, findExpressions(forEach, [...base, "for_each"]));
    }

    if (raw.input !== undefined) {
      checkSites(
        { ...refCtx, itemAllowed: forEach !== undefined },
        findExpressions(raw.input, [...base, "input"]),
      );
      if (isObject(raw.input)) checkInputTypes(check, [...base, "input"], raw.input, vars);
    }

    if (isObject(raw.expect)) {
      for (const p of expectationProblems(raw.expect))
        check.error([...base, "expect", p.key], p.message, p.atKey);
      warnUnevaluated(src, raw.expect, [...base, "expect"]);
    }
    for (const key of ["service", "agent"]) warnUnevaluated(src, raw[key], [...base, key]);
    if (raw.poll_interval !== undefined && raw.async !== true) {
      src.warning([...base, "poll_interval"], "poll_interval has no effect without async: true", true);
    }
    if (isObject(raw.input)) {
      const timestamp = raw.input.timestamp;
      if (
        typeof timestamp === "string" &&
        timestamp !== "" &&
        !timestamp.includes("${{") &&
        Number.isNaN(Date.parse(timestamp))
      ) {
        src.warning(
          [...base, "input", "timestamp"],
          `timestamp ${quote(timestamp)} is not an RFC 3339 time (like 2024-05-01T12:00:00Z); the time of the attempt is sent instead`,
        );
      }
    }

    // Service and agent, when the services are known.
    if (typeof raw.service === "string" && services.known) {
      const service = Object.hasOwn(services.config, raw.service) ? services.config[raw.service] : undefined;
      if (service === undefined) {
        const hint = check.hint(raw.service, Object.keys(services.config));
        check.error([...base, "service"], `unknown service ${quote(raw.service)}${hint}`);
      } else if (typeof raw.agent === "string" && !badAgent) {
        const lists = service.instances.map((i) => i.agents);
        if (lists.every((l) => l !== undefined) && !lists.some((l) => l?.includes(raw.agent as string))) {
          const all = [...new Set(lists.flat())];
          const served = all.length > 10 ? `${all.slice(0, 10).join(", ")}, …` : all.join(", ");
          check.error(
            [...base, "agent"],
            `no instance of service ${quote(raw.service)} serves agent ${quote(raw.agent)} (its instances serve: ${served})${check.hint(raw.agent, lists.flat() as string[])}`,
          );
        }
      }
    }
  });

  out.take(src);
  if (out.diagnostics.length > 0) return undefined;

  const config: PipelineConfig = {
    file,
    name: String(doc.name),
    mode,
    vars,
    services: services.config,
    tasks: rawTasks.filter(isObject).map(toTaskConfig),
    source: text,
  };
  if (services.file !== undefined) config.servicesFile = services.file;
  setIf(config, "concurrency", doc.concurrency);
  setIf(config, "timeoutMs", parseDuration(doc.timeout));
  setIf(config, "retries", doc.retries);
  setIf(config, "circuitBreaker", toCircuitBreaker(doc.circuit_breaker));
  setIf(config, "loadBalancing", doc.load_balancing as LoadBalancing | undefined);
  setIf(config, "maxResponseBytes", doc.max_response_bytes);
  return config;
}

/** Expressions where nothing evaluates them are kept as written: worth a warning. */
function warnUnevaluated(src: YamlSource, value: unknown, at: JsonPath): void {
  for (const site of findExpressions(value, at).slice(0, 20)) {
    src.warning(site.at, "expressions are not evaluated here: the text is used as written");
  }
}

function toTaskConfig(raw: Record<string, unknown>): TaskConfig {
  const task: TaskConfig = {
    id: String(raw.id),
    service: String(raw.service),
    agent: String(raw.agent),
    needs: Array.isArray(raw.needs) ? [...new Set(raw.needs.map(String))] : [],
    input: raw.input ?? {},
    async: raw.async === true,
  };
  setIf(task, "forEach", raw.for_each);
  setIf(task, "pollIntervalMs", parseDuration(raw.poll_interval));
  setIf(task, "timeoutMs", parseDuration(raw.timeout));
  setIf(task, "retries", raw.retries);
  if (isObject(raw.expect)) task.expect = raw.expect;
  return task;
}

/** Work allowed for dependency searches in one file: huge graphs are checked up to this much. */
const DEPENDENCY_SEARCH_BUDGET = 2_000_000;

/**
 * `dependsOn(task, other)`: in sequential mode every earlier task; in parallel mode a search
 * through `needs`, bounded in total (past the budget, references are assumed fine and a
 * warning says the check was cut short).
 */
function dependencyCheck(
  mode: PipelineMode,
  byId: Map<string, TaskInfo>,
  src: YamlSource,
): (task: TaskInfo, on: TaskInfo) => boolean {
  if (mode === "sequential") return (task, on) => on.index < task.index;
  let budget = DEPENDENCY_SEARCH_BUDGET;
  let warned = false;
  return (task, on) => {
    if (task.needs.includes(on.id)) return true;
    const seen = new Set<string>([task.id]);
    const queue = [...task.needs];
    while (queue.length > 0) {
      if (--budget < 0) {
        if (!warned) src.warningAt(0, "the pipeline is too large to check every expression's dependencies");
        warned = true;
        return true;
      }
      const id = queue.pop() as string;
      if (id === on.id) return true;
      if (seen.has(id)) continue;
      seen.add(id);
      for (const n of byId.get(id)?.needs ?? []) if (!seen.has(n)) queue.push(n);
    }
    return false;
  };
}

function reportCycles(check: Checker, tasks: TaskInfo[], byId: Map<string, TaskInfo>): void {
  const remaining = new Set(tasks.map((t) => t.id));
  for (let round = 0; round < tasks.length; round++) {
    const cycle = findCycle([...remaining], (id) => byId.get(id)?.needs ?? []);
    if (cycle === undefined || cycle.length < 3) return; // self-needs are reported on their own
    const [first, second] = cycle;
    const task = byId.get(first as string) as TaskInfo;
    const needs = Array.isArray(task.raw.needs) ? task.raw.needs : [];
    check.error(
      ["tasks", task.index, "needs", needs.indexOf(second)],
      `dependency cycle in needs: ${cycle.join(" → ")}`,
    );
    for (const id of cycle) remaining.delete(id);
  }
}

// ---------------------------------------------------------------------------------------------
// Expressions

interface RefContext {
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
}

function checkSites(ctx: RefContext, sites: TemplateSite[]): void {
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

function referenceProblem(ctx: RefContext, expr: Expression): string | undefined {
  const { path, text } = expr;
  switch (expr.root) {
    case "vars": {
      const name = path[0];
      if (name === undefined) return undefined;
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
    case "env":
      return path.length === 1 && typeof path[0] === "string"
        ? undefined
        : `use ${"${{ env.NAME }}"} (got ${text})`;
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
        return target.forEach
          ? undefined
          : `task ${quote(id)} has no outputs: it is not a for_each task (use tasks.${id}.output) in ${text}`;
      }
      if (field === "output") {
        return target.forEach
          ? `task ${quote(id)} is a for_each task: use tasks.${id}.outputs (the list of its outputs) in ${text}`
          : undefined;
      }
      return `expected tasks.${id}.output or tasks.${id}.outputs (got ${text})`;
    }
    default:
      return undefined;
  }
}

/** The value of a string whose expressions all read `vars` (known before the run). */
function staticValue(
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
function checkInputTypes(
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

// ---------------------------------------------------------------------------------------------
// Services

interface PipelineServices {
  config: ServicesConfig;
  file?: string;
  /** Whether tasks can be checked against them. */
  known: boolean;
}

function resolvePipelineServices(
  check: Checker,
  doc: Record<string, unknown>,
  file: string,
  options: LoadOptions,
  out: Collector,
): PipelineServices {
  const empty = nullProto<ServiceConfig>({});
  const external = options.externalServices === true;
  const fromFile = (path: string, onUnreadable?: (message: string) => void): PipelineServices => {
    const read = readSource(path);
    if ("diagnostic" in read) {
      if (onUnreadable) onUnreadable(read.diagnostic.message);
      else out.diagnostics.push(read.diagnostic);
      return { config: empty, file: path, known: false };
    }
    const loaded = parseServices(read.text, path, { instancesElsewhere: external });
    out.diagnostics.push(...loaded.diagnostics);
    out.warnings.push(...loaded.warnings);
    return loaded.services === undefined
      ? { config: empty, file: path, known: false }
      : { config: loaded.services, file: path, known: !external };
  };

  if (options.services !== undefined) return fromFile(options.services);
  const value = doc.services;
  if (typeof value === "string" && value.length > 0) {
    const path = isAbsolute(value) ? value : join(dirname(file), value);
    return fromFile(path, (message) =>
      check.error(
        ["services"],
        `cannot read services file ${quote(value)}: ${message.replace(/^cannot read the file: /, "")}`,
      ),
    );
  }
  if (isObject(value))
    return { config: buildServices(check, ["services"], value, external), known: !external };
  // No services in the file: they come from --services or a registry (`--registry`), which the
  // caller knows about; task services cannot be checked here.
  return { config: empty, known: false };
}

function checkServicesFile(
  text: string,
  file: string,
  out: Collector,
  instancesElsewhere: boolean,
): ServicesConfig | undefined {
  const started = startChecking(text, file, servicesFileSchema, "services: with one entry per service", out);
  if (!started) return undefined;
  const { src, doc, check } = started;
  const services = isObject(doc.services)
    ? buildServices(check, ["services"], doc.services, instancesElsewhere)
    : undefined;
  out.take(src);
  return out.diagnostics.length === 0 ? services : undefined;
}

/** Checks a services mapping (schema-validated already) and builds its typed form. */
/** `instancesElsewhere`: with a registry, a service may give settings only (no `instances`). */
function buildServices(
  check: Checker,
  at: JsonPath,
  value: Record<string, unknown>,
  instancesElsewhere = false,
): ServicesConfig {
  const services = nullProto<ServiceConfig>({});
  const instanceIds = new Map<string, JsonPath>();
  for (const [name, raw] of Object.entries(value)) {
    if (!isObject(raw)) continue;
    const base = [...at, name];
    check.duration([...base, "timeout"], raw.timeout, true);
    checkCircuitBreaker(check, [...base, "circuit_breaker"], raw.circuit_breaker);

    const headers = nullProto<string>({});
    if (isObject(raw.headers)) {
      const lower = new Map<string, string>();
      for (const [header, v] of Object.entries(raw.headers)) {
        const path = [...base, "headers", header];
        const previous = lower.get(header.toLowerCase());
        if (previous !== undefined) {
          check.error(path, `header ${quote(header)} is given twice (also as ${quote(previous)})`, true);
        }
        lower.set(header.toLowerCase(), header);
        if (typeof v !== "string") continue;
        headers[header] = v;
        for (const site of findExpressions(v, path)) {
          for (const e of site.parsed.errors) check.error(path, e.message);
          for (const part of site.parsed.parts) {
            if (part.kind !== "expression") continue;
            const e = part.expression;
            if (e.root !== "env" || e.path.length !== 1) {
              check.error(path, `header values may only read env.NAME (got ${e.text})`);
            }
          }
        }
      }
    }

    const instances: InstanceConfig[] = [];
    if (raw.instances === undefined && !instancesElsewhere) {
      check.error(
        base,
        `service ${quote(name)} has no instances (add instances:, or give them with --registry)`,
      );
    }
    const rawInstances = Array.isArray(raw.instances) ? raw.instances : [];
    rawInstances.forEach((inst, n) => {
      if (!isObject(inst)) return;
      const path = [...base, "instances", n];
      const explicit = typeof inst.id === "string";
      const id = explicit ? (inst.id as string) : `${name}-${n + 1}`;
      const clash = instanceIds.get(id);
      if (clash !== undefined) {
        const where = check.src.position(clash).line;
        check.error(
          explicit ? [...path, "id"] : path,
          `duplicate instance id ${quote(id)} (also used at line ${where})${explicit ? "" : "; give this instance an id"}`,
        );
      } else {
        instanceIds.set(id, explicit ? [...path, "id"] : path);
      }
      const endpoint = inst.endpoint;
      if (typeof endpoint === "string" && endpoint !== "embedded") {
        const problem = endpointProblem(endpoint);
        if (problem !== undefined) check.error([...path, "endpoint"], problem);
      }
      let agents: string[] | undefined;
      if (Array.isArray(inst.agents)) {
        agents = inst.agents.filter((a): a is string => typeof a === "string");
        inst.agents.forEach((a, j) => {
          if (a === "." || a === "..") check.error([...path, "agents", j], `invalid agent name ${quote(a)}`);
        });
      }
      const instance: InstanceConfig = {
        id,
        endpoint: String(endpoint),
        metadata: isObject(inst.metadata) ? inst.metadata : {},
      };
      if (agents !== undefined) instance.agents = agents;
      instances.push(instance);
    });

    const service: ServiceConfig = { name, headers, instances };
    setIf(service, "loadBalancing", raw.load_balancing as LoadBalancing | undefined);
    setIf(service, "circuitBreaker", toCircuitBreaker(raw.circuit_breaker));
    setIf(service, "timeoutMs", parseDuration(raw.timeout));
    setIf(service, "maxResponseBytes", raw.max_response_bytes);
    services[name] = service;
  }
  return services;
}

function endpointProblem(endpoint: string): string | undefined {
  let url: URL;
  try {
    url = new URL(endpoint);
  } catch {
    return `invalid endpoint ${quote(endpoint)}: not a URL`;
  }
  if (url.protocol !== "http:" && url.protocol !== "https:") {
    return `invalid endpoint ${quote(endpoint)}: expected http:// or https://`;
  }
  if (url.search !== "" || url.hash !== "") {
    return `invalid endpoint ${quote(endpoint)}: a base URL cannot have a query or a fragment`;
  }
  return undefined;
}

function checkCircuitBreaker(check: Checker, at: JsonPath, value: unknown): void {
  if (isObject(value)) check.duration([...at, "open_for"], value.open_for, true);
}

function toCircuitBreaker(value: unknown): CircuitBreakerSettings | undefined {
  if (!isObject(value)) return undefined;
  const out: CircuitBreakerSettings = {};
  setIf(out, "maxFailures", value.max_failures);
  setIf(out, "openForMs", parseDuration(value.open_for));
  return out;
}

// ---------------------------------------------------------------------------------------------

/** Reports problems at JSON paths, at most one per path (the schema's comes first). */
class Checker {
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

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === "object" && v !== null && !Array.isArray(v);
}

/** A copy without prototype: any key (`__proto__` included) is an ordinary own property. */
function nullProto<T>(from: Record<string, T>): Record<string, T> {
  const out = Object.create(null) as Record<string, T>;
  for (const [k, v] of Object.entries(from)) out[k] = v;
  return out;
}

function setIf<T extends object, K extends keyof T>(
  target: T,
  key: K,
  value: T[K] | undefined | unknown,
): void {
  if (value !== undefined) target[key] = value as T[K];
}
