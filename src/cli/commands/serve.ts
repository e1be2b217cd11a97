import { hostname } from "node:os";
import { AgentctlError } from "../../errors.js";
import type { EtcdRegistration } from "../../registry/etcd-registration.js";
import { describeEtcdUrl, parseEtcdUrl } from "../../registry/etcd-url.js";
import { BUILT_IN_AGENT_NAMES, startAgentServer } from "../../server/index.js";
import { EXIT, UsageError } from "../exit-codes.js";
import { onSignals } from "../signals.js";

export interface ServeFlags {
  host: string;
  port: number;
  agents?: string;
  latency?: number;
  failRate?: number;
  register?: string;
  service?: string;
  id?: string;
}

/**
 * `agentctl serve`: one line on stdout once listening (and, with `--register`, registered in
 * etcd), then runs until SIGINT/SIGTERM; on either it deregisters first, then shuts down, exit 0.
 */
export async function serveCommand(flags: ServeFlags): Promise<number> {
  if (flags.host.trim() === "") throw new UsageError("--host may not be empty");
  const registerUrl = checkRegisterFlags(flags);
  const agents = flags.agents
    ?.split(",")
    .map((a) => a.trim())
    .filter(Boolean);
  if (agents?.length === 0) throw new UsageError("--agents lists no agent (a comma list, e.g. echo,upper)");
  let server: Awaited<ReturnType<typeof startAgentServer>>;
  try {
    server = await startAgentServer({
      host: flags.host,
      port: flags.port,
      agents,
      latencyMs: flags.latency,
      failRate: flags.failRate,
    });
  } catch (err) {
    if (err instanceof AgentctlError && err.code === "invalid") throw new UsageError(err.message);
    // A system error here is about --host or --port: in use, not ours, not an address (ENOTFOUND).
    const code = (err as NodeJS.ErrnoException).code;
    if (typeof code === "string")
      throw new UsageError(`cannot listen on ${flags.host}:${flags.port} (${code})`);
    throw err;
  }

  // Listen for signals from here on, so that one arriving while registering still cleans up.
  let signalled = false;
  let wake: () => void = () => {};
  const stopped = new Promise<void>((resolve) => {
    wake = resolve;
  });
  // A signal while registering gives the registration up rather than wait for etcd.
  const giveUp = new AbortController();
  const stop = () => {
    signalled = true;
    // A second signal while shutting down: exit at once.
    onSignals();
    giveUp.abort();
    wake();
  };
  onSignals(stop);

  let registration: EtcdRegistration | undefined;
  if (registerUrl !== undefined) {
    const service = flags.service!;
    const id = flags.id ?? `${service}-${flags.host}-${server.port}`;
    try {
      // Loaded only with --register: the etcd client (gRPC) is heavy.
      const { registerInEtcd } = await import("../../registry/etcd-registration.js");
      registration = await registerInEtcd(
        registerUrl,
        {
          service,
          id,
          endpoint: advertisedEndpoint(flags.host, server.port, server.url),
          agents: agents ?? [...BUILT_IN_AGENT_NAMES],
        },
        { signal: giveUp.signal },
      );
    } catch (err) {
      onSignals();
      await server.close();
      // Stopped while registering: a clean shutdown, as at any other time.
      if (signalled) return EXIT.ok;
      if (err instanceof AgentctlError) throw new UsageError(err.message);
      throw err;
    }
  }

  if (!signalled) {
    process.stdout.write(`listening on ${server.url}\n`);
    if (registration) {
      process.stderr.write(
        `registered as ${registration.key} in ${describeEtcdUrl(parseEtcdUrl(registerUrl!))}\n`,
      );
    }
  }
  await stopped;
  // Out of the registry first (no new calls are routed here), then finish what is in flight.
  await registration?.close();
  await server.close();
  return EXIT.ok;
}

/** Checks the `--register` flags before anything starts; returns the URL when registering. */
function checkRegisterFlags(flags: ServeFlags): string | undefined {
  if (flags.register === undefined) {
    if (flags.service !== undefined || flags.id !== undefined) {
      throw new UsageError("--service and --id only apply with --register etcd://HOST:PORT[/PREFIX]");
    }
    return undefined;
  }
  if (flags.service === undefined || flags.service.trim() === "") {
    throw new UsageError("--register needs --service NAME");
  }
  if (flags.service.includes("/")) throw new UsageError(`--service may not contain "/": ${flags.service}`);
  if (flags.id !== undefined && flags.id.trim() === "") throw new UsageError("--id may not be empty");
  try {
    parseEtcdUrl(flags.register);
  } catch (err) {
    if (err instanceof AgentctlError) throw new UsageError(err.message);
    throw err;
  }
  return flags.register;
}

/**
 * The endpoint others should call: the listening URL, except that a wildcard address (0.0.0.0,
 * ::) is not reachable as such and is replaced by this machine's host name.
 */
function advertisedEndpoint(host: string, port: number, url: string): string {
  if (host === "0.0.0.0" || host === "::" || host === "[::]") {
    return `http://${hostname()}:${port}`;
  }
  return url;
}
