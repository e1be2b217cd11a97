import { afterEach, expect } from "vitest";
import {
  AgentctlError,
  Client,
  type ClientOptions,
  Coordinator,
  type CoordinatorOptions,
  type ErrorCode,
  Registry,
  type RegistryOptions,
} from "../../src/index.js";
import {
  type FakeAgentServer,
  type FakeAgentServerOptions,
  startFakeAgentServer,
} from "../helpers/fake-agent-server.js";

/**
 * Everything a test creates, closed after each test (in reverse order): servers, clients,
 * registries, coordinators.
 */
export function useResources() {
  const cleanups: Array<() => unknown> = [];
  afterEach(async () => {
    const all = cleanups.splice(0).reverse();
    for (const cleanup of all) {
      try {
        await cleanup();
      } catch {
        // already closed
      }
    }
  });
  return {
    async server(options?: FakeAgentServerOptions): Promise<FakeAgentServer> {
      const server = await startFakeAgentServer(options);
      cleanups.push(() => server.close());
      return server;
    },
    async servers(n: number, options?: FakeAgentServerOptions): Promise<FakeAgentServer[]> {
      const list: FakeAgentServer[] = [];
      for (let i = 0; i < n; i++) list.push(await this.server(options));
      return list;
    },
    client(options?: ClientOptions): Client {
      const client = new Client(options);
      cleanups.push(() => client.close());
      return client;
    },
    registry(options: RegistryOptions = { heartbeatTimeout: 0 }): Registry {
      const registry = new Registry(options);
      cleanups.push(() => registry.close());
      return registry;
    },
    coordinator(registry: Registry, client: Client, options?: CoordinatorOptions): Coordinator {
      const coordinator = new Coordinator(registry, client, options);
      cleanups.push(() => coordinator.close());
      return coordinator;
    },
    /** Runs `fn` after the test (e.g. closing something the helpers do not know). */
    defer(fn: () => unknown): void {
      cleanups.push(fn);
    },
  };
}

/** Awaits a promise that must reject with an AgentctlError, and returns the error. */
export async function rejection(promise: Promise<unknown>, code?: ErrorCode): Promise<AgentctlError> {
  let settled: unknown;
  try {
    await promise;
  } catch (err) {
    settled = err;
  }
  expect(settled, "expected a rejection").toBeInstanceOf(AgentctlError);
  const error = settled as AgentctlError;
  if (code !== undefined) expect(error.code, error.message).toBe(code);
  return error;
}

/** Registers one instance per server under `service` (ids i0, i1, …). */
export function registerAll(
  registry: Registry,
  service: string,
  servers: readonly { url: string }[],
  agents?: string[],
): string[] {
  return servers.map((s, i) => {
    registry.register({ id: `i${i}`, serviceName: service, endpoint: s.url, ...(agents ? { agents } : {}) });
    return `i${i}`;
  });
}

/** Milliseconds since `start` (performance.now()). */
export function since(start: number): number {
  return performance.now() - start;
}
