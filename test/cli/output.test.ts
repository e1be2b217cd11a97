// biome-ignore-all lint/suspicious/noExplicitAny: the tests read the CLI's JSON output loosely
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type AgentServer, startAgentServer } from "../../src/server/index.js";
import {
  ANSI,
  type CliResult,
  parseJsonOutput,
  removeWorkspaces,
  runCli,
  stripAnsi,
  type Workspace,
  workspace,
} from "../helpers/cli.js";
import { type FakeAgentServer, startFakeAgentServer } from "../helpers/fake-agent-server.js";
import { findAll, parseXml } from "./xml.js";

/**
 * What `run` prints: the JSON document of SPEC §6 key by key, the table for people (with and
 * without colours), the JUnit file, and the split between stdout (the result only) and stderr.
 */

let ref: AgentServer;
let fake: FakeAgentServer;
let ws: Workspace;

/** A server error body no report should choke on: markup, entities, CDATA end, control characters. */
const HOSTILE_BODY = `<h1 class="x">Service "Unavailable"</h1> & it's ]]> over\u0001\u0007\u001b[2J\u001b[31mred\u001b[0m\r\nnext line`;

beforeAll(async () => {
  ref = await startAgentServer({ recordRequests: true });
  fake = await startFakeAgentServer();
  fake.route("POST /api/v1/agents/unavailable/execute", { status: 503, body: HOSTILE_BODY });
  fake.route("POST /api/v1/agents/hang/execute", { hang: true });
  ws = await workspace();
  const services = {
    ref: { instances: [{ id: "ref-1", endpoint: ref.url }] },
    fake: { instances: [{ id: "fake-1", endpoint: fake.url }] },
  };
  // Every kind of outcome, in a file order unlike the order they finish in.
  await ws.writeYaml("shapes.yaml", {
    name: "shapes",
    retries: 0,
    services,
    tasks: [
      { id: "zeta", service: "ref", agent: "sleep", input: { task: "z", context: { ms: 300 } } },
      { id: "alpha", service: "ref", agent: "echo", input: { task: "a" } },
      {
        id: "fan",
        service: "ref",
        agent: "upper",
        for_each: ["p", "q", "r"],
        input: { task: "${{ item }}" },
      },
      { id: "broken", service: "ref", agent: "fail" },
      { id: "http", service: "fake", agent: "unavailable" },
      { id: "check", service: "ref", agent: "upper", input: { task: "abc" }, expect: { result: "nope" } },
      {
        id: "templ",
        service: "ref",
        agent: "echo",
        needs: ["alpha"],
        for_each: "${{ tasks.alpha.output.result }}",
        input: { task: "${{ item }}" },
      },
      { id: "skipped_one", service: "ref", agent: "echo", needs: ["broken"] },
      { id: "hung", service: "fake", agent: "hang" },
      { id: "after_hung", service: "ref", agent: "echo", needs: ["hung"] },
    ],
  });
  await ws.writeYaml("small.yaml", {
    name: "small",
    services,
    tasks: [
      { id: "good", service: "ref", agent: "upper", input: { task: "fine" } },
      { id: "bad", service: "ref", agent: "fail" },
      { id: "later", service: "ref", agent: "echo", needs: ["bad"] },
    ],
  });
});

afterAll(async () => {
  await Promise.all([ref.close(), fake.close()]);
  await removeWorkspaces();
});

const SHAPES_ORDER = [
  "zeta",
  "alpha",
  "fan",
  "broken",
  "http",
  "check",
  "templ",
  "skipped_one",
  "hung",
  "after_hung",
];
const RFC3339 = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:\d{2})$/;
const OUTPUT_KEYS = [
  "result",
  "status",
  "message",
  "reasoning_steps",
  "tool_calls",
  "latency",
  "timestamp",
  "metadata",
];

function runShapes(args: string[], env: Record<string, string | undefined> = {}): Promise<CliResult> {
  return runCli(["run", "shapes.yaml", "--deadline", "3s", ...args], { cwd: ws.dir, env });
}

function runIdOnStderr(r: CliResult): string {
  const m = /^run (\S+): /m.exec(stripAnsi(r.stderr));
  expect(m, r.stderr).not.toBeNull();
  return m![1]!;
}

function expectAgentOutput(o: any): void {
  expect(Object.keys(o).sort()).toEqual(expect.arrayContaining([...OUTPUT_KEYS].sort()));
  for (const k of Object.keys(o)) expect([...OUTPUT_KEYS, "token_usage"]).toContain(k);
  expect(o.status).toMatch(/^(success|partial)$/);
  expect(Number.isInteger(o.latency)).toBe(true);
  expect(o.timestamp).toMatch(RFC3339);
}

describe.concurrent("run output", () => {
  it("--output json: the SPEC §6 document, every key, tasks in file order, errors with codes; --junit alongside", async () => {
    const before = Date.now();
    // FORCE_COLOR must not put colours into JSON.
    const r = await runShapes(["--output", "json", "--junit", "report.xml"], {
      FORCE_COLOR: "1",
      NO_COLOR: undefined,
    });
    expect(r.exitCode, r.stderr).toBe(1);
    expect(r.stdout).not.toMatch(ANSI);
    const doc = parseJsonOutput(r);
    expect(Object.keys(doc).sort()).toEqual(
      ["pipeline", "run_id", "status", "started_at", "duration_ms", "summary", "tasks"].sort(),
    );
    expect(doc.pipeline).toBe("shapes");
    expect(doc.run_id).toBe(runIdOnStderr(r));
    expect(doc.status).toBe("failed"); // the deadline passed: failed, not interrupted
    expect(doc.started_at).toMatch(RFC3339);
    expect(Date.parse(doc.started_at)).toBeGreaterThanOrEqual(before - 1000);
    expect(Number.isInteger(doc.duration_ms)).toBe(true);
    expect(doc.duration_ms).toBeGreaterThanOrEqual(2900);
    expect(doc.summary).toEqual({ total: 10, succeeded: 3, failed: 4, skipped: 1, cancelled: 2 });
    expect(Object.keys(doc.summary)).toEqual(["total", "succeeded", "failed", "skipped", "cancelled"]);
    expect(doc.tasks.map((t: any) => t.id)).toEqual(SHAPES_ORDER);

    const allowed = [
      "id",
      "service",
      "agent",
      "status",
      "instance",
      "attempts",
      "duration_ms",
      "output",
      "outputs",
      "error",
    ];
    for (const t of doc.tasks) {
      for (const k of Object.keys(t)) expect(allowed, `${t.id}.${k}`).toContain(k);
      expect(typeof t.service).toBe("string");
      expect(typeof t.agent).toBe("string");
      expect(Number.isInteger(t.attempts)).toBe(true);
      expect(Number.isInteger(t.duration_ms)).toBe(true);
      if (t.status === "succeeded") {
        expect(t.error, t.id).toBeUndefined();
      } else {
        expect(
          Object.keys(t.error).every((k) => ["code", "message", "status"].includes(k)),
          t.id,
        ).toBe(true);
        expect(typeof t.error.code).toBe("string");
        expect(t.error.message.length).toBeGreaterThan(0);
      }
    }
    const t = Object.fromEntries(doc.tasks.map((x: any) => [x.id, x]));
    const status = (id: string) => [t[id].status, t[id].error?.code];
    expect(status("zeta")).toEqual(["succeeded", undefined]);
    expect(status("alpha")).toEqual(["succeeded", undefined]);
    expect(status("fan")).toEqual(["succeeded", undefined]);
    expect(status("broken")).toEqual(["failed", "agent_failed"]);
    expect(status("http")).toEqual(["failed", "http_status"]);
    expect(status("check")).toEqual(["failed", "assertion"]);
    expect(status("templ")).toEqual(["failed", "template"]);
    expect(status("skipped_one")).toEqual(["skipped", "skipped"]);
    expect(status("hung")).toEqual(["cancelled", "cancelled"]);
    expect(status("after_hung")).toEqual(["cancelled", "cancelled"]);

    expect(t.zeta).toMatchObject({ service: "ref", agent: "sleep", instance: "ref-1", attempts: 1 });
    expect(t.zeta.duration_ms).toBeGreaterThanOrEqual(250);
    expectAgentOutput(t.zeta.output);
    expect(t.zeta.outputs).toBeUndefined();
    expect(t.fan.output).toBeUndefined();
    expect(t.fan.outputs).toHaveLength(3);
    t.fan.outputs.forEach(expectAgentOutput);
    expect(t.fan.outputs.map((o: any) => o.result)).toEqual(["P", "Q", "R"]);
    expect(t.http.error.status).toBe(503);
    expect(t.http.instance).toBe("fake-1");
    expect(t.check.error.message).toMatch(/result/);
    expect(t.check.error.message).toMatch(/nope/);
    expect(t.skipped_one.error.message).toMatch(/broken/);
    expect(t.skipped_one.attempts).toBe(0);
    expect(t.broken.error.status).toBeUndefined();

    // The JUnit report of the same run.
    const xml = await ws.read("report.xml");
    const root = parseXml(xml);
    expect(root.name).toBe("testsuites");
    const suites = findAll(root, "testsuite");
    expect(suites).toHaveLength(1);
    const suite = suites[0]!;
    expect(suite.attrs).toMatchObject({ name: "shapes", tests: "10", failures: "6", skipped: "1" });
    const cases = findAll(suite, "testcase");
    expect(cases.map((c) => c.attrs.name)).toEqual(SHAPES_ORDER);
    for (const c of cases) {
      const kind = t[c.attrs.name!].status as string;
      const failures = c.children.filter((x) => x.name === "failure");
      const skipped = c.children.filter((x) => x.name === "skipped");
      expect([failures.length, skipped.length], c.attrs.name).toEqual(
        kind === "failed" || kind === "cancelled" ? [1, 0] : kind === "skipped" ? [0, 1] : [0, 0],
      );
      if (failures[0]) expect(failures[0].attrs.type).toBe(t[c.attrs.name!].error.code);
    }
    const http = cases.find((c) => c.attrs.name === "http")!;
    expect(http.children[0]!.attrs.message).toContain('<h1 class="x">Service "Unavailable"</h1> & it\'s ]]>');
  });

  it("table (NO_COLOR): task ids, statuses, summary line, errors with codes; stdout has only the result", async () => {
    const r = await runShapes([]);
    expect(r.exitCode).toBe(1);
    const runId = runIdOnStderr(r);
    expect(r.stdout).not.toMatch(ANSI);
    // Text from a server never reaches the terminal raw (no escapes, no bells).
    expect(r.stdout).not.toMatch(/[\u0000-\u0008\u000B-\u001F\u007F]/);
    const lines = r.stdout.split("\n");
    for (const id of SHAPES_ORDER) {
      expect(
        lines.some((l) => new RegExp(`^│ ${id}\\s+│`).test(l)),
        id,
      ).toBe(true);
    }
    const row = (id: string) => lines.find((l) => new RegExp(`^│ ${id}\\s+│`).test(l))!;
    expect(row("zeta")).toMatch(/│ succeeded\s+│/);
    expect(row("broken")).toMatch(/│ failed\s+│/);
    expect(row("skipped_one")).toMatch(/│ skipped\s+│/);
    expect(row("hung")).toMatch(/│ cancelled\s+│/);
    expect(row("fan")).toMatch(/3 items/);
    // Rows in file order.
    const rowIndex = SHAPES_ORDER.map((id) => lines.indexOf(row(id)));
    expect(rowIndex).toEqual([...rowIndex].sort((a, b) => a - b));
    expect(r.stdout).toMatch(
      new RegExp(
        `^shapes: failed — 10 tasks: 3 succeeded, 4 failed, 1 skipped, 2 cancelled in \\S+ \\(run ${runId}\\)$`,
        "m",
      ),
    );
    expect(r.stdout).toMatch(/^ {2}broken: \[agent_failed\] /m);
    // The status once: the message says it ("HTTP 503 from …").
    expect(r.stdout).toMatch(/^ {2}http: \[http_status\] HTTP 503 from /m);
    expect(r.stdout).toMatch(/^ {2}check: \[assertion\] /m);
    expect(r.stdout).toMatch(/^ {2}templ: \[template\] /m);
    expect(r.stdout).toMatch(/^ {2}hung: \[cancelled\] /m);
    expect(r.stdout).toMatch(/^ {2}after_hung: \[cancelled\] /m);
    expect(r.stdout).toMatch(/^ {2}skipped_one: .*broken/m);
    // Progress and logs are on stderr, never on stdout.
    expect(r.stdout).not.toMatch(/^run \S+: shapes/m);
    expect(r.stderr).not.toContain("│");
  });

  it("table with FORCE_COLOR=1 has colours; --no-color wins over FORCE_COLOR", async () => {
    const [colored, plain, plainNoColorEnv] = await Promise.all([
      runCli(["run", "small.yaml"], { cwd: ws.dir, env: { FORCE_COLOR: "1", NO_COLOR: undefined } }),
      runCli(["run", "small.yaml", "--no-color"], {
        cwd: ws.dir,
        env: { FORCE_COLOR: "1", NO_COLOR: undefined },
      }),
      runCli(["run", "small.yaml"], { cwd: ws.dir, env: { NO_COLOR: "1" } }),
    ]);
    for (const r of [colored, plain, plainNoColorEnv]) {
      expect(r.exitCode, r.stderr).toBe(1);
      expect(stripAnsi(r.stdout)).toMatch(
        /small: failed — 3 tasks: 1 succeeded, 1 failed, 1 skipped, 0 cancelled/,
      );
    }
    expect(colored.stdout).toMatch(ANSI);
    expect(stripAnsi(colored.stdout)).toMatch(/│ good\s+│/);
    expect(plain.stdout).not.toMatch(ANSI);
    expect(plain.stderr).not.toMatch(ANSI);
    expect(plainNoColorEnv.stdout).not.toMatch(ANSI);
    expect(plainNoColorEnv.stderr).not.toMatch(ANSI);
  });

  it("--verbose logs every attempt to stderr, --quiet only the run id; stdout is the JSON either way", async () => {
    const [verbose, quiet] = await Promise.all([
      runCli(["run", "small.yaml", "--output", "json", "--verbose"], { cwd: ws.dir }),
      runCli(["run", "small.yaml", "--output", "json", "--quiet"], { cwd: ws.dir }),
    ]);
    for (const r of [verbose, quiet]) {
      expect(r.exitCode).toBe(1);
      expect(parseJsonOutput(r).summary).toEqual({
        total: 3,
        succeeded: 1,
        failed: 1,
        skipped: 1,
        cancelled: 0,
      });
    }
    expect(verbose.stderr).toMatch(/^good: attempt 1 on ref-1 \(http:\/\/127\.0\.0\.1:\d+\)$/m);
    expect(verbose.stderr).toMatch(/^bad: attempt 1 on ref-1/m);
    expect(verbose.stderr).toMatch(/^bad: failed \[agent_failed\]/m);
    // Only the run id (SPEC §8: printed at the start, needed to resume), no progress or logs.
    expect(quiet.stderr.trim().split("\n")).toEqual([expect.stringMatching(/^run \S+: small\b/)]);
  });

  it("--verbose says what follows each failed attempt: the wait, or why the call stops there", async () => {
    await ws.writeYaml("breaker.yaml", {
      name: "breaker",
      retries: 3,
      services: {
        fake: {
          circuit_breaker: { max_failures: 2, open_for: "1m" },
          instances: [{ id: "fake-1", endpoint: fake.url }],
        },
      },
      tasks: [{ id: "down", service: "fake", agent: "unavailable" }],
    });
    const r = await runCli(["run", "breaker.yaml", "--output", "json", "--verbose"], { cwd: ws.dir });
    expect(r.exitCode, r.stderr).toBe(1);
    expect(r.stderr).toMatch(/^down: attempt 1 on fake-1 failed \[http_status\] .*; retrying in \d+ ms$/m);
    expect(r.stderr).toMatch(
      /^down: attempt 2 on fake-1 failed \[http_status\] .*; not retried: the circuit of every instance that could take it is open$/m,
    );
    expect(r.stderr).toMatch(/^down: failed \[http_status\]/m);
  });

  it("a --junit path that cannot be written: the result is still printed, a clear error, exit 1", async () => {
    await ws.write("a-directory/keep", "");
    const r = await runCli(["run", "small.yaml", "--output", "json", "--junit", "a-directory"], {
      cwd: ws.dir,
    });
    expect(r.exitCode).toBe(1);
    expect(parseJsonOutput(r).summary.total).toBe(3);
    expect(r.stderr).toMatch(/cannot write the JUnit report a-directory/);
    expect(r.stderr).not.toMatch(/\n\s+at .*:\d+:\d+/);
  });

  it("a --junit path under /proc (where Node's recursive mkdir would spin): a clear error, exit 1", async () => {
    const r = await runCli(["run", "small.yaml", "--output", "json", "--junit", "/proc/agentctl-no/r.xml"], {
      cwd: ws.dir,
      timeout: 10_000,
    });
    expect(r.exitCode).toBe(1);
    expect(parseJsonOutput(r).summary.total).toBe(3);
    expect(r.stderr).toMatch(/cannot write the JUnit report \/proc\/agentctl-no\/r.xml: ENOENT/);
  });

  it("the table of a successful run, and its JUnit report without failures", async () => {
    await ws.writeYaml("green.yaml", {
      name: "green",
      services: { ref: { instances: [{ id: "ref-1", endpoint: ref.url }] } },
      tasks: [
        { id: "one", service: "ref", agent: "wordcount", input: { task: "a b c" } },
        { id: "two", service: "ref", agent: "upper", needs: ["one"], input: { task: "x" } },
      ],
    });
    const r = await runCli(["run", "green.yaml", "--junit", "out/green.xml"], { cwd: ws.dir });
    expect(r.exitCode, r.stderr).toBe(0);
    expect(r.stdout).toMatch(
      /^green: succeeded — 2 tasks: 2 succeeded, 0 failed, 0 skipped, 0 cancelled in /m,
    );
    expect(r.stdout).toMatch(/│ one\s+│ ref\/wordcount\s+│ ref-1\s+│ succeeded\s+│ 1\s+│/);
    expect(r.stdout).toMatch(/\{"words":3\}/);
    expect(r.stdout).not.toMatch(/Errors:/);
    const root = parseXml(await ws.read("out/green.xml"));
    const cases = findAll(root, "testcase");
    expect(cases.map((c) => [c.attrs.name, c.children.length])).toEqual([
      ["one", 0],
      ["two", 0],
    ]);
    expect(findAll(root, "testsuite")[0]!.attrs).toMatchObject({ tests: "2", failures: "0", skipped: "0" });
  });
});
