import type { ServicePolicy } from "../coordinator/types.js";
import { AgentctlError } from "../errors.js";
import { evaluateTemplate } from "../pipeline/expressions.js";
import type { ServicesConfig } from "../pipeline/types.js";
import { Registry } from "../registry/registry.js";
import type { AgentServer } from "../server/index.js";
import { startAgentServer } from "../server/index.js";
import type { Redactor } from "./redact.js";

export interface ServiceDefaults {
  timeoutMs?: number;
  maxResponseBytes?: number;
  loadBalancing?: ServicePolicy["loadBalancing"];
  circuitBreaker?: { maxFailures?: number; openForMs?: number };
}

export interface ResolvedServices {
  registry: Registry;
  policies: Record<string, ServicePolicy>;
  /** In-process reference servers started for `endpoint: embedded` instances. */
  embedded: AgentServer[];
  close(): Promise<void>;
}

/**
 * Turns a validated services config into a live registry (the file source) and per-service
 * policies. `headers` is the service's headers with expressions already resolved.
 */
export async function resolveServices(
  services: ServicesConfig,
  headers: (service: string) => Record<string, string>,
  defaults: ServiceDefaults = {},
  registerInstances = true,
): Promise<ResolvedServices> {
  // Instances from a file never heartbeat: health comes from probes only.
  const registry = new Registry({ heartbeatTimeout: 0 });
  const policies: Record<string, ServicePolicy> = {};
  const embedded: AgentServer[] = [];
  const close = async () => {
    registry.close();
    await Promise.all(embedded.map((s) => s.close()));
  };
  try {
    for (const [name, service] of Object.entries(services)) {
      const breaker = service.circuitBreaker ?? defaults.circuitBreaker;
      policies[name] = {
        loadBalancing: service.loadBalancing ?? defaults.loadBalancing,
        timeout: service.timeoutMs ?? defaults.timeoutMs,
        maxResponseBytes: service.maxResponseBytes ?? defaults.maxResponseBytes,
        headers: headers(name),
        circuitBreaker: breaker
          ? { maxFailures: breaker.maxFailures, timeout: breaker.openForMs }
          : undefined,
      };
      for (const instance of registerInstances ? service.instances : []) {
        let endpoint = instance.endpoint;
        if (endpoint === "embedded") {
          const server = await startAgentServer({ host: "127.0.0.1", port: 0 });
          embedded.push(server);
          endpoint = server.url;
        }
        registry.register({
          id: instance.id,
          serviceName: name,
          endpoint,
          agents: instance.agents,
          metadata: instance.metadata,
        });
      }
    }
  } catch (err) {
    await close();
    throw err;
  }
  return { registry, policies, embedded, close };
}

export interface PrepareOptions {
  env: Record<string, string | undefined>;
  /** Receives every configured header value: they are secrets. */
  redactor: Redactor;
  defaults?: ServiceDefaults;
  /** False when instances come from elsewhere (etcd): the file then only gives settings. */
  registerInstances?: boolean;
}

/**
 * Each service's headers with their expressions (`${{ env.X }}`) resolved; every value goes to
 * `redactor` (headers are secrets). A header that cannot be resolved (an unset variable) or sent
 * (a control character) is a configuration problem, found before anything is called: an
 * `invalid` error naming it.
 */
export function resolveHeaders(
  services: ServicesConfig,
  env: Record<string, string | undefined>,
  redactor: Redactor,
): Record<string, Record<string, string>> {
  const out: Record<string, Record<string, string>> = {};
  for (const [name, service] of Object.entries(services)) {
    const headers: Record<string, string> = {};
    for (const [key, raw] of Object.entries(service.headers)) {
      let value: unknown;
      try {
        value = evaluateTemplate(raw, { env }).value;
      } catch (err) {
        const why = err instanceof Error ? err.message : String(err);
        throw new AgentctlError("invalid", `service ${name}, header ${key}: ${why}`, { cause: err });
      }
      headers[key] = typeof value === "string" ? value : JSON.stringify(value);
      redactor.add(headers[key]);
      // HTTP refuses control characters in a field value (a newline in a variable, say): say so
      // now, before any call, rather than fail every call of the run.
      if (/[\0-\x08\x0a-\x1f\x7f]/.test(headers[key])) {
        throw new AgentctlError(
          "invalid",
          `service ${name}, header ${key}: the value holds a control character`,
        );
      }
    }
    out[name] = headers;
  }
  return out;
}

/** Resolves each service's headers, then builds the registry. */
export async function prepareServices(
  services: ServicesConfig,
  options: PrepareOptions,
): Promise<ResolvedServices> {
  const resolved = resolveHeaders(services, options.env, options.redactor);
  return resolveServices(
    services,
    (name) => resolved[name] ?? {},
    options.defaults,
    options.registerInstances ?? true,
  );
}
