import { describe, expect, it } from "vitest";
import type { AgentServer } from "../../src/server/index.js";
import { runCli, useServerAndWorkspace, type Workspace } from "../helpers/cli.js";

/**
 * `agentctl validate` (and `run` on the same files): every problem as `file:line:column: message`
 * on stderr, all of them at once, exit 2, and nothing called — not even a health check.
 */

let server: AgentServer;
let ws: Workspace;

useServerAndWorkspace((s, w) => {
  server = s;
  ws = w;
});

/** The head of a pipeline whose task `a` ends on line 9 (tests append lines 10, 11, …). */
function head(): string {
  return [
    "name: t", // 1
    "services:", // 2
    "  svc:", // 3
    "    instances:", // 4
    `      - endpoint: ${server.url}`, // 5
    "tasks:", // 6
    "  - id: a", // 7
    "    service: svc", // 8
    "    agent: echo", // 9
  ].join("\n");
}

/** Diagnostic lines of stderr (`file:line:column: message`). */
function diagnostics(stderr: string): string[] {
  return stderr.split("\n").filter((l) => /^[^:\s]+\.yaml:\d+:\d+: /.test(l));
}

interface Case {
  name: string;
  file: string;
  text: () => string;
  /** Run with these extra arguments. */
  args?: string[];
  /** The exact `file:line:column` and the start of the message. */
  where: string;
  message: RegExp;
}

const cases: Case[] = [
  {
    name: "unknown key",
    file: "unknown-key.yaml",
    text: () => `${head()}\n    bogus: 1\n`,
    where: "unknown-key.yaml:10:5",
    message: /unknown key "bogus"/,
  },
  {
    name: "unknown top-level key (with a suggestion)",
    file: "unknown-top.yaml",
    text: () => `${head()}\nnmae: x\n`,
    where: "unknown-top.yaml:10:1",
    message: /unknown key "nmae".*"name"/,
  },
  {
    name: "missing required field",
    file: "missing-field.yaml",
    text: () => `${head()}\n  - id: b\n    service: svc\n`,
    where: "missing-field.yaml:10:5",
    message: /missing required key "agent"/,
  },
  {
    name: "duplicate task id",
    file: "duplicate.yaml",
    text: () => `${head()}\n  - id: a\n    service: svc\n    agent: echo\n`,
    where: "duplicate.yaml:10:9",
    message: /duplicate task id "a".*line 7/,
  },
  {
    name: "unknown task in needs",
    file: "unknown-needs.yaml",
    text: () => `${head()}\n    needs: [nope]\n`,
    where: "unknown-needs.yaml:10:13",
    message: /unknown task "nope" in needs/,
  },
  {
    name: "dependency cycle",
    file: "cycle.yaml",
    text: () => `${head()}\n    needs: [b]\n  - id: b\n    service: svc\n    agent: echo\n    needs: [a]\n`,
    where: "cycle.yaml:10:13",
    message: /cycle.*a → b → a/,
  },
  {
    name: "bad duration",
    file: "duration.yaml",
    text: () => `${head()}\n    timeout: 3 parsecs\n`,
    where: "duration.yaml:10:14",
    message: /duration/,
  },
  {
    name: "bad duration in input.options.timeout",
    file: "option-duration.yaml",
    text: () => `${head()}\n    input:\n      options: { timeout: soon }\n`,
    where: "option-duration.yaml:11:27",
    message: /duration/,
  },
  {
    name: "expression with an unknown var (column of the expression inside the string)",
    file: "expr-var.yaml",
    text: () => `${head()}\n    input:\n      task: "hello \${{ vars.missing }}"\n`,
    where: "expr-var.yaml:11:20",
    message: /unknown var "missing"/,
  },
  {
    name: "expression that is not a path (no code is evaluated)",
    file: "expr-syntax.yaml",
    text: () => `${head()}\n    input:\n      task: "\${{ 1 + 1 }}"\n`,
    where: "expr-syntax.yaml:11:18",
    message: /expression/,
  },
  {
    name: "unknown service",
    file: "unknown-service.yaml",
    text: () => `${head()}\n  - id: b\n    service: other\n    agent: echo\n`,
    where: "unknown-service.yaml:11:14",
    message: /unknown service "other"/,
  },
  {
    name: "missing services file named by the pipeline",
    file: "missing-services.yaml",
    text: () => "name: t\nservices: ./gone.yaml\ntasks:\n  - id: a\n    service: svc\n    agent: echo\n",
    where: "missing-services.yaml:2:11",
    message: /cannot read services file "\.\/gone\.yaml"/,
  },
];

describe.concurrent("validate: one problem each, at its exact position", () => {
  for (const c of cases) {
    it(c.name, async () => {
      await ws.write(c.file, c.text());
      const before = server.requests.length;
      const r = await runCli(["validate", c.file, ...(c.args ?? [])], { cwd: ws.dir });
      expect(r.exitCode, r.stderr).toBe(2);
      expect(r.stdout).toBe("");
      const lines = diagnostics(r.stderr);
      expect(lines, r.stderr).toHaveLength(1);
      expect(lines[0]!.startsWith(`${c.where}`), r.stderr).toBe(true);
      expect(lines[0]).toMatch(c.message);
      expect(r.stderr).not.toMatch(/\n\s+at .*\(.*:\d+:\d+\)/); // no stack trace
      expect(server.requests.length).toBe(before);
    });
  }

  it("a missing --services file is a file error (exit 2), named on stderr", async () => {
    await ws.write("ok-for-flag.yaml", `${head()}\n`);
    const r = await runCli(["validate", "ok-for-flag.yaml", "--services", "nowhere.yaml"], { cwd: ws.dir });
    expect(r.exitCode).toBe(2);
    expect(r.stderr).toMatch(/^nowhere\.yaml: cannot read the file: no such file$/m);
    expect(r.stdout).toBe("");
  });

  it("an unknown service checked against a --services file, and problems inside that file with its own positions", async () => {
    await ws.write(
      "flag-services.yaml",
      ["services:", "  other:", "    instances:", "      - endpoint: ftp://nope", ""].join("\n"),
    );
    await ws.write("uses-flag.yaml", `${head()}\n`);
    const r = await runCli(["validate", "uses-flag.yaml", "--services", "flag-services.yaml"], {
      cwd: ws.dir,
    });
    expect(r.exitCode).toBe(2);
    const lines = diagnostics(r.stderr);
    expect(
      lines.some((l) => l.startsWith("flag-services.yaml:4:19: ") && /endpoint/.test(l)),
      r.stderr,
    ).toBe(true);
  });

  it("several problems are reported at once, in file order, and `run` refuses the same file without calling anything", async () => {
    const text = [
      "name: many", // 1
      "services:", // 2
      "  svc:", // 3
      "    instances:", // 4
      `      - endpoint: ${server.url}`, // 5
      "timeout: 5x", // 6
      "tasks:", // 7
      "  - id: a", // 8
      "    service: svc", // 9
      "    agent: echo", // 10
      "    bogus: 1", // 11
      "  - id: b", // 12
      "    service: svc", // 13
      "  - id: a", // 14
      "    service: svc", // 15
      "    agent: echo", // 16
      "  - id: c", // 17
      "    service: nope", // 18
      "    agent: echo", // 19
      "    needs: [zzz]", // 20
      "  - id: d", // 21
      "    service: svc", // 22
      "    agent: echo", // 23
      "    needs: [e]", // 24
      "  - id: e", // 25
      "    service: svc", // 26
      "    agent: echo", // 27
      "    needs: [d]", // 28
      "    input:", // 29
      '      task: "${{ vars.undefined_var }}"', // 30
      "",
    ].join("\n");
    await ws.write("many.yaml", text);
    const before = server.requests.length;
    const r = await runCli(["validate", "many.yaml"], { cwd: ws.dir });
    expect(r.exitCode).toBe(2);
    const where = diagnostics(r.stderr).map((l) => l.split(": ")[0]);
    expect(where, r.stderr).toEqual([
      "many.yaml:6:10", // timeout
      "many.yaml:11:5", // unknown key
      "many.yaml:12:5", // missing agent
      "many.yaml:14:9", // duplicate id
      "many.yaml:18:14", // unknown service
      "many.yaml:20:13", // unknown needs
      "many.yaml:24:13", // cycle
      "many.yaml:30:14", // unknown var
    ]);
    expect(r.stderr).toMatch(/8 problems found; nothing was called/);

    const run = await runCli(["run", "many.yaml"], { cwd: ws.dir });
    expect(run.exitCode).toBe(2);
    expect(diagnostics(run.stderr)).toHaveLength(8);
    expect(run.stdout).toBe("");
    expect(server.requests.length).toBe(before);
  });

  it("a valid file: exit 0, one line on stdout, nothing called", async () => {
    await ws.write(
      "valid.yaml",
      `${head()}\n    input:\n      task: "hi \${{ vars.who }}"\nvars:\n  who: you\n`,
    );
    const before = server.requests.length;
    const r = await runCli(["validate", "valid.yaml"], { cwd: ws.dir });
    expect(r.exitCode, r.stderr).toBe(0);
    expect(r.stdout).toMatch(/^valid\.yaml: ok\b.*\n$/);
    expect(r.stdout.split("\n")).toHaveLength(2);
    expect(server.requests.length).toBe(before);
  });

  it("warnings go to stderr as file:line:column: warning: …, and do not change the exit code", async () => {
    await ws.write(
      "warned.yaml",
      `${head()}\n  - { id: b, service: svc, agent: echo, needs: [a, a], poll_interval: 1s }\n`,
    );
    const r = await runCli(["validate", "warned.yaml"], { cwd: ws.dir });
    expect(r.exitCode, r.stderr).toBe(0);
    expect(r.stdout).toMatch(/^warned\.yaml: ok\b/);
    expect(r.stderr).toContain('warned.yaml:10:52: warning: "a" is listed twice in needs');
    expect(r.stderr).toContain("warned.yaml:10:56: warning: poll_interval has no effect without async: true");
  });

  it("a pipeline naming no services: a warning for validate, a problem for run (exit 2, nothing called)", async () => {
    await ws.write("no-services.yaml", "name: t\ntasks:\n  - { id: a, service: svc, agent: echo }\n");
    const sub = "no-services-state";
    const [validate, run, fleet] = await Promise.all([
      runCli(["validate", "no-services.yaml"], { cwd: ws.dir }),
      runCli(["run", "no-services.yaml", "--state-dir", sub], { cwd: ws.dir }),
      runCli(["validate", "no-services.yaml", "--registry", "etcd://127.0.0.1:2379"], { cwd: ws.dir }),
    ]);
    const message = "no-services.yaml:1:1: warning: no services: add services:";
    expect(validate.exitCode, validate.stderr).toBe(0);
    expect(validate.stderr).toContain(message);
    expect(run.exitCode, run.stderr).toBe(2);
    expect(run.stderr).toContain(message.replace("warning: ", ""));
    expect(run.stderr).toContain("nothing was called");
    expect(await ws.files(sub)).toEqual([]);
    // With --registry the services come from etcd: nothing to say.
    expect(fleet.exitCode, fleet.stderr).toBe(0);
    expect(fleet.stderr).toBe("");
  });

  it("the example pipelines of the repository are valid", async () => {
    for (const file of ["pipelines/demo.yaml", "pipelines/sequential.yaml"]) {
      const r = await runCli(["validate", file]);
      expect(r.exitCode, `${file}: ${r.stderr}`).toBe(0);
    }
  });
});
