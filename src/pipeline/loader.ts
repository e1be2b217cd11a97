// biome-ignore-all lint/suspicious/noTemplateCurlyInString: ${{ }} is the pipeline expression syntax
/**
 * Pipeline and services files → validated, typed configuration. Every problem is reported at
 * once as a {@link Diagnostic} (`file:line:column: message`); nothing here throws, whatever the
 * files hold.
 *
 * Order of checks: YAML syntax (positions from the parser), then the JSON Schema of `schema.ts`
 * (positions mapped from JSON paths back to YAML nodes), then what a schema cannot say: unknown or
 * duplicate task ids, cycles, expressions, services and agents, `expect` paths, durations.
 *
 * The pipeline checks are here; services in `services-file.ts`, expressions in
 * `expression-checks.ts`, the shared machinery in `checker.ts` and `diagnostics.ts`.
 */
import { type Checker, isObject, nullProto, readSource, setIf, startChecking } from "./checker.js";
import { type Collector, collectProblems } from "./diagnostics.js";
import { parseDuration } from "./duration.js";
import { expectationProblems } from "./expect.js";
import {
  checkInputTypes,
  checkSites,
  type RefContext,
  staticValue,
  type TaskInfo,
  warnDollarless,
  warnUnevaluated,
} from "./expression-checks.js";
import { findExpressions } from "./expressions.js";
import { findCycle } from "./planner.js";
import { pipelineSchema } from "./schema.js";
import {
  checkCircuitBreaker,
  resolvePipelineServices,
  type ServicesOptions,
  toCircuitBreaker,
} from "./services-file.js";
import { quote, showValue } from "./text.js";
import type { LoadBalancing, PipelineConfig, PipelineLoadResult, PipelineMode, TaskConfig } from "./types.js";
import type { JsonPath } from "./validate-schema.js";
import type { YamlSource } from "./yaml-source.js";

export interface LoadOptions {
  /** `--var NAME=VALUE` values; they override the file's `vars`. */
  vars?: Record<string, string>;
  /**
   * The vars of the run being resumed, from its journal (file vars and `--var`s as they were):
   * they stand for the file's, so that a var given only by `--var` then is known now too.
   */
  resumedVars?: Record<string, unknown>;
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
  /**
   * The services are needed now (`run` without `--registry`): a pipeline with neither `services:`
   * nor the `services` option is a problem. Otherwise (`validate`) it only gets a warning.
   */
  servicesRequired?: boolean;
  /** The run's environment, for expressions as for headers: see {@link ServicesOptions.env}. */
  env?: ServicesOptions["env"];
}

/** Reads, validates and types a pipeline file (and the services file it names). Never throws. */
export function loadPipeline(path: string, options: LoadOptions = {}): PipelineLoadResult {
  const read = readSource(path);
  if ("diagnostic" in read) return { diagnostics: [read.diagnostic], warnings: [] };
  return parsePipeline(read.text, path, options);
}

/**
 * Validates and types pipeline text as if read from `file` (a services path in it is relative to
 * `file`'s directory). Never throws.
 */
export function parsePipeline(text: string, file: string, options: LoadOptions = {}): PipelineLoadResult {
  const { value, ...problems } = collectProblems(file, (out) => checkPipeline(text, file, options, out));
  return value === undefined ? problems : { pipeline: value, ...problems };
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
  Object.assign(vars, options.resumedVars);
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

  // Every task's needs, a duplicate's too: each problem is reported at once.
  rawTasks.forEach((raw, index) => {
    if (!isObject(raw) || !Array.isArray(raw.needs)) return;
    const self = typeof raw.id === "string" ? raw.id : undefined;
    const seen = new Set<string>();
    raw.needs.forEach((need, j) => {
      if (typeof need !== "string") return;
      const at = ["tasks", index, "needs", j];
      const target = byId.get(need);
      if (need === self) check.error(at, `task ${quote(need)} cannot need itself`);
      else if (target === undefined)
        check.error(at, `unknown task ${quote(need)} in needs${check.hint(need, ids)}`);
      else if (mode === "sequential" && target.index > index) {
        check.error(
          at,
          `in sequential mode tasks run in file order: ${self === undefined ? `task ${index + 1}` : quote(self)} cannot need ${quote(need)}, which comes after it`,
        );
      }
      if (seen.has(need)) src.warning(at, `${quote(need)} is listed twice in needs`);
      seen.add(need);
    });
  });
  if (mode === "parallel") reportCycles(check, tasks, byId);

  // Which tasks each task may read through `tasks.ID`: its (transitive) dependencies.
  const dependsOn = dependencyCheck(mode, byId, src);

  // Services.
  const services = resolvePipelineServices(check, doc, file, options, out);

  // Per task.
  const varsRead = new Set<string>();
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
      varsRead,
      env: options.env,
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
      warnDollarless(src, raw.input, [...base, "input"], forEach !== undefined);
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

  // A `--var` nothing reads is most likely a typo of one that is read.
  const declared = Object.keys(isObject(doc.vars) ? doc.vars : {});
  for (const name of Object.keys(options.vars ?? {})) {
    if (declared.includes(name) || varsRead.has(name)) continue;
    const hint = check.hint(name, [...declared, ...varsRead]);
    src.warningAt(
      0,
      `--var ${name} is not used: no var ${quote(name)} under vars:, and no expression reads it${hint}`,
    );
  }

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
