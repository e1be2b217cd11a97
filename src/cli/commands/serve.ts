import { AgentctlError } from "../../errors.js";
import { startAgentServer } from "../../server/index.js";
import { EXIT, UsageError } from "../exit-codes.js";

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

/** `agentctl serve`: one line on stdout once listening, then runs until SIGINT/SIGTERM. */
export async function serveCommand(flags: ServeFlags): Promise<number> {
  if (flags.register !== undefined) {
    throw new UsageError("serve --register is not yet supported in this version");
  }
  let server: Awaited<ReturnType<typeof startAgentServer>>;
  try {
    server = await startAgentServer({
      host: flags.host,
      port: flags.port,
      agents: flags.agents
        ?.split(",")
        .map((a) => a.trim())
        .filter(Boolean),
      latencyMs: flags.latency,
      failRate: flags.failRate,
    });
  } catch (err) {
    if (err instanceof AgentctlError && err.code === "invalid") throw new UsageError(err.message);
    const code = (err as { code?: string }).code;
    if (code === "EADDRINUSE" || code === "EACCES" || code === "EADDRNOTAVAIL") {
      throw new UsageError(`cannot listen on ${flags.host}:${flags.port} (${code})`);
    }
    throw err;
  }
  process.stdout.write(`listening on ${server.url}\n`);
  await new Promise<void>((resolve) => {
    const stop = () => {
      process.off("SIGINT", stop);
      process.off("SIGTERM", stop);
      resolve();
    };
    process.on("SIGINT", stop);
    process.on("SIGTERM", stop);
  });
  await server.close();
  return EXIT.ok;
}
