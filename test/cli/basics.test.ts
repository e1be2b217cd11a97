import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type AgentServer, startAgentServer } from "../../src/server/index.js";
import {
  BIN,
  PACKAGE_VERSION,
  parseJsonOutput,
  ROOT,
  removeWorkspaces,
  runCli,
  servicesOf,
  type Workspace,
  workspace,
} from "../helpers/cli.js";

/** Exit codes, --version, --help, schema, --dry-run, where journals go. */

let server: AgentServer;
/** Only usage errors point at it: it must never receive a request. */
let untouched: AgentServer;
let ws: Workspace;

beforeAll(async () => {
  server = await startAgentServer({ recordRequests: true });
  untouched = await startAgentServer({ recordRequests: true });
  ws = await workspace();
  await ws.writeYaml("usage.yaml", {
    name: "usage",
    services: servicesOf([untouched.url]),
    tasks: [{ id: "never", service: "svc", agent: "echo" }],
  });
  await ws.writeYaml("ok.yaml", {
    name: "ok",
    services: servicesOf([server.url]),
    tasks: [
      { id: "first", service: "svc", agent: "upper", input: { task: "ok" } },
      { id: "second", service: "svc", agent: "echo", needs: ["first"], input: { task: "dry" } },
      { id: "third", service: "svc", agent: "echo", needs: ["first"], input: { task: "dry" } },
      { id: "last", service: "svc", agent: "echo", needs: ["second", "third"], input: { task: "dry" } },
    ],
  });
  await ws.writeYaml("failing.yaml", {
    name: "failing",
    services: servicesOf([server.url]),
    tasks: [{ id: "nope", service: "svc", agent: "fail" }],
  });
});

afterAll(async () => {
  expect(untouched.requests).toEqual([]);
  await Promise.all([server.close(), untouched.close()]);
  await removeWorkspaces();
});

describe.concurrent("the command line", () => {
  it("is bin/agentctl.js, as SPEC §10 names it in package.json and for `node bin/agentctl.js`", () => {
    const pkg = JSON.parse(readFileSync(join(ROOT, "package.json"), "utf8"));
    expect(pkg.bin).toEqual({ agentctl: "bin/agentctl.js" });
    expect(BIN).toBe(join(ROOT, "bin", "agentctl.js"));
  });

  it("--version (and -V) prints the package.json version, the one the user-agent carries", async () => {
    const [long, short] = await Promise.all([runCli(["--version"]), runCli(["-V"])]);
    expect(long.exitCode).toBe(0);
    expect(long.stdout).toBe(`${PACKAGE_VERSION}\n`);
    expect(short.stdout).toBe(long.stdout);
    const ws2 = await workspace();
    await ws2.writeYaml("ua.yaml", {
      name: "ua",
      services: servicesOf([server.url]),
      tasks: [{ id: "ua_probe", service: "svc", agent: "echo" }],
    });
    const r = await runCli(["run", "ua.yaml", "--output", "json"], { cwd: ws2.dir });
    expect(r.exitCode, r.stderr).toBe(0);
    const runId = parseJsonOutput(r).run_id;
    const call = server.requests.find((q) => q.headers["idempotency-key"] === `${runId}:ua_probe`)!;
    expect(call.headers["user-agent"]).toBe(`agentctl/${long.stdout.trim()}`);
    expect(call.headers["content-type"]).toMatch(/^application\/json/);
    expect(call.headers.accept).toMatch(/application\/json/);
    expect(call.headers.traceparent).toMatch(/^00-[0-9a-f]{32}-[0-9a-f]{16}-[0-9a-f]{2}$/);
  });

  it("--help exits 0 with usage on stdout, for the program and for a command", async () => {
    const [top, run] = await Promise.all([runCli(["--help"]), runCli(["run", "--help"])]);
    expect(top.exitCode).toBe(0);
    expect(top.stdout).toMatch(/Usage: agentctl/);
    for (const cmd of ["run", "ping", "list-agents", "validate", "serve", "schema"])
      expect(top.stdout).toContain(cmd);
    expect(run.exitCode).toBe(0);
    for (const flag of [
      "--services",
      "--var",
      "--concurrency",
      "--deadline",
      "--output",
      "--junit",
      "--dry-run",
    ])
      expect(run.stdout).toContain(flag);
  });

  it("schema prints one valid JSON Schema of pipeline files", async () => {
    const r = await runCli(["schema"]);
    expect(r.exitCode).toBe(0);
    const schema = parseJsonOutput(r);
    expect(schema.$schema).toMatch(/json-schema\.org/);
    expect(schema.type).toBe("object");
    expect(schema.required).toEqual(expect.arrayContaining(["name", "tasks"]));
    expect(Object.keys(schema.properties)).toEqual(
      expect.arrayContaining([
        "name",
        "services",
        "mode",
        "concurrency",
        "timeout",
        "retries",
        "circuit_breaker",
        "load_balancing",
        "max_response_bytes",
        "vars",
        "tasks",
      ]),
    );
    // Every $ref resolves inside the document.
    const refs = [...r.stdout.matchAll(/"\$ref":\s*"#\/\$defs\/([^"]+)"/g)].map((m) => m[1]!);
    expect(refs.length).toBeGreaterThan(0);
    for (const ref of refs) expect(schema.$defs, ref).toHaveProperty(ref);
    const task = schema.$defs.task;
    expect(Object.keys(task.properties)).toEqual(
      expect.arrayContaining([
        "id",
        "service",
        "agent",
        "needs",
        "input",
        "for_each",
        "async",
        "timeout",
        "retries",
        "expect",
      ]),
    );
  });

  it("exit 0 when every task succeeded, 1 when one failed", async () => {
    const [ok, failing] = await Promise.all([
      runCli(["run", "ok.yaml", "-q"], { cwd: ws.dir }),
      runCli(["run", "failing.yaml", "-q"], { cwd: ws.dir }),
    ]);
    expect(ok.exitCode, ok.stderr).toBe(0);
    expect(failing.exitCode, failing.stderr).toBe(1);
  });

  const usage: Array<[string, string[]]> = [
    ["an unknown flag", ["run", "usage.yaml", "--bogus"]],
    ["an unknown command", ["frobnicate"]],
    ["a missing pipeline argument", ["run"]],
    ["a pipeline file that does not exist", ["run", "missing.yaml"]],
    ["--concurrency 0", ["run", "usage.yaml", "--concurrency", "0"]],
    ["--concurrency abc", ["run", "usage.yaml", "--concurrency", "abc"]],
    ["--retries -1", ["run", "usage.yaml", "--retries", "-1"]],
    ["--timeout soon", ["run", "usage.yaml", "--timeout", "soon"]],
    ["--deadline 10 minutes", ["run", "usage.yaml", "--deadline", "10 minutes"]],
    ["--output xml", ["run", "usage.yaml", "--output", "xml"]],
    ["--var without =", ["run", "usage.yaml", "--var", "novalue"]],
    ["--force without --resume", ["run", "usage.yaml", "--force"]],
    ["--resume of an unknown run", ["run", "usage.yaml", "--resume", "no-such-run"]],
    ["--resume of a path", ["run", "usage.yaml", "--resume", "../../etc/passwd"]],
    ["validate of a file that does not exist", ["validate", "missing.yaml"]],
  ];
  for (const [what, args] of usage) {
    it(`exit 2 for ${what}, nothing called, no stack trace`, async () => {
      const r = await runCli(args, { cwd: ws.dir });
      expect(r.exitCode, r.stderr).toBe(2);
      expect(r.stdout).toBe("");
      expect(r.stderr.length).toBeGreaterThan(0);
      expect(r.stderr).not.toMatch(/\n\s+at .*:\d+:\d+/);
      expect(untouched.requests).toEqual([]);
    });
  }

  it("a services path in a pipeline is relative to the pipeline file, not to the current directory", async () => {
    const w = await workspace();
    await w.writeYaml("deep/er/services.yaml", { services: servicesOf([server.url]) });
    await w.writeYaml("deep/er/pipeline.yaml", {
      name: "relative",
      services: "./services.yaml",
      tasks: [{ id: "only", service: "svc", agent: "upper", input: { task: "rel" } }],
    });
    const r = await runCli(["run", "deep/er/pipeline.yaml", "--output", "json"], { cwd: w.dir });
    expect(r.exitCode, r.stderr).toBe(0);
    expect(parseJsonOutput(r).tasks[0].output.result).toBe("REL");
    const v = await runCli(["validate", "er/pipeline.yaml"], { cwd: w.path("deep") });
    expect(v.exitCode, v.stderr).toBe(0);
  });

  it("--dry-run prints the plan (order and dependencies), calls nothing but /health, writes no journal", async () => {
    const dry = await workspace();
    const probe = await startAgentServer({ recordRequests: true });
    try {
      await dry.writeYaml("probe.yaml", {
        name: "dry",
        services: servicesOf([probe.url]),
        tasks: [
          { id: "first", service: "svc", agent: "upper" },
          { id: "second", service: "svc", agent: "echo", needs: ["first"] },
          { id: "third", service: "svc", agent: "echo", needs: ["first"] },
          { id: "last", service: "svc", agent: "echo", needs: ["second", "third"] },
        ],
      });
      const r = await runCli(["run", "probe.yaml", "--dry-run"], { cwd: dry.dir });
      expect(r.exitCode, r.stderr).toBe(0);
      const text = r.stdout;
      for (const id of ["first", "second", "third", "last"]) expect(text).toContain(id);
      // Order: each task after what it needs; the dependencies are shown.
      const at = (id: string) => text.search(new RegExp(`\\b${id}\\b`));
      expect(at("first")).toBeLessThan(at("second"));
      expect(at("second")).toBeLessThan(at("last"));
      expect(at("third")).toBeLessThan(at("last"));
      expect(text).toMatch(/last.*second, third/);
      expect(probe.requests.map((q) => `${q.method} ${q.path}`)).toEqual(["GET /health"]);
      expect(probe.agentRuns).toBe(0);
      expect(existsSync(dry.path(".agentctl"))).toBe(false);
      expect(r.stderr).not.toMatch(/^run \S+:/m);

      // The same plan as one JSON document with --output json.
      const j = await runCli(["run", "probe.yaml", "--dry-run", "--output", "json"], { cwd: dry.dir });
      expect(j.exitCode, j.stderr).toBe(0);
      // Every planned task: its service and agent, what it waits for, its level; no for_each, no async.
      const step = (id: string, agent: string, needs: string[], level: number) => ({
        id,
        service: "svc",
        agent,
        needs,
        level,
        for_each: false,
        async: false,
      });
      expect(JSON.parse(j.stdout)).toEqual({
        pipeline: "dry",
        mode: "parallel",
        levels: [["first"], ["second", "third"], ["last"]],
        tasks: [
          step("first", "upper", [], 0),
          step("second", "echo", ["first"], 1),
          step("third", "echo", ["first"], 1),
          step("last", "echo", ["second", "third"], 2),
        ],
      });
      expect(probe.agentRuns).toBe(0);
    } finally {
      await probe.close();
    }
  });

  it("journals go to .agentctl/runs/<run_id>.jsonl under the current directory, or under --state-dir", async () => {
    const runs = await Promise.all(
      [".agentctl", "custom/state"].map(async (stateDir) => {
        const w = await workspace();
        await w.writeYaml("j.yaml", {
          name: "journaled",
          services: servicesOf([server.url]),
          tasks: [
            { id: "a", service: "svc", agent: "echo" },
            { id: "b", service: "svc", agent: "echo", needs: ["a"] },
            { id: "c", service: "svc", agent: "echo" },
            { id: "d", service: "svc", agent: "upper", needs: ["b", "c"] },
          ],
        });
        const flags = stateDir === ".agentctl" ? [] : ["--state-dir", stateDir];
        const r = await runCli(["run", "j.yaml", "--output", "json", ...flags], { cwd: w.dir });
        return { w, r, stateDir };
      }),
    );
    for (const { w, r, stateDir } of runs) {
      expect(r.exitCode, r.stderr).toBe(0);
      const doc = parseJsonOutput(r);
      expect(r.stderr).toContain(`run ${doc.run_id}`);
      expect(await w.files(".")).toEqual([`${stateDir}/runs/${doc.run_id}.jsonl`, "j.yaml"].sort());
      const lines = (await w.read(`${stateDir}/runs/${doc.run_id}.jsonl`)).trim().split("\n");
      for (const line of lines) JSON.parse(line);
      // The run, then a start and an end per task, and the run's end.
      expect(lines.length).toBeGreaterThanOrEqual(1 + 2 * 4 + 1);
    }
  });

  // /proc: Node's own recursive mkdir spins there forever, deaf to signals (procfs says ENOENT
  // for a child of a directory that exists).
  it.each([
    ["a file", "a-file", /cannot keep journals in a-file\/runs: ENOTDIR/],
    ["under a file", "a-file/state", /cannot keep journals in a-file\/state\/runs: ENOTDIR/],
    [
      "under /proc",
      "/proc/agentctl-no/state",
      /cannot keep journals in \/proc\/agentctl-no\/state\/runs: ENOENT/,
    ],
  ])(
    "a --state-dir that cannot hold journals (%s): exit 2, one clear line, nothing called",
    async (_, dir, message) => {
      const w = await workspace();
      await w.write("a-file", "");
      await w.writeYaml("j.yaml", {
        name: "nowhere",
        services: servicesOf([untouched.url]),
        tasks: [{ id: "a", service: "svc", agent: "echo" }],
      });
      const r = await runCli(["run", "j.yaml", "--state-dir", dir], { cwd: w.dir, timeout: 10_000 });
      expect(r.exitCode, r.stderr).toBe(2);
      expect(r.stderr).toMatch(message);
      expect(r.stderr).not.toMatch(/\n\s+at .*:\d+:\d+/);
      // Not even a health probe: `untouched` is checked after all tests.
    },
  );
});
