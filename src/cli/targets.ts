import { AgentctlError } from "../errors.js";
import { endpointProblem } from "../pipeline/services-file.js";
import { withoutTrailingSlash } from "../protocol/paths.js";
import type { EtcdInstance } from "../registry/etcd-layout.js";
import { Redactor } from "../run/redact.js";
import { prepareServices, resolveHeaders } from "../run/services.js";
import { UsageError, usageOnConfigError } from "./exit-codes.js";
import { loadServicesOrThrow } from "./load.js";

/** An instance to talk to, from the command line or from a services file. */
export interface Target {
  endpoint: string;
  /** What to print: the configured endpoint (`embedded` stays `embedded`). */
  shown: string;
  service?: string;
  instance?: string;
  headers?: Record<string, string>;
}

export interface Targets {
  list: Target[];
  redact(text: string): string;
  close(): Promise<void>;
}

/**
 * Endpoints given on the command line (with `--services` too: an endpoint that is an instance's
 * there is that instance, with its service's headers); else every instance in etcd
 * (`--registry`, with headers from `--services` when given too); else every instance of
 * `--services`.
 */
export async function resolveTargets(
  endpoints: readonly string[],
  servicesFile: string | undefined,
  registryUrl?: string,
): Promise<Targets> {
  if (registryUrl !== undefined) {
    if (endpoints.length > 0) throw new UsageError("give endpoints or --registry, not both");
    return resolveRegistryTargets(registryUrl, servicesFile);
  }
  const redactor = new Redactor();
  if (endpoints.length > 0) {
    for (const endpoint of endpoints) {
      const problem = endpointProblem(endpoint);
      if (problem !== undefined) throw new UsageError(problem);
    }
    const known = servicesFile === undefined ? new Map() : await instancesByEndpoint(servicesFile, redactor);
    return {
      list: endpoints.map((e) => ({ ...known.get(withoutTrailingSlash(e)), endpoint: e, shown: e })),
      redact: (t) => redactor.redact(t),
      close: async () => {},
    };
  }
  if (servicesFile === undefined)
    throw new UsageError("give at least one endpoint, or --services FILE, or --registry URL");
  const services = await loadServicesOrThrow(servicesFile, { env: process.env });
  const prepared = await usageOnConfigError(() => prepareServices(services, { env: process.env, redactor }));
  const list: Target[] = [];
  for (const [name, service] of Object.entries(services)) {
    for (const instance of service.instances) {
      list.push({
        endpoint: prepared.registry.getInstance(instance.id).endpoint,
        shown: instance.endpoint,
        service: name,
        instance: instance.id,
        headers: prepared.policies[name]?.headers,
      });
    }
  }
  return { list, redact: (t) => redactor.redact(t), close: () => prepared.close() };
}

/** The instances of a services file by endpoint (embedded ones are not started: none is given). */
async function instancesByEndpoint(
  servicesFile: string,
  redactor: Redactor,
): Promise<Map<string, Omit<Target, "endpoint" | "shown">>> {
  const { services, headers } = await servicesWithHeaders(servicesFile, redactor, false);
  const byEndpoint = new Map<string, Omit<Target, "endpoint" | "shown">>();
  for (const [name, service] of Object.entries(services)) {
    for (const instance of service.instances) {
      byEndpoint.set(withoutTrailingSlash(instance.endpoint), {
        service: name,
        instance: instance.id,
        ...(headers[name] ? { headers: headers[name] } : {}),
      });
    }
  }
  return byEndpoint;
}

/** A services file (problems: exit 2) and its services' headers, resolved and redacted. */
async function servicesWithHeaders(servicesFile: string, redactor: Redactor, instancesElsewhere: boolean) {
  const services = await loadServicesOrThrow(servicesFile, { env: process.env, instancesElsewhere });
  const headers = await usageOnConfigError(() => resolveHeaders(services, process.env, redactor));
  return { services, headers };
}

/**
 * Every instance found in etcd under the URL's prefix, sorted by service and id. Headers come from
 * the services file when one is given (its instances are not used: etcd says which exist).
 * Warnings (bad values, an empty registry) go to stderr; an unreadable registry or a bad URL is a
 * UsageError (exit 2: nothing was called).
 */
export async function resolveRegistryTargets(
  registryUrl: string,
  servicesFile: string | undefined,
): Promise<Targets> {
  const redactor = new Redactor();
  const headers =
    servicesFile === undefined ? {} : (await servicesWithHeaders(servicesFile, redactor, true)).headers;
  const instances = await readRegistry(registryUrl);
  if (instances.length === 0) process.stderr.write(`warning: no instances found in ${registryUrl}\n`);
  return {
    list: instances.map((i) => ({
      endpoint: i.endpoint,
      shown: i.endpoint,
      service: i.service,
      instance: i.id,
      ...(headers[i.service] ? { headers: headers[i.service] } : {}),
    })),
    redact: (t) => redactor.redact(t),
    close: async () => {},
  };
}

/** The instances in etcd once; problems reading it are usage errors (exit 2). */
export async function readRegistry(registryUrl: string): Promise<EtcdInstance[]> {
  try {
    // Loaded only here: the etcd client (gRPC) is heavy, and most runs of ping do not need it.
    const { listEtcdInstances } = await import("../registry/etcd-source.js");
    return await listEtcdInstances(registryUrl, {
      onWarning: (m) => process.stderr.write(m.endsWith("\n") ? m : `${m}\n`),
    });
  } catch (err) {
    if (err instanceof AgentctlError) throw new UsageError(err.message);
    throw err;
  }
}
