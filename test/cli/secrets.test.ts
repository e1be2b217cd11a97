// biome-ignore-all lint/suspicious/noExplicitAny: the tests read the CLI's JSON output loosely
import { readFile } from "node:fs/promises";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type AgentServer, startAgentServer } from "../../src/server/index.js";
import {
  type CliResult,
  parseJsonOutput,
  removeWorkspaces,
  runCli,
  type Workspace,
  workspace,
} from "../helpers/cli.js";
import { agentOutput, type FakeAgentServer, startFakeAgentServer } from "../helpers/fake-agent-server.js";

/**
 * Values of configured headers and everything read through `env` are secrets: the server gets
 * them, and they appear nowhere else — stdout, stderr (verbose too), the JUnit file, the journal —
 * even when a server sends them back in results, error bodies and failure messages.
 */

// Each secret has a marker that occurs nowhere else, so any form of a leak (raw, JSON-escaped,
// escaped twice, cut short) still contains it.
const TOKEN = "tok7a1c9e-header-Secret";
const API_KEY = 'key4b2d8f-with-"quotes"-and-\\backslash';
const INPUT = "inp5e3f0a secret from env";
const MARKERS = ["tok7a1c9e", "key4b2d8f", "inp5e3f0a"];

const ENV = {
  AGENTCTL_E2E_TOKEN: TOKEN,
  AGENTCTL_E2E_KEY: API_KEY,
  AGENTCTL_E2E_INPUT: INPUT,
};

let ref: AgentServer;
let fake: FakeAgentServer;

beforeAll(async () => {
  ref = await startAgentServer({ recordRequests: true });
  fake = await startFakeAgentServer();
  // A server that hands the secrets back in every way it can.
  fake.route("POST /api/v1/agents/reflect-error/execute", (req) => ({
    status: 500,
    body: `denied: authorization=${req.headers.authorization} x-api-key=${req.headers["x-api-key"]} body=${req.body}`,
  }));
  fake.route("POST /api/v1/agents/reflect-failed/execute", (req) => ({
    json: agentOutput({
      status: "failed",
      message: `refused ${req.headers.authorization}`,
      result: req.json,
    }),
  }));
  fake.route("POST /api/v1/agents/reflect-ok/execute", (req) => ({
    json: agentOutput({
      result: { headers: req.headers, raw_body: req.body },
      metadata: { key: req.headers["x-api-key"] },
    }),
  }));
});

afterAll(async () => {
  await Promise.all([ref.close(), fake.close()]);
  await removeWorkspaces();
});

async function setup(): Promise<Workspace> {
  const ws = await workspace();
  const headers = {
    authorization: "Bearer ${{ env.AGENTCTL_E2E_TOKEN }}",
    "x-api-key": "${{ env.AGENTCTL_E2E_KEY }}",
  };
  await ws.writeYaml("services.yaml", {
    services: {
      ref: { headers, instances: [{ id: "ref-1", endpoint: ref.url }] },
      fake: { headers, instances: [{ id: "fake-1", endpoint: fake.url }] },
    },
  });
  await ws.writeYaml("secrets.yaml", {
    name: "secrets",
    services: "./services.yaml",
    retries: 0,
    tasks: [
      {
        id: "echoed",
        service: "ref",
        agent: "echo",
        input: {
          task: "use ${{ env.AGENTCTL_E2E_INPUT }} here",
          context: { secret: "${{ env.AGENTCTL_E2E_INPUT }}", nested: { k: "${{ env.AGENTCTL_E2E_KEY }}" } },
        },
      },
      {
        id: "error_body",
        service: "fake",
        agent: "reflect-error",
        input: { context: { s: "${{ env.AGENTCTL_E2E_INPUT }}" } },
      },
      {
        id: "failed_msg",
        service: "fake",
        agent: "reflect-failed",
        input: { task: "${{ env.AGENTCTL_E2E_INPUT }}" },
      },
      {
        // The result holds the request body as a string: the key is escaped twice in the JSON.
        id: "reflected",
        service: "fake",
        agent: "reflect-ok",
        input: { task: "${{ env.AGENTCTL_E2E_INPUT }}", context: { k: "${{ env.AGENTCTL_E2E_KEY }}" } },
      },
      {
        id: "asserted",
        service: "ref",
        agent: "echo",
        input: { context: { v: "${{ env.AGENTCTL_E2E_INPUT }}" } },
        expect: { "result.context.v": "something else" },
      },
      {
        id: "fan",
        service: "ref",
        agent: "upper",
        for_each: ["a", "b"],
        input: { task: "${{ item }} ${{ env.AGENTCTL_E2E_INPUT }}" },
      },
    ],
  });
  return ws;
}

function expectNoSecret(where: string, text: string): void {
  for (const marker of MARKERS) {
    const at = text.indexOf(marker);
    expect(at, `${where} leaks ${marker}: …${text.slice(Math.max(0, at - 80), at + 80)}…`).toBe(-1);
  }
}

async function expectCleanRun(ws: Workspace, r: CliResult, stateDir: string, junit?: string): Promise<void> {
  expect(r.exitCode, r.stderr).toBe(1);
  expectNoSecret("stdout", r.stdout);
  expectNoSecret("stderr", r.stderr);
  if (junit) expectNoSecret("junit", await ws.read(junit));
  const journals = await ws.files(`${stateDir}/runs`);
  expect(journals.filter((f) => f.endsWith(".jsonl"))).toHaveLength(1);
  for (const f of journals) expectNoSecret(f, await readFile(ws.path(f), "utf8"));
}

describe.concurrent("secrets", () => {
  it("never appear in the JSON, the verbose log, the JUnit file or the journal; the server got them", async () => {
    const ws = await setup();
    const r = await runCli(
      [
        "run",
        "secrets.yaml",
        "--output",
        "json",
        "--verbose",
        "--junit",
        "junit.xml",
        "--state-dir",
        "state",
      ],
      { cwd: ws.dir, env: ENV },
    );
    await expectCleanRun(ws, r, "state", "junit.xml");
    const doc = parseJsonOutput(r);
    const t = Object.fromEntries(doc.tasks.map((x: any) => [x.id, x]));
    expect(t.echoed.status).toBe("succeeded");
    expect(t.echoed.output.result.context.secret).toBe("***");
    expect(t.error_body.error.code).toBe("http_status");
    expect(t.failed_msg.error.code).toBe("agent_failed");
    expect(t.reflected.status).toBe("succeeded");
    expect(t.asserted.error.code).toBe("assertion");
    expect(t.fan.status).toBe("succeeded");

    // The servers received the real values.
    const runId = doc.run_id as string;
    const echoed = ref.requests.find((q) => q.headers["idempotency-key"] === `${runId}:echoed`)!;
    expect(echoed.headers.authorization).toBe(`Bearer ${TOKEN}`);
    expect(echoed.headers["x-api-key"]).toBe(API_KEY);
    expect((echoed.body as any).context).toEqual({ secret: INPUT, nested: { k: API_KEY } });
    const calls = fake.received((q) => q.headers["idempotency-key"] === `${runId}:reflected`);
    expect(calls).toHaveLength(1);
    expect(calls[0]!.headers.authorization).toBe(`Bearer ${TOKEN}`);
    expect(calls[0]!.headers["x-api-key"]).toBe(API_KEY);
  });

  it("SPEC §2: the health probes before a run carry the service's headers too", async () => {
    const guarded = await startFakeAgentServer();
    try {
      const ws = await workspace();
      await ws.writeYaml("guarded.yaml", {
        name: "guarded",
        services: {
          svc: {
            headers: { authorization: "Bearer ${{ env.AGENTCTL_E2E_TOKEN }}" },
            instances: [{ endpoint: guarded.url }],
          },
        },
        tasks: [{ id: "t", service: "svc", agent: "echo" }],
      });
      const r = await runCli(["run", "guarded.yaml", "--output", "json"], { cwd: ws.dir, env: ENV });
      expect(r.exitCode, r.stderr).toBe(0);
      const health = guarded.received("GET /health");
      expect(health).toHaveLength(1);
      expect(health[0]!.headers.authorization).toBe(`Bearer ${TOKEN}`);
    } finally {
      await guarded.close();
    }
  });

  it("never appear in the table (verbose) or the default journal under .agentctl/runs", async () => {
    const ws = await setup();
    const r = await runCli(["run", "secrets.yaml", "--verbose"], { cwd: ws.dir, env: ENV });
    await expectCleanRun(ws, r, ".agentctl");
    expect(r.stdout).toMatch(/error_body: \[http_status\]/);
    expect(r.stdout).toMatch(/\*\*\*/);
  });

  it("a header value is not printed by --dry-run, validate, ping or list-agents either", async () => {
    const ws = await setup();
    const results = await Promise.all([
      runCli(["run", "secrets.yaml", "--dry-run"], { cwd: ws.dir, env: ENV }),
      runCli(["validate", "secrets.yaml"], { cwd: ws.dir, env: ENV }),
      runCli(["ping", "--services", "services.yaml", "--output", "json"], { cwd: ws.dir, env: ENV }),
      runCli(["list-agents", "--services", "services.yaml", "--output", "json"], { cwd: ws.dir, env: ENV }),
    ]);
    for (const r of results) {
      expect(r.exitCode, r.stderr).toBe(0);
      expectNoSecret("stdout", r.stdout);
      expectNoSecret("stderr", r.stderr);
    }
  });
});

describe("unset environment variables", () => {
  it("run, --dry-run, ping and list-agents refuse them with their positions (exit 2, nothing called); validate does not check them", async () => {
    const own = await startAgentServer({ recordRequests: true });
    try {
      const ws = await workspace();
      await ws.writeYaml("services.yaml", {
        services: {
          svc: {
            headers: {
              authorization: "Bearer ${{ env.AGENTCTL_E2E_TOKEN }}",
              "x-api-key": "${{ env.AGENTCTL_E2E_KEY }}",
            },
            instances: [{ endpoint: own.url }],
          },
        },
      });
      await ws.writeYaml("p.yaml", {
        name: "unset",
        services: "./services.yaml",
        tasks: [
          { id: "a", service: "svc", agent: "echo", input: { task: "${{ env.AGENTCTL_E2E_INPUT }}" } },
          {
            id: "b",
            service: "svc",
            agent: "echo",
            input: { context: { k: "x ${{ env.AGENTCTL_E2E_INPUT }}" } },
          },
          { id: "c", service: "svc", agent: "echo", input: { task: "${{ env.AGENTCTL_E2E_KEY }}" } },
        ],
      });
      // Only the key is set: the header's token and the inputs' variable are not.
      const env = { AGENTCTL_E2E_KEY: API_KEY, AGENTCTL_E2E_TOKEN: undefined, AGENTCTL_E2E_INPUT: undefined };
      const [run, dryRun, ping, list, validate] = await Promise.all([
        runCli(["run", "p.yaml"], { cwd: ws.dir, env }),
        runCli(["run", "p.yaml", "--dry-run"], { cwd: ws.dir, env }),
        runCli(["ping", "--services", "services.yaml"], { cwd: ws.dir, env }),
        runCli(["list-agents", "--services", "services.yaml"], { cwd: ws.dir, env }),
        runCli(["validate", "p.yaml"], { cwd: ws.dir, env }),
      ]);
      for (const r of [run, dryRun, ping, list]) {
        expect(r.exitCode, r.stderr).toBe(2);
        expect(r.stderr).toContain("services.yaml:4:29: environment variable AGENTCTL_E2E_TOKEN is not set");
        expect(r.stderr).not.toMatch(/internal error|\n\s+at /);
        expect(r.stdout).toBe("");
      }
      for (const r of [run, dryRun]) {
        expect(r.stderr).toContain("p.yaml:8:13: environment variable AGENTCTL_E2E_INPUT is not set");
        expect(r.stderr).toContain("p.yaml:14:14: environment variable AGENTCTL_E2E_INPUT is not set");
        expect(r.stderr).not.toContain("AGENTCTL_E2E_KEY is not set");
      }
      expect(await ws.files(".agentctl")).toEqual([]);
      expect(validate.exitCode, validate.stderr).toBe(0);
      expect(own.requests).toEqual([]);
    } finally {
      await own.close();
    }
  });

  it("a header value with a control character (a newline from a variable): exit 2 before any call, the value not shown", async () => {
    const own = await startAgentServer({ recordRequests: true });
    try {
      const ws = await workspace();
      await ws.writeYaml("p.yaml", {
        name: "newline",
        services: {
          svc: {
            headers: { authorization: "Bearer ${{ env.AGENTCTL_E2E_TOKEN }}" },
            instances: [{ endpoint: own.url }],
          },
        },
        tasks: [{ id: "a", service: "svc", agent: "echo", input: { task: "x" } }],
      });
      const env = { AGENTCTL_E2E_TOKEN: "tok-line-1\ntok-line-2" };
      const r = await runCli(["run", "p.yaml"], { cwd: ws.dir, env });
      expect(r.exitCode, r.stderr).toBe(2);
      expect(r.stderr).toContain("service svc, header authorization: the value holds a control character");
      expect(r.stderr).not.toContain("tok-line");
      expect(own.requests).toEqual([]);
    } finally {
      await own.close();
    }
  });
});
