import Table from "cli-table3";
import { Client } from "../../client/client.js";
import { toAgentctlError } from "../../errors.js";
import { formatMs } from "../../run/reporters/table.js";
import { EXIT } from "../exit-codes.js";
import { createIo } from "../io.js";
import { resolveTargets, type Target } from "../targets.js";

export interface PingFlags {
  services?: string;
  /** etcd://HOST:PORT[/PREFIX]: ping every instance found there. */
  registry?: string;
  timeout?: number;
  output: "table" | "json";
  color: boolean;
}

interface PingRow {
  endpoint: string;
  healthy: boolean;
  latency_ms: number;
  error?: { code: string; message: string; status?: number };
  target: Target;
}

/** `agentctl ping`: `GET /health` on each endpoint, concurrently; exit 1 if any is unhealthy. */
export async function pingCommand(endpoints: string[], flags: PingFlags): Promise<number> {
  const io = createIo(!flags.color);
  const targets = await resolveTargets(endpoints, flags.services, flags.registry);
  const client = new Client();
  try {
    const rows = await Promise.all(
      targets.list.map(async (target): Promise<PingRow> => {
        const t0 = performance.now();
        try {
          await client.ping(target.endpoint, { timeout: flags.timeout ?? 2000, headers: target.headers });
          return {
            endpoint: target.shown,
            healthy: true,
            latency_ms: Math.round(performance.now() - t0),
            target,
          };
        } catch (err) {
          const e = toAgentctlError(err, "connection");
          return {
            endpoint: target.shown,
            healthy: false,
            latency_ms: Math.round(performance.now() - t0),
            error: e.toJSON(),
            target,
          };
        }
      }),
    );
    if (flags.output === "json") {
      io.out(
        targets.redact(
          JSON.stringify(
            rows.map(({ target: _t, ...r }) => r),
            null,
            2,
          ),
        ),
      );
    } else {
      const table = new Table({
        head: ["endpoint", "service", "instance", "health", "latency", "error"].map((h) => io.color.bold(h)),
        style: { head: [], border: [] },
      });
      for (const r of rows) {
        table.push([
          r.endpoint,
          r.target.service ?? "-",
          r.target.instance ?? "-",
          r.healthy ? io.color.green("healthy") : io.color.red("unhealthy"),
          formatMs(r.latency_ms),
          r.error ? `[${r.error.code}] ${r.error.message}` : "",
        ]);
      }
      io.out(targets.redact(table.toString()));
    }
    return rows.every((r) => r.healthy) ? EXIT.ok : EXIT.failed;
  } finally {
    await client.close();
    await targets.close();
  }
}
