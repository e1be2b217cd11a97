// biome-ignore-all lint/suspicious/noExplicitAny: the tests read the CLI's JSON output loosely
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type AgentServer, startAgentServer } from "../../src/server/index.js";
import {
  PACKAGE_VERSION,
  parseJsonOutput,
  removeWorkspaces,
  runCli,
  type Workspace,
  workspace,
} from "../helpers/cli.js";
import { type FakeAgentServer, freePort, startFakeAgentServer } from "../helpers/fake-agent-server.js";

/** `agentctl ping` and `agentctl list-agents`: endpoints, services files, table and JSON, exit codes. */

let up1: AgentServer;
let up2: AgentServer;
let fake: FakeAgentServer;
let down: string;
let ws: Workspace;

beforeAll(async () => {
  up1 = await startAgentServer({ recordRequests: true });
  up2 = await startAgentServer({ recordRequests: true, agents: ["echo", "upper"] });
  fake = await startFakeAgentServer({ agents: ["PrefixedAgent"] });
  fake.route("GET /broken/health", { status: 500, body: "health check exploded" });
  fake.route("GET /hang/health", { hang: true });
  down = `http://127.0.0.1:${await freePort()}`;
  ws = await workspace();
  await ws.writeYaml("services.yaml", {
    services: {
      users: {
        instances: [
          { id: "users-a", endpoint: up1.url },
          { id: "users-b", endpoint: "embedded" },
        ],
      },
      orders: { instances: [{ endpoint: up2.url, agents: ["echo"] }] },
    },
  });
  await ws.writeYaml("with-down.yaml", {
    services: {
      users: { instances: [{ id: "users-a", endpoint: up1.url }] },
      gone: { instances: [{ id: "gone-1", endpoint: down }] },
    },
  });
});

afterAll(async () => {
  await Promise.all([up1.close(), up2.close(), fake.close()]);
  await removeWorkspaces();
});

describe.concurrent("ping", () => {
  it("endpoints, table: exit 0 when all are healthy, with the agentctl user-agent", async () => {
    const r = await runCli(["ping", up1.url, up2.url]);
    expect(r.exitCode, r.stderr).toBe(0);
    expect(r.stdout).toMatch(new RegExp(`│ ${up1.url}\\s+│.*│ healthy\\s+│`));
    expect(r.stdout).toMatch(new RegExp(`│ ${up2.url}\\s+│.*│ healthy\\s+│`));
    const probe = up1.requests.find((q) => q.path === "/health");
    expect(probe?.method).toBe("GET");
    expect(probe?.headers["user-agent"]).toBe(`agentctl/${PACKAGE_VERSION}`);
  });

  it("endpoints, json: one entry per endpoint in order; a down one makes exit 1", async () => {
    const r = await runCli(["ping", up1.url, down, up2.url, "--output", "json"]);
    expect(r.exitCode).toBe(1);
    const rows = parseJsonOutput(r);
    expect(rows.map((x: any) => [x.endpoint, x.healthy])).toEqual([
      [up1.url, true],
      [down, false],
      [up2.url, true],
    ]);
    for (const row of rows) {
      for (const k of Object.keys(row)) expect(["endpoint", "healthy", "latency_ms", "error"]).toContain(k);
      expect(Number.isInteger(row.latency_ms)).toBe(true);
      expect(row.latency_ms).toBeGreaterThanOrEqual(0);
      if (row.healthy) expect(row.error).toBeUndefined();
    }
    expect(rows[1].error.code).toBe("connection");
    expect(typeof rows[1].error.message).toBe("string");
  });

  it("table with a down endpoint: unhealthy, the error code, exit 1", async () => {
    const r = await runCli(["ping", down]);
    expect(r.exitCode).toBe(1);
    expect(r.stdout).toMatch(/unhealthy/);
    expect(r.stdout).toMatch(/\[connection\]/);
  });

  it("a 500 on /health is unhealthy with http_status; a hanging one times out per --timeout", async () => {
    const started = Date.now();
    const r = await runCli([
      "ping",
      `${fake.url}/broken`,
      `${fake.url}/hang`,
      "--timeout",
      "500ms",
      "--output",
      "json",
    ]);
    expect(r.exitCode).toBe(1);
    expect(Date.now() - started).toBeLessThan(15_000);
    const [broken, hung] = parseJsonOutput(r);
    expect(broken, JSON.stringify(broken)).toMatchObject({
      healthy: false,
      error: { code: "http_status", status: 500 },
    });
    expect(hung, JSON.stringify(hung)).toMatchObject({ healthy: false, error: { code: "timeout" } });
  });

  it("an endpoint with a path prefix (and a trailing slash) is joined without a doubled slash", async () => {
    const r = await runCli(["ping", `${fake.url}/team-a`, `${fake.url}/team-b/`]);
    expect(r.exitCode, r.stdout + r.stderr).toBe(0);
    const paths = fake.received().map((q) => q.path);
    expect(paths).toContain("/team-a/health");
    expect(paths).toContain("/team-b/health");
    expect(paths.some((p) => p.includes("//"))).toBe(false);
  });

  it("--services F with no endpoint pings every instance, embedded ones included", async () => {
    const [table, json] = await Promise.all([
      runCli(["ping", "--services", "services.yaml"], { cwd: ws.dir }),
      runCli(["ping", "--services", "services.yaml", "--output", "json"], { cwd: ws.dir }),
    ]);
    expect(table.exitCode, table.stderr).toBe(0);
    expect(json.exitCode, json.stderr).toBe(0);
    for (const id of ["users-a", "users-b", "orders-1"]) expect(table.stdout).toContain(id);
    expect(table.stdout).toMatch(/│ embedded\s+│/);
    const rows = parseJsonOutput(json);
    expect(rows.map((x: any) => [x.endpoint, x.healthy])).toEqual([
      [up1.url, true],
      ["embedded", true],
      [up2.url, true],
    ]);
  });

  it("--services F with an instance down: exit 1, the others still pinged", async () => {
    const r = await runCli(["ping", "--services", "with-down.yaml", "--output", "json"], { cwd: ws.dir });
    expect(r.exitCode).toBe(1);
    expect(parseJsonOutput(r).map((x: any) => [x.endpoint, x.healthy])).toEqual([
      [up1.url, true],
      [down, false],
    ]);
  });

  it("endpoints with --services: an endpoint of the file is its instance, with its service's headers", async () => {
    await ws.writeYaml("with-headers.yaml", {
      services: {
        secured: {
          headers: { authorization: "Bearer ${{ env.AGENTCTL_PING_TOKEN }}" },
          instances: [{ id: "secured-1", endpoint: `${up1.url}/` }],
        },
      },
    });
    const env = { AGENTCTL_PING_TOKEN: "ping-secret-42" };
    const [ping, list] = await Promise.all([
      runCli(["ping", up1.url, fake.url, "--services", "with-headers.yaml", "--output", "json"], {
        cwd: ws.dir,
        env,
      }),
      runCli(["list-agents", up1.url, "--services", "with-headers.yaml", "--output", "json"], {
        cwd: ws.dir,
        env,
      }),
    ]);
    expect(ping.exitCode, ping.stderr).toBe(0);
    expect(parseJsonOutput(ping).map((x: any) => x.endpoint)).toEqual([up1.url, fake.url]);
    expect(parseJsonOutput(list)).toEqual([
      expect.objectContaining({ service: "secured", instance: "secured-1", endpoint: up1.url }),
    ]);
    const sent = up1.requests.filter((q) => q.headers.authorization === "Bearer ping-secret-42");
    expect(sent.map((q) => q.path).sort()).toEqual(["/api/v1/agents", "/health"]);
    // Only the file's instance gets the file's headers.
    expect(fake.requests.every((q) => q.headers.authorization === undefined)).toBe(true);
    for (const r of [ping, list]) expect(r.stdout + r.stderr).not.toContain("ping-secret-42");
  });

  it("no endpoint and no --services is a usage error (exit 2); a bad services file too", async () => {
    await ws.write("bad-services.yaml", "services:\n  x:\n    instances:\n      - endpoint: 42\n");
    const [none, bad, missing, withEndpoint] = await Promise.all([
      runCli(["ping"]),
      runCli(["ping", "--services", "bad-services.yaml"], { cwd: ws.dir }),
      runCli(["ping", "--services", "nowhere.yaml"], { cwd: ws.dir }),
      // With endpoints too, the file is still read: a missing one is not silently ignored.
      runCli(["list-agents", up1.url, "--services", "nowhere.yaml"], { cwd: ws.dir }),
    ]);
    for (const r of [none, bad, missing, withEndpoint]) {
      expect(r.exitCode, r.stderr).toBe(2);
      expect(r.stdout).toBe("");
    }
    expect(bad.stderr).toMatch(/^bad-services\.yaml:4:\d+: /m);
  });

  it("an endpoint that is not an http(s) URL is a usage error (exit 2), for list-agents too", async () => {
    const [noScheme, hostPort, notUrl, list, none] = await Promise.all([
      runCli(["ping", "localhost:8081", up1.url]),
      runCli(["ping", "127.0.0.1:8081"]),
      runCli(["ping", "not a url"]),
      runCli(["list-agents", "ftp://127.0.0.1:21"]),
      runCli(["ping"]),
    ]);
    for (const r of [noScheme, hostPort, notUrl, list, none]) {
      expect(r.exitCode, r.stderr).toBe(2);
      expect(r.stdout).toBe("");
    }
    expect(noScheme.stderr).toContain(
      'invalid endpoint "localhost:8081": expected http:// or https:// (did you mean "http://localhost:8081"?)',
    );
    expect(hostPort.stderr).toContain(
      'invalid endpoint "127.0.0.1:8081": not a URL (did you mean "http://127.0.0.1:8081"?)',
    );
    expect(notUrl.stderr).toContain('invalid endpoint "not a url": not a URL\n');
    expect(none.stderr).toContain("give at least one endpoint, or --services FILE, or --registry URL");
  });
});

describe.concurrent("list-agents", () => {
  it("endpoints, table and json", async () => {
    const [table, json] = await Promise.all([
      runCli(["list-agents", up2.url, `${fake.url}/prefix`]),
      runCli(["list-agents", up2.url, `${fake.url}/prefix`, "--output", "json"]),
    ]);
    expect(table.exitCode, table.stderr).toBe(0);
    expect(table.stdout).toMatch(/echo, upper/);
    expect(table.stdout).toMatch(/PrefixedAgent/);
    expect(json.exitCode, json.stderr).toBe(0);
    expect(parseJsonOutput(json)).toEqual([
      { endpoint: up2.url, agents: ["echo", "upper"] },
      { endpoint: `${fake.url}/prefix`, agents: ["PrefixedAgent"] },
    ]);
    expect(fake.received().some((q) => q.method === "GET" && q.path === "/prefix/api/v1/agents")).toBe(true);
  });

  it("a down endpoint: an error entry with its code, exit 1", async () => {
    const r = await runCli(["list-agents", up1.url, down, "--output", "json"]);
    expect(r.exitCode).toBe(1);
    const rows = parseJsonOutput(r);
    expect(rows[0]).toEqual({ endpoint: up1.url, agents: ["echo", "upper", "wordcount", "sleep", "fail"] });
    expect(rows[1]).toMatchObject({ endpoint: down, error: { code: "connection" } });
    const table = await runCli(["list-agents", down]);
    expect(table.exitCode).toBe(1);
    expect(table.stdout).toMatch(/\[connection\]/);
  });

  it("--services F: service and instance per row, embedded instances answer", async () => {
    const r = await runCli(["list-agents", "--services", "services.yaml", "--output", "json"], {
      cwd: ws.dir,
    });
    expect(r.exitCode, r.stderr).toBe(0);
    expect(parseJsonOutput(r)).toEqual([
      {
        service: "users",
        instance: "users-a",
        endpoint: up1.url,
        agents: ["echo", "upper", "wordcount", "sleep", "fail"],
      },
      {
        service: "users",
        instance: "users-b",
        endpoint: "embedded",
        agents: ["echo", "upper", "wordcount", "sleep", "fail"],
      },
      { service: "orders", instance: "orders-1", endpoint: up2.url, agents: ["echo", "upper"] },
    ]);
    const table = await runCli(["list-agents", "--services", "with-down.yaml"], { cwd: ws.dir });
    expect(table.exitCode).toBe(1);
    expect(table.stdout).toMatch(/│ gone\s+│ gone-1\s+│/);
  });
});
