// biome-ignore-all lint/suspicious/noTemplateCurlyInString: ${{ }} is the pipeline expression syntax
import { existsSync } from "node:fs";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Etcd3 } from "etcd3";
import { execa, type ResultPromise } from "execa";
import { afterAll, afterEach, beforeAll, expect, it } from "vitest";
import { type AgentServer, startAgentServer } from "../../src/server/index.js";
import { BIN, ROOT } from "../helpers/cli.js";
import { describeEtcd, type EtcdServer, startEtcd, waitFor } from "../helpers/etcd.js";
import { freePort } from "../helpers/fake-agent-server.js";

type Serve = ResultPromise<{ reject: false; cwd: string; env: Record<string, string> }>;

describeEtcd("etcd from the command line (real etcd, built CLI)", () => {
  let etcd: EtcdServer;
  let kv: Etcd3;
  let dir: string;
  let n = 0;
  const children: Serve[] = [];
  const servers: AgentServer[] = [];

  beforeAll(async () => {
    if (!existsSync(join(ROOT, "dist", "registry", "etcd-registration.js"))) {
      throw new Error("the CLI is not built (or is out of date): run `npm run build` first");
    }
    etcd = await startEtcd();
    kv = new Etcd3({ hosts: etcd.clientUrl });
    dir = await mkdtemp(join(tmpdir(), "agentctl-etcd-cli-"));
  });

  afterEach(async () => {
    for (const child of children.splice(0)) {
      if (child.exitCode === null && child.signalCode === null) child.kill("SIGKILL");
      await child;
    }
    await Promise.all(servers.splice(0).map((s) => s.close()));
  });

  afterAll(async () => {
    kv?.close();
    await etcd?.stop();
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  function prefix(): string {
    return `/agentctl-cli/${process.pid}-${++n}`;
  }

  function agentctl(args: string[], env: Record<string, string> = {}) {
    return execa("node", [BIN, ...args], {
      reject: false,
      cwd: dir,
      env: { NO_COLOR: "1", ...env },
      timeout: 30_000,
    });
  }

  /** Starts `agentctl serve` and waits for its one stdout line. */
  async function serve(args: string[]): Promise<{ child: Serve; url: string; stdout: () => string }> {
    const child = execa("node", [BIN, "serve", "--port", "0", ...args], {
      reject: false,
      cwd: dir,
      env: { NO_COLOR: "1" },
    }) as Serve;
    children.push(child);
    let out = "";
    child.stdout?.setEncoding("utf8");
    child.stdout?.on("data", (chunk: string) => {
      out += chunk;
    });
    let exited = false;
    void child.then(() => {
      exited = true;
    });
    await waitFor(() => out.includes("\n") || exited, 20_000, "serve printing its listening line");
    const match = /^listening on (http:\/\/\S+)\n$/.exec(out);
    if (!match) throw new Error(`serve did not start: ${JSON.stringify(out)}; ${(await child).stderr}`);
    return { child, url: match[1]!, stdout: () => out };
  }

  async function value(key: string): Promise<unknown> {
    const raw = await kv.get(key).string();
    return raw === null ? null : JSON.parse(raw);
  }

  it("serve --register puts its key under a lease, and deletes it on SIGTERM", async () => {
    const p = prefix();
    const { child, url, stdout } = await serve([
      "--register",
      `${etcd.url}${p}`,
      "--service",
      "demo",
      "--agents",
      "echo,upper",
    ]);
    const port = new URL(url).port;
    const key = `${p}/demo/demo-127.0.0.1-${port}`;
    // Registered before the listening line was printed.
    expect(await value(key)).toEqual({
      id: `demo-127.0.0.1-${port}`,
      service: "demo",
      endpoint: url,
      agents: ["echo", "upper"],
    });
    const lease = (await kv.get(key).exec()).kvs[0]?.lease;
    expect(lease).toBeDefined();
    expect(lease).not.toBe("0");

    child.kill("SIGTERM");
    const result = await child;
    expect(result.exitCode).toBe(0);
    expect(stdout()).toBe(`listening on ${url}\n`);
    expect(await value(key)).toBeNull();
  });

  it("serve --register --id uses the id given; SIGINT deregisters too", async () => {
    const p = prefix();
    const { child, url } = await serve([
      "--register",
      `${etcd.url}${p}`,
      "--service",
      "demo",
      "--id",
      "mine",
    ]);
    expect(await value(`${p}/demo/mine`)).toMatchObject({ id: "mine", service: "demo", endpoint: url });
    child.kill("SIGINT");
    expect((await child).exitCode).toBe(0);
    expect(await value(`${p}/demo/mine`)).toBeNull();
  });

  it("etcd frozen past the lease: serve registers again once it answers, and SIGINT still exits", async () => {
    const p = prefix();
    const { child } = await serve(["--register", `${etcd.url}${p}`, "--service", "demo", "--id", "frozen"]);
    const key = `${p}/demo/frozen`;
    const leaseOf = async () => (await kv.get(key).exec()).kvs[0]?.lease;
    const first = await leaseOf();
    expect(first).toBeDefined();
    let stderr = "";
    child.stderr?.setEncoding("utf8");
    child.stderr?.on("data", (chunk: string) => {
      stderr += chunk;
    });
    // Twice the 10 s lease: heartbeats go unanswered, the lease is lost. (With etcd3's own keepalive
    // this leaked an interval, and the process never exited after SIGINT.)
    await etcd.pause(20_000);
    await waitFor(
      async () => {
        const now = await leaseOf();
        return now !== undefined && now !== first;
      },
      30_000,
      "the key registered again under a new lease",
    );
    await waitFor(() => stderr.includes("restored"), 10_000, "the restored notice");
    expect(stderr).toContain("lost the etcd lease");
    child.kill("SIGINT");
    const exited = await Promise.race([
      child,
      new Promise((r) => setTimeout(() => r("still running"), 15_000)),
    ]);
    expect(exited).not.toBe("still running");
    expect((await child).exitCode).toBe(0);
    expect(await value(key)).toBeNull();
  }, 90_000);

  it("SIGTERM while registering with an unresponsive etcd: gives up at once, exit 0, no listening line", async () => {
    const port = await freePort();
    const frozen = etcd.pause(8000);
    try {
      const child = execa(
        "node",
        [BIN, "serve", "--port", String(port), "--register", `${etcd.url}${prefix()}`, "--service", "demo"],
        { reject: false, cwd: dir, env: { NO_COLOR: "1" } },
      ) as Serve;
      children.push(child);
      // Listening (a health check answers) means registering: the server listens first.
      await waitFor(
        async () => (await fetch(`http://127.0.0.1:${port}/health`).catch(() => undefined))?.ok === true,
        20_000,
        "the server listening while it registers",
      );
      child.kill("SIGTERM");
      const r = await child;
      // Before: it waited out etcd's 5 s dial timeout, then failed to register: exit 2.
      expect(r.exitCode, r.stderr).toBe(0);
      expect(r.stdout).toBe("");
    } finally {
      await frozen;
    }
  }, 30_000);

  it("a registered server stays while it lives; SIGKILLed, it vanishes within the 10 s lease", async () => {
    const p = prefix();
    const { child } = await serve(["--register", `${etcd.url}${p}`, "--service", "demo", "--id", "doomed"]);
    const key = `${p}/demo/doomed`;
    expect(await value(key)).not.toBeNull();
    // The heartbeat keeps the key past the lease's TTL while the server lives.
    const aliveUntil = Date.now() + 11_000;
    while (Date.now() < aliveUntil) {
      expect(await value(key), "the key of a live server").not.toBeNull();
      await new Promise((r) => setTimeout(r, 500));
    }
    child.kill("SIGKILL");
    await child;
    const killedAt = Date.now();
    await waitFor(async () => (await value(key)) === null, 25_000, "the key expiring");
    const took = Date.now() - killedAt;
    // The lease is 10 s, renewed every third of it, so the key goes 7–10 s after the kill (etcd
    // checks expiry every 500 ms); the rest is margin for a slow machine.
    expect(took).toBeLessThan(18_000);
  }, 60_000);

  it("list-agents --registry and ping --registry show every registered instance", async () => {
    const p = prefix();
    const a = await serve(["--register", `${etcd.url}${p}`, "--service", "alpha", "--agents", "echo"]);
    const b = await serve(["--register", `${etcd.url}${p}`, "--service", "beta", "--id", "b-1"]);

    const list = await agentctl(["list-agents", "--registry", `${etcd.url}${p}`, "--output", "json"]);
    expect(list.exitCode).toBe(0);
    const rows = JSON.parse(list.stdout) as Array<Record<string, unknown>>;
    const aId = `alpha-127.0.0.1-${new URL(a.url).port}`;
    expect(rows).toEqual([
      { service: "alpha", instance: aId, endpoint: a.url, agents: ["echo"] },
      {
        service: "beta",
        instance: "b-1",
        endpoint: b.url,
        agents: expect.arrayContaining(["echo", "upper", "wordcount", "sleep", "fail"]),
      },
    ]);

    const table = await agentctl(["list-agents", "--registry", `${etcd.url}${p}`]);
    expect(table.exitCode).toBe(0);
    expect(table.stdout).toContain(aId);
    expect(table.stdout).toContain("b-1");

    const ping = await agentctl(["ping", "--registry", `${etcd.url}${p}`, "--output", "json"]);
    expect(ping.exitCode).toBe(0);
    const health = JSON.parse(ping.stdout) as Array<{ endpoint: string; healthy: boolean }>;
    expect(health.map((h) => [h.endpoint, h.healthy])).toEqual([
      [a.url, true],
      [b.url, true],
    ]);
    const pingTable = await agentctl(["ping", "--registry", `${etcd.url}${p}`]);
    expect(pingTable.stdout).toContain("alpha");
    expect(pingTable.stdout).toContain("b-1");
  });

  it("takes headers from --services for instances found in etcd, and keeps them secret", async () => {
    const p = prefix();
    const server = await startAgentServer({ port: 0, recordRequests: true });
    servers.push(server);
    await kv
      .put(`${p}/secure/s-1`)
      .value(JSON.stringify({ id: "s-1", service: "secure", endpoint: server.url }));
    const services = join(dir, `services-${n}.yaml`);
    await writeFile(
      services,
      [
        "services:",
        "  secure:",
        '    headers: { authorization: "Bearer ${{ env.SECRET_TOKEN }}" }',
        "    instances:",
        "      - endpoint: http://127.0.0.1:9",
        "",
      ].join("\n"),
    );
    const env = { SECRET_TOKEN: "tok-very-secret" };
    const list = await agentctl(
      ["list-agents", "--registry", `${etcd.url}${p}`, "--services", services, "--output", "json"],
      env,
    );
    expect(list.exitCode).toBe(0);
    // Only the instance in etcd: the file's instances are not used with --registry.
    expect((JSON.parse(list.stdout) as unknown[]).length).toBe(1);
    const ping = await agentctl(["ping", "--registry", `${etcd.url}${p}`, "--services", services], env);
    expect(ping.exitCode).toBe(0);
    const seen = server.requests.map((r) => r.headers.authorization);
    expect(seen.length).toBeGreaterThanOrEqual(2);
    expect(seen.every((h) => h === "Bearer tok-very-secret")).toBe(true);
    expect(list.stdout + list.stderr + ping.stdout + ping.stderr).not.toContain("tok-very-secret");
  });

  it("reports usage problems with exit 2, before starting anything", async () => {
    const noService = await agentctl(["serve", "--port", "0", "--register", etcd.url]);
    expect(noService.exitCode).toBe(2);
    expect(noService.stderr).toMatch(/--register needs --service/);
    expect(noService.stdout).toBe("");

    const badUrl = await agentctl(["serve", "--port", "0", "--register", "http://x:1", "--service", "s"]);
    expect(badUrl.exitCode).toBe(2);
    expect(badUrl.stderr).toMatch(/etcd:\/\/ scheme/);

    const serviceAlone = await agentctl(["serve", "--port", "0", "--service", "s"]);
    expect(serviceAlone.exitCode).toBe(2);

    const both = await agentctl(["ping", "http://127.0.0.1:9", "--registry", etcd.url]);
    expect(both.exitCode).toBe(2);
    expect(both.stderr).toMatch(/not both/);

    const badRegistry = await agentctl(["list-agents", "--registry", "etcd://127.0.0.1:bad"]);
    expect(badRegistry.exitCode).toBe(2);
    expect(badRegistry.stderr).toMatch(/invalid port/);
  });

  it("exits 2 without printing a listening line when etcd cannot be reached", async () => {
    const closed = await startAgentServer({ port: 0 });
    const port = closed.port;
    await closed.close();
    const started = Date.now();
    const result = await agentctl([
      "serve",
      "--port",
      "0",
      "--register",
      `etcd://127.0.0.1:${port}`,
      "--service",
      "s",
    ]);
    expect(result.exitCode).toBe(2);
    expect(result.stdout).toBe("");
    expect(result.stderr).toMatch(/cannot register .* in etcd/);
    const list = await agentctl(["list-agents", "--registry", `etcd://127.0.0.1:${port}`]);
    expect(list.exitCode).toBe(2);
    expect(list.stderr).toMatch(/cannot read the registry/);
    // Both gave up promptly and exited: no retry loop keeps the process alive.
    expect(Date.now() - started).toBeLessThan(20_000);
  });
});
