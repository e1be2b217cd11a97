import { Redactor } from "../run/redact.js";
import { prepareServices } from "../run/services.js";
import { UsageError } from "./exit-codes.js";
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

/** Endpoints given on the command line win; else every instance of `--services`. */
export async function resolveTargets(
  endpoints: readonly string[],
  servicesFile: string | undefined,
): Promise<Targets> {
  const redactor = new Redactor();
  if (endpoints.length > 0) {
    return {
      list: endpoints.map((e) => ({ endpoint: e, shown: e })),
      redact: (t) => t,
      close: async () => {},
    };
  }
  if (servicesFile === undefined) throw new UsageError("give at least one endpoint, or --services FILE");
  const services = await loadServicesOrThrow(servicesFile);
  const prepared = await prepareServices(services, { env: process.env, redactor });
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
