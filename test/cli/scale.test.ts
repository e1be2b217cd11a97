// biome-ignore-all lint/suspicious/noExplicitAny: the tests read the CLI's JSON output loosely
import { afterAll, expect, it } from "vitest";
import { type AgentServer, startAgentServer } from "../../src/server/index.js";
import { parseJsonOutput, removeWorkspaces, runCli, servicesOf, workspace } from "../helpers/cli.js";
import { findAll, parseXml } from "./xml.js";

/**
 * Nothing lost (SPEC §4): 200 tasks against two instances that fail 30% of agent calls with
 * 503, one retry each. Whatever failed, every task appears exactly once, in file order, in
 * exactly one final state, and the counts add up.
 */

const servers: AgentServer[] = [];

afterAll(async () => {
  await Promise.all(servers.map((s) => s.close()));
  await removeWorkspaces();
});

it("a 200-task run on failing instances accounts for every task exactly once", async () => {
  for (let i = 0; i < 2; i++) servers.push(await startAgentServer({ failRate: 0.3, recordRequests: true }));
  const ids = Array.from({ length: 200 }, (_, i) => `t${String(i).padStart(3, "0")}`);
  // The second hundred each need one of the first: failures there skip dependents here.
  const tasks = ids.map((id, i) => ({
    id,
    service: "svc",
    agent: i % 2 === 0 ? "echo" : "upper",
    input: { task: id },
    ...(i >= 100 ? { needs: [ids[i - 100]] } : {}),
  }));
  const ws = await workspace();
  await ws.writeYaml("many.yaml", {
    name: "many",
    retries: 1,
    services: servicesOf(servers.map((s) => s.url)),
    tasks,
  });
  const r = await runCli(["run", "many.yaml", "--output", "json", "--junit", "junit.xml"], {
    cwd: ws.dir,
    timeout: 60_000,
  });
  const doc = parseJsonOutput(r);
  expect(r.exitCode, r.stderr).toBe(doc.status === "succeeded" ? 0 : 1);

  expect(doc.tasks.map((t: any) => t.id)).toEqual(ids);
  const s = doc.summary;
  expect(s.total).toBe(200);
  expect(s.succeeded + s.failed + s.skipped + s.cancelled).toBe(200);
  expect(s.cancelled).toBe(0);
  const count = (status: string) => doc.tasks.filter((t: any) => t.status === status).length;
  expect([count("succeeded"), count("failed"), count("skipped"), count("cancelled")]).toEqual([
    s.succeeded,
    s.failed,
    s.skipped,
    0,
  ]);
  // With 30% injected failures and two attempts per task, a few failed (and some were skipped).
  expect(s.failed).toBeGreaterThan(0);
  expect(s.succeeded).toBeGreaterThan(100);

  const byId = new Map(doc.tasks.map((t: any) => [t.id, t]));
  const servedKeys = new Set(
    servers.flatMap((srv) => srv.requests.map((q) => q.headers["idempotency-key"])).filter(Boolean),
  );
  for (const [i, t] of doc.tasks.entries() as IterableIterator<[number, any]>) {
    const need = i >= 100 ? (byId.get(ids[i - 100]!) as any) : undefined;
    switch (t.status) {
      case "succeeded":
        expect(t.error).toBeUndefined();
        expect(t.attempts).toBeGreaterThanOrEqual(1);
        expect(t.attempts).toBeLessThanOrEqual(2);
        if (i % 2 === 0) expect(t.output.result.task).toBe(t.id);
        else expect(t.output.result).toBe(t.id.toUpperCase());
        expect(servedKeys.has(`${doc.run_id}:${t.id}`)).toBe(true);
        break;
      case "failed":
        expect(["http_status", "circuit_open"]).toContain(t.error.code);
        if (t.error.code === "http_status") expect(t.error.status).toBe(503);
        break;
      case "skipped":
        expect(t.error.code).toBe("skipped");
        expect(need?.status).not.toBe("succeeded");
        expect(t.attempts).toBe(0);
        break;
      default:
        throw new Error(`unexpected status ${t.status} of ${t.id}`);
    }
    if (need !== undefined && need.status === "succeeded") expect(t.status).not.toBe("skipped");
    if (need !== undefined && need.status !== "succeeded") expect(t.status).toBe("skipped");
  }

  const cases = findAll(parseXml(await ws.read("junit.xml")), "testcase");
  expect(cases.map((c) => c.attrs.name)).toEqual(ids);
});
