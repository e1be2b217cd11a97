// `agentctl run --registry`: the built CLI following a real etcd while a run goes on.
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Etcd3 } from "etcd3";
import { execa } from "execa";
import { afterAll, afterEach, beforeAll, expect, it } from "vitest";
import { type AgentServer, startAgentServer } from "../../src/server/index.js";
import { BIN } from "../helpers/cli.js";
import { describeEtcd, type EtcdServer, startEtcd, waitFor } from "../helpers/etcd.js";

describeEtcd("run --registry (real etcd, built CLI)", () => {
  let etcd: EtcdServer;
  let kv: Etcd3;
  let dir: string;
  let n = 0;
  const servers: AgentServer[] = [];

  beforeAll(async () => {
    etcd = await startEtcd();
    kv = new Etcd3({ hosts: etcd.clientUrl });
    dir = await mkdtemp(join(tmpdir(), "agentctl-etcd-run-"));
  });

  afterEach(async () => {
    await Promise.all(servers.splice(0).map((s) => s.close()));
  });

  afterAll(async () => {
    kv?.close();
    await etcd?.stop();
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  async function server(): Promise<AgentServer> {
    const s = await startAgentServer({ port: 0, recordRequests: true });
    servers.push(s);
    return s;
  }

  function calls(s: AgentServer): number {
    return s.requests.filter((r) => r.method === "POST").length;
  }

  async function put(prefix: string, id: string, s: AgentServer): Promise<void> {
    await kv.put(`${prefix}/demo/${id}`).value(JSON.stringify({ id, service: "demo", endpoint: s.url }));
  }

  /** A fan-out of `items` slow calls, one at a time, so the registry can change mid-run. */
  async function pipeline(items: number, ms: number): Promise<string> {
    const file = join(dir, `fleet-${++n}.yaml`);
    await writeFile(
      file,
      [
        "name: fleet",
        "concurrency: 1",
        "retries: 0",
        "tasks:",
        "  - id: calls",
        "    service: demo",
        "    agent: sleep",
        `    for_each: ${JSON.stringify(Array.from({ length: items }, (_, i) => i))}`,
        `    input: { task: "call \${{ index }}", context: { ms: ${ms} } }`,
        "",
      ].join("\n"),
    );
    return file;
  }

  function run(file: string, prefix: string) {
    return execa("node", [BIN, "run", file, "--registry", `${etcd.url}${prefix}`, "--output", "json"], {
      reject: false,
      cwd: dir,
      env: { NO_COLOR: "1" },
      timeout: 60_000,
    });
  }

  it("spreads the calls over the instances found in etcd", async () => {
    const prefix = `/run-${process.pid}-a`;
    const a = await server();
    const b = await server();
    await put(prefix, "a", a);
    await put(prefix, "b", b);
    const result = await run(await pipeline(10, 1), prefix);
    expect(result.exitCode, result.stderr).toBe(0);
    expect(JSON.parse(result.stdout).tasks[0].outputs).toHaveLength(10);
    expect(calls(a)).toBe(5);
    expect(calls(b)).toBe(5);
  });

  it("an instance added mid-run gets calls; one deleted mid-run gets no new calls", async () => {
    const prefix = `/run-${process.pid}-b`;
    const first = await server();
    const second = await server();
    await put(prefix, "first", first);
    const running = run(await pipeline(30, 50), prefix);
    await waitFor(() => calls(first) >= 5, 30_000, "first instance serving");
    await put(prefix, "second", second);
    await waitFor(() => calls(second) >= 3, 30_000, "the added instance receiving calls");
    await kv.delete().key(`${prefix}/demo/first`);
    // At most the one call in flight when the key went away may still reach it.
    const atDelete = calls(first);
    const result = await running;
    expect(result.exitCode, result.stderr).toBe(0);
    expect(calls(first)).toBeLessThanOrEqual(atDelete + 1);
    expect(calls(first) + calls(second)).toBe(30);
  });

  it("etcd stopped and restarted mid-run: the run goes on with the last known instances", async () => {
    const prefix = `/run-${process.pid}-c`;
    const only = await server();
    await put(prefix, "only", only);
    const running = run(await pipeline(20, 100), prefix);
    await waitFor(() => calls(only) >= 3, 30_000, "calls flowing");
    await etcd.restart(async () => {
      const before = calls(only);
      await waitFor(() => calls(only) >= before + 2, 30_000, "calls while etcd is down");
    });
    const result = await running;
    expect(result.exitCode, result.stderr).toBe(0);
    expect(calls(only)).toBe(20);
    expect(result.stderr).toContain("lost etcd");
  });

  it("an unreachable etcd is a setup error (exit 2), nothing called", async () => {
    const result = await execa(
      "node",
      [BIN, "run", await pipeline(1, 1), "--registry", "etcd://127.0.0.1:1/x", "--output", "json"],
      { reject: false, cwd: dir, env: { NO_COLOR: "1" }, timeout: 60_000 },
    );
    expect(result.exitCode).toBe(2);
    expect(result.stdout).toBe("");
  });
});
