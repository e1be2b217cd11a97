import Table from "cli-table3";
import { Client } from "../../client/client.js";
import { toAgentctlError } from "../../errors.js";
import { EXIT } from "../exit-codes.js";
import { createIo } from "../io.js";
import { resolveTargets } from "../targets.js";

export interface ListAgentsFlags {
  services?: string;
  registry?: string;
  output: "table" | "json";
  color: boolean;
}

/** `agentctl list-agents`: the agents each instance serves (`GET /api/v1/agents`). */
export async function listAgentsCommand(endpoints: string[], flags: ListAgentsFlags): Promise<number> {
  const io = createIo(!flags.color);
  const targets = await resolveTargets(endpoints, flags.services, flags.registry);
  const client = new Client({ timeout: 10_000 });
  try {
    const rows = await Promise.all(
      targets.list.map(async (t) => {
        const where = {
          ...(t.service ? { service: t.service } : {}),
          ...(t.instance ? { instance: t.instance } : {}),
          endpoint: t.shown,
        };
        try {
          return { ...where, agents: await client.listAgents(t.endpoint, { headers: t.headers }) };
        } catch (err) {
          return { ...where, agents: [] as string[], error: toAgentctlError(err, "connection").toJSON() };
        }
      }),
    );
    if (flags.output === "json") {
      io.out(targets.redact(JSON.stringify(rows, null, 2)));
    } else {
      const table = new Table({
        head: ["service", "instance", "endpoint", "agents"].map((h) => io.color.bold(h)),
        style: { head: [], border: [] },
      });
      for (const r of rows) {
        const agents =
          "error" in r && r.error
            ? io.color.red(`[${r.error.code}] ${r.error.message}`)
            : r.agents.join(", ");
        table.push([r.service ?? "-", r.instance ?? "-", r.endpoint, agents]);
      }
      io.out(targets.redact(table.toString()));
    }
    return rows.some((r) => "error" in r) ? EXIT.failed : EXIT.ok;
  } finally {
    await client.close();
    await targets.close();
  }
}
