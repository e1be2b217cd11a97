import { createServer } from "node:http";
import type { AddressInfo } from "node:net";
import { AgentctlError } from "../errors.js";
import { BUILT_IN_AGENTS, type BuiltInAgent, type BuiltInAgentName } from "./agents.js";
import { ConnectionTracker } from "./connections.js";
import { AgentService, type ServiceConfig } from "./service.js";
import type { AgentServer, AgentServerOptions, RecordedRequest } from "./types.js";

const DEFAULT_TTL_MS = 10 * 60_000;
const DEFAULT_MAX_BODY_BYTES = 16 * 1024 * 1024;
const DEFAULT_GRACE_MS = 1000;
// Longer than the usual 60 s idle timeout of client pools, so the server is never the one to
// close a connection the client is about to reuse.
const KEEP_ALIVE_TIMEOUT_MS = 65_000;

function isBuiltIn(name: string): name is BuiltInAgentName {
  return Object.hasOwn(BUILT_IN_AGENTS, name);
}

function nonNegative(name: string, value: number | undefined, fallback: number): number {
  if (value === undefined) return fallback;
  if (!Number.isFinite(value) || value < 0) {
    throw new AgentctlError("invalid", `${name} must be a number >= 0, got ${value}`);
  }
  return value;
}

function serviceConfig(options: AgentServerOptions, requests: RecordedRequest[]): ServiceConfig {
  const agents = new Map<string, BuiltInAgent>();
  for (const name of options.agents ?? Object.keys(BUILT_IN_AGENTS)) {
    if (!isBuiltIn(name)) {
      const known = Object.keys(BUILT_IN_AGENTS).join(", ");
      throw new AgentctlError("invalid", `unknown built-in agent ${JSON.stringify(name)} (known: ${known})`);
    }
    agents.set(name, BUILT_IN_AGENTS[name]);
  }
  const failRate = nonNegative("failRate", options.failRate, 0);
  if (failRate > 1) throw new AgentctlError("invalid", `failRate must be between 0 and 1, got ${failRate}`);
  return {
    agents,
    latencyMs: nonNegative("latencyMs", options.latencyMs, 0),
    failRate,
    random: options.random ?? Math.random,
    ttlMs: nonNegative("asyncTaskTtlMs", options.asyncTaskTtlMs, DEFAULT_TTL_MS),
    maxBodyBytes: nonNegative("maxBodyBytes", options.maxBodyBytes, DEFAULT_MAX_BODY_BYTES),
    requests: options.recordRequests ? requests : undefined,
  };
}

/** Starts the reference agent server (SPEC §7) and resolves once it accepts connections. */
export async function startAgentServer(options: AgentServerOptions = {}): Promise<AgentServer> {
  const host = options.host ?? "127.0.0.1";
  const requests: RecordedRequest[] = [];
  const service = new AgentService(serviceConfig(options, requests));
  const graceMs = nonNegative("shutdownGraceMs", options.shutdownGraceMs, DEFAULT_GRACE_MS);

  const server = createServer({ keepAlive: true, noDelay: true }, (req, res) => {
    connections.track(req, res);
    service.handle(req, res);
  });
  const connections = new ConnectionTracker(server);
  server.keepAliveTimeout = KEEP_ALIVE_TIMEOUT_MS;
  server.headersTimeout = KEEP_ALIVE_TIMEOUT_MS + 1000;
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(options.port ?? 0, host, () => {
      server.off("error", reject);
      resolve();
    });
  });
  const { port } = server.address() as AddressInfo;

  async function shutdown(): Promise<void> {
    service.shutdown();
    const closed = new Promise<void>((resolve) => server.close(() => resolve()));
    connections.destroyIdle();
    const cutoff = setTimeout(() => server.closeAllConnections(), graceMs);
    cutoff.unref();
    await closed;
    clearTimeout(cutoff);
  }
  let closing: Promise<void> | undefined;

  return {
    url: `http://${host.includes(":") ? `[${host}]` : host}:${port}`,
    host,
    port,
    requests,
    get agentRuns() {
      return service.agentRuns;
    },
    close: () => {
      closing ??= shutdown();
      return closing;
    },
  };
}
