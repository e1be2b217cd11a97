/** Services (SPEC §5): a services file, or the `services:` of a pipeline, checked and typed. */
import { dirname, isAbsolute, join } from "node:path";
import { type Checker, isObject, nullProto, readSource, setIf, startChecking } from "./checker.js";
import { type Collector, collectProblems } from "./diagnostics.js";
import { parseDuration } from "./duration.js";
import { envValue, findExpressions } from "./expressions.js";
import type { LoadOptions } from "./loader.js";
import { servicesFileSchema } from "./schema.js";
import { quote } from "./text.js";
import type {
  CircuitBreakerSettings,
  InstanceConfig,
  LoadBalancing,
  ServiceConfig,
  ServicesConfig,
  ServicesLoadResult,
} from "./types.js";
import type { JsonPath } from "./validate-schema.js";

export interface ServicesOptions {
  /** Instances come from a registry: services may give settings only. */
  instancesElsewhere?: boolean;
  /**
   * The environment the run will read (`run` passes its own; `validate` none, since CI may
   * validate without the secrets): a variable read but not set there is a problem, reported
   * before any call.
   */
  env?: Readonly<Record<string, string | undefined>>;
}

/** Reads, validates and types a services file. Never throws. */
export function loadServices(path: string, options: ServicesOptions = {}): ServicesLoadResult {
  const read = readSource(path);
  if ("diagnostic" in read) return { diagnostics: [read.diagnostic], warnings: [] };
  return parseServices(read.text, path, options);
}

/** Validates and types services file text. Never throws. */
export function parseServices(text: string, file: string, options: ServicesOptions = {}): ServicesLoadResult {
  const { value, ...problems } = collectProblems(file, (out) => checkServicesFile(text, file, out, options));
  return value === undefined ? problems : { services: value, ...problems };
}

export interface PipelineServices {
  config: ServicesConfig;
  file?: string;
  /** Whether tasks can be checked against them. */
  known: boolean;
}

export function resolvePipelineServices(
  check: Checker,
  doc: Record<string, unknown>,
  file: string,
  options: Pick<LoadOptions, "services" | "externalServices" | "servicesRequired" | "env">,
  out: Collector,
): PipelineServices {
  const empty = nullProto<ServiceConfig>({});
  const external = options.externalServices === true;
  const servicesOptions: ServicesOptions = { instancesElsewhere: external, env: options.env };
  const fromFile = (path: string, onUnreadable?: (message: string) => void): PipelineServices => {
    const read = readSource(path);
    if ("diagnostic" in read) {
      if (onUnreadable) onUnreadable(read.diagnostic.message);
      else out.diagnostics.push(read.diagnostic);
      return { config: empty, file: path, known: false };
    }
    const loaded = parseServices(read.text, path, servicesOptions);
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
    return { config: buildServices(check, ["services"], value, servicesOptions), known: !external };
  // No services in the file: they come from --services or a registry (`--registry`), which the
  // caller knows about; task services cannot be checked here.
  if (!external) {
    const message =
      "no services: add services: (a mapping, or the path of a services file), or give --services FILE or --registry URL";
    if (options.servicesRequired) check.error([], message);
    else check.src.warning([], `${message}; the tasks' services and agents are not checked`);
  }
  return { config: empty, known: false };
}

function checkServicesFile(
  text: string,
  file: string,
  out: Collector,
  options: ServicesOptions,
): ServicesConfig | undefined {
  const started = startChecking(text, file, servicesFileSchema, "services: with one entry per service", out);
  if (!started) return undefined;
  const { src, doc, check } = started;
  const services = isObject(doc.services)
    ? buildServices(check, ["services"], doc.services, options)
    : undefined;
  out.take(src);
  return out.diagnostics.length === 0 ? services : undefined;
}

/** Checks a services mapping (schema-validated already) and builds its typed form. */
function buildServices(
  check: Checker,
  at: JsonPath,
  value: Record<string, unknown>,
  options: ServicesOptions,
): ServicesConfig {
  const instancesElsewhere = options.instancesElsewhere === true;
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
            } else if (options.env !== undefined && envValue(options.env, String(e.path[0])) === undefined) {
              check.errorInString(path, e.start, `environment variable ${e.path[0]} is not set`);
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

/** What is wrong with an instance endpoint, if anything: an http(s) base URL is expected. */
export function endpointProblem(endpoint: string): string | undefined {
  // `host:port` without a scheme is the usual slip: say what was meant.
  const hint = /^[\w.-]+:\d+(\/|$)/.test(endpoint) ? ` (did you mean "http://${endpoint}"?)` : "";
  let url: URL;
  try {
    url = new URL(endpoint);
  } catch {
    return `invalid endpoint ${quote(endpoint)}: not a URL${hint}`;
  }
  if (url.protocol !== "http:" && url.protocol !== "https:") {
    return `invalid endpoint ${quote(endpoint)}: expected http:// or https://${hint}`;
  }
  if (url.search !== "" || url.hash !== "") {
    return `invalid endpoint ${quote(endpoint)}: a base URL cannot have a query or a fragment`;
  }
  return undefined;
}

export function checkCircuitBreaker(check: Checker, at: JsonPath, value: unknown): void {
  if (isObject(value)) check.duration([...at, "open_for"], value.open_for, true);
}

export function toCircuitBreaker(value: unknown): CircuitBreakerSettings | undefined {
  if (!isObject(value)) return undefined;
  const out: CircuitBreakerSettings = {};
  setIf(out, "maxFailures", value.max_failures);
  setIf(out, "openForMs", parseDuration(value.open_for));
  return out;
}
