import { AgentctlError } from "../errors.js";

/**
 * The registry's layout in etcd (SPEC §9): key `PREFIX/<service>/<instance-id>`, value JSON
 * `{"id","service","endpoint","agents"?,"metadata"?}`.
 */
export interface EtcdInstance {
  /** The etcd key it was read from (or is written to). */
  key: string;
  id: string;
  service: string;
  endpoint: string;
  agents?: string[];
  metadata?: Record<string, unknown>;
}

/** The directory every instance key lives under: the prefix and a slash. */
export function serviceDirectory(prefix: string): string {
  return `${prefix}/`;
}

export function instanceKey(prefix: string, service: string, id: string): string {
  return `${serviceDirectory(prefix)}${service}/${id}`;
}

/** The JSON stored as an instance's value. */
export function encodeInstance(instance: Omit<EtcdInstance, "key">): string {
  return JSON.stringify({
    id: instance.id,
    service: instance.service,
    endpoint: instance.endpoint,
    ...(instance.agents ? { agents: instance.agents } : {}),
    ...(instance.metadata ? { metadata: instance.metadata } : {}),
  });
}

/** Checks what a registrant is about to write, so that readers will accept it (code `invalid`). */
export function checkInstance(instance: Omit<EtcdInstance, "key">): void {
  const problem =
    nameProblem("service", instance.service, false) ??
    nameProblem("id", instance.id, true) ??
    endpointProblem(instance.endpoint) ??
    agentsProblem(instance.agents) ??
    (instance.metadata !== undefined && !isPlainObject(instance.metadata)
      ? "metadata must be an object"
      : undefined);
  if (problem !== undefined) throw new AgentctlError("invalid", `cannot register in etcd: ${problem}`);
}

export type DecodeResult = { ok: true; instance: EtcdInstance } | { ok: false; problem: string };

/**
 * Reads one key/value pair under `prefix`. Never throws: a bad key or value is reported as a
 * problem, for the caller to skip with a warning. `id` and `service` may be left out of the value
 * (the key's are used); when present they must match the key.
 */
export function decodeInstance(prefix: string, key: string, value: string): DecodeResult {
  const dir = serviceDirectory(prefix);
  if (!key.startsWith(dir)) return { ok: false, problem: `the key is not under ${dir}` };
  const rest = key.slice(dir.length);
  const slash = rest.indexOf("/");
  const keyService = slash < 0 ? rest : rest.slice(0, slash);
  const keyId = slash < 0 ? "" : rest.slice(slash + 1);
  if (keyService === "" || keyId === "") {
    return { ok: false, problem: `expected a key ${dir}<service>/<instance-id>` };
  }
  let raw: unknown;
  try {
    raw = JSON.parse(value);
  } catch {
    return { ok: false, problem: "the value is not JSON" };
  }
  if (!isPlainObject(raw)) return { ok: false, problem: "the value is not a JSON object" };
  const service = raw.service ?? keyService;
  const id = raw.id ?? keyId;
  const problem =
    nameProblem("service", service, false) ??
    nameProblem("id", id, true) ??
    (service !== keyService
      ? `service ${JSON.stringify(service)} does not match the key's ${JSON.stringify(keyService)}`
      : undefined) ??
    (id !== keyId
      ? `id ${JSON.stringify(id)} does not match the key's ${JSON.stringify(keyId)}`
      : undefined) ??
    endpointProblem(raw.endpoint) ??
    agentsProblem(raw.agents ?? undefined) ??
    (raw.metadata !== undefined && raw.metadata !== null && !isPlainObject(raw.metadata)
      ? "metadata must be an object"
      : undefined);
  if (problem !== undefined) return { ok: false, problem };
  const instance: EtcdInstance = {
    key,
    id: id as string,
    service: service as string,
    endpoint: raw.endpoint as string,
  };
  if (Array.isArray(raw.agents)) instance.agents = [...(raw.agents as string[])];
  if (isPlainObject(raw.metadata)) instance.metadata = raw.metadata;
  return { ok: true, instance };
}

function isPlainObject(v: unknown): v is Record<string, unknown> {
  return typeof v === "object" && v !== null && !Array.isArray(v);
}

function nameProblem(field: string, v: unknown, slashes: boolean): string | undefined {
  if (typeof v !== "string" || v === "") return `${field} must be a non-empty string`;
  if (!slashes && v.includes("/")) return `${field} ${JSON.stringify(v)} may not contain "/"`;
  if (/[\u0000-\u001f\u007f]/.test(v)) return `${field} ${JSON.stringify(v)} has control characters`;
  return undefined;
}

function endpointProblem(v: unknown): string | undefined {
  if (typeof v !== "string" || v === "") return "endpoint must be a non-empty string";
  let url: URL;
  try {
    url = new URL(v);
  } catch {
    return `endpoint ${JSON.stringify(v)} is not a URL`;
  }
  if (url.protocol !== "http:" && url.protocol !== "https:") {
    return `endpoint ${JSON.stringify(v)} is not http:// or https://`;
  }
  if (url.search !== "" || url.hash !== "") {
    return `endpoint ${JSON.stringify(v)} has a query or a fragment`;
  }
  return undefined;
}

function agentsProblem(v: unknown): string | undefined {
  if (v === undefined) return undefined;
  if (!Array.isArray(v)) return "agents must be a list of names";
  for (const a of v) {
    if (typeof a !== "string" || a === "" || a === "." || a === "..") {
      return `agents has an invalid name ${JSON.stringify(a)}`;
    }
  }
  return undefined;
}
