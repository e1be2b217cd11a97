/** Typed, validated configuration read from pipeline and services files (SPEC §5). Times are ms. */

export type PipelineMode = "parallel" | "sequential";
export type LoadBalancing = "round_robin" | "least_pending";

/**
 * One problem in a file. `line` and `column` are 1-based; both are 0 when the problem is about
 * the file as a whole (it cannot be read, it is too large).
 */
export interface Diagnostic {
  file: string;
  line: number;
  column: number;
  message: string;
}

export interface CircuitBreakerSettings {
  /** Consecutive failures that open the circuit. */
  maxFailures?: number;
  /** How long an open circuit stays open. */
  openForMs?: number;
}

export interface InstanceConfig {
  /** Unique across all services; `<service>-<n>` (n from 1) when the file gives none. */
  id: string;
  /** An http(s) base URL, or `embedded`. */
  endpoint: string;
  /** Agents the instance serves; absent = any agent. */
  agents?: string[];
  metadata: Record<string, unknown>;
}

export interface ServiceConfig {
  name: string;
  /** Header values as written: they may hold `${{ env.NAME }}`, and are secrets once resolved. */
  headers: Record<string, string>;
  loadBalancing?: LoadBalancing;
  circuitBreaker?: CircuitBreakerSettings;
  timeoutMs?: number;
  maxResponseBytes?: number;
  instances: InstanceConfig[];
}

/** Services by name (an object without prototype: any name is safe to look up). */
export type ServicesConfig = Record<string, ServiceConfig>;

export interface TaskConfig {
  id: string;
  service: string;
  agent: string;
  /** Explicit `needs`, as written (sequential mode adds the previous task implicitly; see the planner). */
  needs: string[];
  /** The AgentInput as written, expressions still inside; `options.timeout` kept as written. `{}` when absent. */
  input: unknown;
  /** A literal list, or a string that is one `${{ }}` expression giving a list. */
  forEach?: unknown;
  async: boolean;
  pollIntervalMs?: number;
  timeoutMs?: number;
  retries?: number;
  /** Dotted paths into the AgentOutput mapped to expected values (or `/regex/` strings). */
  expect?: Record<string, unknown>;
}

export interface PipelineConfig {
  /** The pipeline file (as given). */
  file: string;
  name: string;
  mode: PipelineMode;
  concurrency?: number;
  timeoutMs?: number;
  retries?: number;
  circuitBreaker?: CircuitBreakerSettings;
  loadBalancing?: LoadBalancing;
  maxResponseBytes?: number;
  /** The file's `vars` with `--var` values laid over them (an object without prototype). */
  vars: Record<string, unknown>;
  /** Inline services, or those of the services file; empty when they come from elsewhere (a registry). */
  services: ServicesConfig;
  /** The services file read, resolved against the pipeline file's directory (or the `services` option). */
  servicesFile?: string;
  /** Tasks in file order. */
  tasks: TaskConfig[];
  /** Raw text of the pipeline file (for hashing). */
  source: string;
}

export interface PipelineLoadResult {
  /** Present when there are no errors. */
  pipeline?: PipelineConfig;
  /** Errors; any of them means the pipeline must not run. */
  diagnostics: Diagnostic[];
  /** Things worth telling that do not stop the run (unknown YAML tags, duplicate needs, …). */
  warnings: Diagnostic[];
}

export interface ServicesLoadResult {
  services?: ServicesConfig;
  diagnostics: Diagnostic[];
  warnings: Diagnostic[];
}
