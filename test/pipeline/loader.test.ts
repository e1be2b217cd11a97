// biome-ignore-all lint/suspicious/noTemplateCurlyInString: ${{ }} is the pipeline expression syntax
import { readFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { describe, expect, it } from "vitest";
import { formatDiagnostic } from "../../src/pipeline/diagnostics.js";
import { type LoadOptions, loadPipeline, parsePipeline } from "../../src/pipeline/loader.js";
import { loadServices, parseServices } from "../../src/pipeline/services-file.js";

const fixtures = join(dirname(fileURLToPath(import.meta.url)), "..", "fixtures", "pipeline");
const fixture = (name: string) => join(fixtures, name);

/** Lines joined with newlines (a trailing one added). */
const yaml = (...lines: string[]) => `${lines.join("\n")}\n`;

const SERVICES = [
  "services:",
  "  svc:",
  "    instances:",
  "      - endpoint: http://127.0.0.1:8081",
  "        agents: [A, B]",
  "      - endpoint: http://127.0.0.1:8082",
  "        agents: [B]",
];

/** The formatted diagnostics for a pipeline made of `lines` (file name p.yaml). */
function problems(lines: string[], options?: LoadOptions): string[] {
  const result = parsePipeline(yaml(...lines), "p.yaml", options);
  if (result.diagnostics.length > 0) expect(result.pipeline).toBeUndefined();
  return result.diagnostics.map((d) => formatDiagnostic(d));
}

/** A pipeline with the services above, `name: p` and the given task lines. */
function withTasks(...taskLines: string[]): string[] {
  return ["name: p", ...SERVICES, "tasks:", ...taskLines];
}
// Line numbers: name 1, services 2-8, tasks: 9, first task line 10.

describe("the SPEC §5 example", () => {
  it("validates clean and is typed", () => {
    const result = loadPipeline(fixture("spec-example.yaml"));
    expect(result.diagnostics).toEqual([]);
    expect(result.warnings).toEqual([]);
    const p = result.pipeline;
    expect(p).toBeDefined();
    if (p === undefined) return;
    expect(p.name).toBe("user-orders");
    expect(p.mode).toBe("parallel");
    expect(p.concurrency).toBe(8);
    expect(p.timeoutMs).toBe(30_000);
    expect(p.retries).toBe(2);
    expect(p.circuitBreaker).toEqual({ maxFailures: 5, openForMs: 30_000 });
    expect(p.loadBalancing).toBe("round_robin");
    expect(p.maxResponseBytes).toBe(16_777_216);
    expect({ ...p.vars }).toEqual({ user_id: "123" });
    expect(p.servicesFile).toBe(fixture("services.yaml"));
    expect(p.source).toBe(readFileSync(fixture("spec-example.yaml"), "utf8"));
    expect(p.tasks.map((t) => t.id)).toEqual(["get_user", "orders", "summaries"]);
    expect(p.tasks[0]).toEqual({
      id: "get_user",
      service: "user-service",
      agent: "GetUserAgent",
      needs: [],
      input: {
        task: "get_user",
        context: { user_id: "${{ vars.user_id }}" },
        options: { model: "small", timeout: "20s" },
      },
      async: false,
    });
    expect(p.tasks[2]).toEqual({
      id: "summaries",
      service: "demo",
      agent: "upper",
      needs: ["orders"],
      input: { task: "${{ item.title }}" },
      forEach: "${{ tasks.orders.output.result }}",
      async: true,
      timeoutMs: 10_000,
      expect: { status: "success", result: "/^[A-Z ]+$/" },
    });
    const users = p.services["user-service"];
    expect(users).toEqual({
      name: "user-service",
      headers: { authorization: "Bearer ${{ env.USER_TOKEN }}" },
      loadBalancing: "least_pending",
      circuitBreaker: { maxFailures: 3, openForMs: 10_000 },
      instances: [
        {
          id: "user-1",
          endpoint: "http://127.0.0.1:8081",
          agents: ["ListUsersAgent", "GetUserAgent"],
          metadata: { zone: "a" },
        },
        { id: "user-service-2", endpoint: "http://127.0.0.1:8082", metadata: {} },
      ],
    });
    expect(p.services.demo?.instances).toEqual([{ id: "demo-1", endpoint: "embedded", metadata: {} }]);
  });

  it("its services file validates clean on its own", () => {
    const result = loadServices(fixture("services.yaml"));
    expect(result.diagnostics).toEqual([]);
    expect(Object.keys(result.services ?? {})).toEqual(["user-service", "demo", "order-service"]);
  });

  it("--var overrides vars", () => {
    const p = loadPipeline(fixture("spec-example.yaml"), { vars: { user_id: "456", extra: "x" } }).pipeline;
    expect({ ...p?.vars }).toEqual({ user_id: "456", extra: "x" });
  });
});

describe("schema errors, with their exact position", () => {
  it.each<[string, string[], string]>([
    [
      "an unknown key",
      ["name: p", "retires: 2", "tasks: []"],
      'p.yaml:2:1: unknown key "retires" (did you mean "retries"?)',
    ],
    ["a missing name", ["tasks: []"], 'p.yaml:1:1: missing required key "name"'],
    [
      "a bad mode",
      ["name: p", "mode: paralel", "tasks: []"],
      'p.yaml:2:7: mode: expected one of "parallel", "sequential", got "paralel" (did you mean "parallel"?)',
    ],
    [
      "a bad duration",
      ["name: p", "timeout: 3x", "tasks: []"],
      'p.yaml:2:10: timeout: expected a duration like "30s", got "3x"',
    ],
    [
      "a negative retry count",
      ["name: p", "retries: -1", "tasks: []"],
      "p.yaml:2:10: retries: expected an integer of at least 0, got -1",
    ],
    [
      "an empty value (reported at its key)",
      ["name:", "tasks: []"],
      "p.yaml:1:1: name: expected a non-empty string, got null",
    ],
    [
      "a bad load_balancing",
      ["name: p", "load_balancing: random", "tasks: []"],
      'p.yaml:2:17: load_balancing: expected one of "round_robin", "least_pending", got "random"',
    ],
    [
      "an unknown circuit breaker key",
      ["name: p", "circuit_breaker: { max_failure: 3 }", "tasks: []"],
      'p.yaml:2:20: unknown key "max_failure" (did you mean "max_failures"?)',
    ],
    [
      "tasks that are not a list",
      ["name: p", "tasks:", "  a: 1"],
      "p.yaml:3:3: tasks: expected a list, got a mapping",
    ],
  ])("%s", (_what, lines, message) => {
    expect(problems(lines)).toEqual([message]);
  });

  it.each<[string, string[], string]>([
    ["a missing agent", ["  - id: a", "    service: svc"], 'p.yaml:10:5: missing required key "agent"'],
    [
      "a misspelt key",
      ["  - id: a", "    service: svc", "    agent: A", "    retires: 1"],
      'p.yaml:13:5: unknown key "retires" (did you mean "retries"?)',
    ],
    [
      "a bad task id",
      ["  - id: 1st", "    service: svc", "    agent: A"],
      'p.yaml:10:9: tasks[0].id: expected a task id (a letter or "_", then letters, digits, "_" or "-"), got "1st"',
    ],
    [
      "a bad task timeout",
      ["  - id: a", "    service: svc", "    agent: A", "    timeout: 10 s"],
      'p.yaml:13:14: tasks[0].timeout: expected a duration like "30s", got "10 s"',
    ],
    [
      "an unknown input field",
      ["  - id: a", "    service: svc", "    agent: A", "    input: { task: x, contxt: {} }"],
      'p.yaml:13:23: unknown key "contxt" (did you mean "context"?)',
    ],
    [
      "a bad option type",
      ["  - id: a", "    service: svc", "    agent: A", "    input:", "      options: { max_tokens: lots }"],
      'p.yaml:14:30: tasks[0].input.options.max_tokens: expected a non-negative integer or a ${{ }} expression, got "lots"',
    ],
    [
      "a bad options.timeout",
      [
        "  - id: a",
        "    service: svc",
        "    agent: A",
        "    input:",
        "      options:",
        "        timeout: soon",
      ],
      'p.yaml:15:18: tasks[0].input.options.timeout: expected a duration like "30s" or a ${{ }} expression, got "soon"',
    ],
    [
      "a bad expect status",
      ["  - id: a", "    service: svc", "    agent: A", "    expect: { status: ok }"],
      'p.yaml:13:23: tasks[0].expect.status: expected one of "success", "failed", "partial" or a string matching /^/.*/[a-z]*$/, got "ok"',
    ],
    [
      "a for_each that is neither a list nor an expression",
      ["  - id: a", "    service: svc", "    agent: A", "    for_each: 3"],
      "p.yaml:13:15: tasks[0].for_each: expected a list or a ${{ }} expression, got 3",
    ],
    [
      "a for_each string that is no expression (a list written as text)",
      ["  - id: a", "    service: svc", "    agent: A", '    for_each: "a, b"'],
      'p.yaml:13:15: tasks[0].for_each: expected a list or a ${{ }} expression, got "a, b"',
    ],
  ])("%s in a task", (_what, taskLines, message) => {
    expect(problems(withTasks(...taskLines))).toEqual([message]);
  });
});

describe("semantic errors, with their exact position", () => {
  const a = ["  - id: a", "    service: svc", "    agent: A"];
  it.each<[string, string[], string[]]>([
    ["a duplicate task id", [...a, ...a], ['p.yaml:13:9: duplicate task id "a" (first defined at line 10)']],
    [
      "an unknown id in needs",
      [...a, "    needs: [bx]", "  - id: bb", "    service: svc", "    agent: A"],
      ['p.yaml:13:13: unknown task "bx" in needs (did you mean "bb"?)'],
    ],
    ["a task that needs itself", [...a, "    needs: [a]"], ['p.yaml:13:13: task "a" cannot need itself']],
    [
      "a cycle",
      [
        ...a,
        "    needs: [c]",
        "  - id: b",
        "    service: svc",
        "    agent: A",
        "    needs: [a]",
        "  - id: c",
        "    service: svc",
        "    agent: A",
        "    needs: [b]",
      ],
      ["p.yaml:13:13: dependency cycle in needs: a → c → b → a"],
    ],
    [
      "an unknown service",
      ["  - id: a", "    service: svcs", "    agent: A"],
      ['p.yaml:11:14: unknown service "svcs" (did you mean "svc"?)'],
    ],
    [
      "an agent no instance serves",
      ["  - id: a", "    service: svc", "    agent: C"],
      ['p.yaml:12:12: no instance of service "svc" serves agent "C" (its instances serve: A, B)'],
    ],
    [
      "an agent named ..",
      ["  - id: a", "    service: svc", "    agent: .."],
      ['p.yaml:12:12: invalid agent name ".."'],
    ],
    ["a zero timeout", [...a, "    timeout: 0"], ["p.yaml:13:14: tasks[0].timeout: must be more than 0"]],
    [
      "a duration a timer cannot wait for",
      [...a, "    poll_interval: 1000h"],
      [
        'p.yaml:13:20: tasks[0].poll_interval: duration "1000h" is too long (at most 2147483647ms, about 24 days)',
      ],
    ],
    [
      "a malformed expression (column inside the string)",
      [...a, '    input: { task: "Hi ${{ vars.who + 1 }}" }'],
      [
        'p.yaml:13:37: unexpected "+" in expression ${{ vars.who + 1 }} (only paths like vars.NAME or tasks.ID.output.result[0] are allowed)',
      ],
    ],
    [
      "an unknown expression root",
      [...a, '    input: { task: "Hi ${{ user.name }}" }'],
      [
        'p.yaml:13:24: unknown name "user" in ${{ user.name }} (expected vars, env, tasks, item, index or run)',
      ],
    ],
    [
      "an unknown var",
      [...a, '    input: { task: "${{ vars.whoo }}" }'],
      ['p.yaml:13:21: unknown var "whoo" in ${{ vars.whoo }} (did you mean "who"?)'],
    ],
    [
      "a var path that does not exist",
      [...a, '    input: { task: "${{ vars.who.first }}" }'],
      ["p.yaml:13:21: cannot resolve ${{ vars.who.first }}: vars.who is a string, not a mapping or a list"],
    ],
    [
      "a reference to an unknown task",
      [...a, '    input: { task: "${{ tasks.b.output.result }}" }'],
      ['p.yaml:13:21: unknown task "b" in ${{ tasks.b.output.result }}'],
    ],
    [
      "a reference to a task that is not a dependency",
      [
        ...a,
        "  - id: b",
        "    service: svc",
        "    agent: A",
        "    input:",
        "      context: { x: '${{ tasks.a.output.result }}' }",
      ],
      [
        'p.yaml:17:22: ${{ tasks.a.output.result }} reads task "a", which this task does not depend on: add it to needs',
      ],
    ],
    [
      "a task that reads its own output",
      [...a, '    input: { task: "${{ tasks.a.output }}" }'],
      ["p.yaml:13:21: a task cannot read its own output (${{ tasks.a.output }})"],
    ],
    [
      "tasks.X without output or outputs",
      [
        ...a,
        "  - id: b",
        "    service: svc",
        "    agent: A",
        "    needs: [a]",
        '    input: { task: "${{ tasks.a.result }}" }',
      ],
      ["p.yaml:17:21: expected tasks.a.output or tasks.a.outputs (got ${{ tasks.a.result }})"],
    ],
    [
      "outputs of a task that is not for_each",
      [
        ...a,
        "  - id: b",
        "    service: svc",
        "    agent: A",
        "    needs: [a]",
        '    input: { task: "${{ tasks.a.outputs }}" }',
      ],
      [
        'p.yaml:17:21: task "a" has no outputs: it is not a for_each task (use tasks.a.output) in ${{ tasks.a.outputs }}',
      ],
    ],
    [
      "an output field that an AgentOutput does not have (a typo the run would find only late)",
      [
        ...a,
        "  - id: b",
        "    service: svc",
        "    agent: A",
        "    needs: [a]",
        '    input: { task: "${{ tasks.a.output.reslt.x }}", context: { ok: "${{ tasks.a.output.result.anything }}", m: "${{ tasks.a.output.zzz }}" } }',
      ],
      [
        'p.yaml:17:21: an output has no field "reslt" in ${{ tasks.a.output.reslt.x }} (did you mean "result"?)',
        'p.yaml:17:113: an output has no field "zzz" in ${{ tasks.a.output.zzz }} (an AgentOutput has result, status, message, reasoning_steps, tool_calls, token_usage, latency, timestamp, metadata)',
      ],
    ],
    [
      "item outside a for_each task",
      [...a, '    input: { task: "${{ item.title }}" }'],
      ["p.yaml:13:21: item is only defined in the input of a for_each task (${{ item.title }})"],
    ],
    [
      "item in the for_each expression itself",
      [...a, '    for_each: "${{ item }}"'],
      ["p.yaml:13:16: item is only defined in the input of a for_each task (${{ item }})"],
    ],
    [
      "a for_each with text around its expression",
      [...a, '    for_each: "items: ${{ vars.list }}"'],
      [
        "p.yaml:13:15: for_each must be a list or a single ${{ }} expression (text around an expression makes a string, not a list)",
      ],
    ],
    [
      "a for_each var that is not a list",
      [...a, '    for_each: "${{ vars.who }}"'],
      ['p.yaml:13:15: for_each must give a list; "${{ vars.who }}" is "world"'],
    ],
    [
      "run fields other than id",
      [...a, '    input: { task: "${{ run.name }}" }'],
      ["p.yaml:13:21: only run.id is defined (got ${{ run.name }})"],
    ],
    [
      "an option var of the wrong type",
      [...a, "    input:", '      options: { enable_tools: "${{ vars.who }}" }'],
      [
        'p.yaml:14:32: tasks[0].input.options.enable_tools: "${{ vars.who }}" gives "world", not true or false',
      ],
    ],
    [
      "an invalid expect regex",
      [...a, "    expect:", '      result: "/[a-/"'],
      ['p.yaml:14:15: invalid regular expression "/[a-/": unterminated character class'],
    ],
    [
      "an expect path outside the output",
      [...a, "    expect:", "      words: 3"],
      [
        'p.yaml:14:7: expect path "words" must start with an AgentOutput field (result, status, message, reasoning_steps, tool_calls, token_usage, latency, timestamp, metadata)',
      ],
    ],
  ])("%s", (_what, taskLines, messages) => {
    expect(problems([...withTasks(...taskLines), "vars: { who: world, list: [1] }"])).toEqual(messages);
  });

  it("sequential mode: earlier tasks are dependencies, later ones are not", () => {
    expect(loadPipeline(fixture("sequential.yaml")).diagnostics).toEqual([]);
    expect(
      problems([
        "name: p",
        "mode: sequential",
        ...SERVICES.slice(0, 0),
        "services: { svc: { instances: [{ endpoint: embedded }] } }",
        "tasks:",
        "  - { id: a, service: svc, agent: A, input: { task: '${{ tasks.b.output.result }}' } }",
        "  - { id: b, service: svc, agent: A, needs: [c] }",
        "  - { id: c, service: svc, agent: A, needs: [a] }",
      ]),
    ).toEqual([
      'p.yaml:5:54: ${{ tasks.b.output.result }} reads task "b", which runs after this one',
      'p.yaml:6:46: in sequential mode tasks run in file order: "b" cannot need "c", which comes after it',
    ]);
  });

  it("reports several problems at once, in file order", () => {
    const result = parsePipeline(
      yaml(
        "name: multi",
        "mode: fast",
        "services: { svc: { instances: [{ endpoint: 'ftp://x' }] } }",
        "tasks:",
        "  - id: a",
        "    service: svc",
        "    agent: A",
        "    needs: [nope]",
        "    timeout: 3x",
        "    input: { task: '${{ vars.missing }}' }",
        "  - id: a",
        "    service: other",
        "    agnt: B",
        "    needs: [ghost]",
      ),
      "multi.yaml",
    );
    expect(result.pipeline).toBeUndefined();
    expect(result.diagnostics.map((d) => formatDiagnostic(d))).toEqual([
      'multi.yaml:2:7: mode: expected one of "parallel", "sequential", got "fast"',
      'multi.yaml:3:44: services.svc.instances[0].endpoint: expected an http:// or https:// URL or "embedded", got "ftp://x"',
      'multi.yaml:8:13: unknown task "nope" in needs',
      'multi.yaml:9:14: tasks[0].timeout: expected a duration like "30s", got "3x"',
      'multi.yaml:10:21: unknown var "missing" in ${{ vars.missing }} (define it under vars: or pass --var NAME=VALUE)',
      'multi.yaml:11:5: missing required key "agent"',
      'multi.yaml:11:9: duplicate task id "a" (first defined at line 5)',
      'multi.yaml:12:14: unknown service "other"',
      'multi.yaml:13:5: unknown key "agnt" (did you mean "agent"?)',
      // A duplicate's other problems are reported too.
      'multi.yaml:14:13: unknown task "ghost" in needs',
    ]);
  });

  it("--var can define what expressions read", () => {
    const lines = withTasks(
      "  - id: a",
      "    service: svc",
      "    agent: A",
      "    input: { task: '${{ vars.who }}' }",
    );
    expect(problems(lines)).toEqual([
      'p.yaml:13:21: unknown var "who" in ${{ vars.who }} (define it under vars: or pass --var NAME=VALUE)',
    ]);
    expect(problems(lines, { vars: { who: "me" } })).toEqual([]);
  });

  it("a --var that nothing reads is a warning, with the likely name", () => {
    const text = yaml(
      ...withTasks("  - id: a", "    service: svc", "    agent: A", "    input: { task: '${{ vars.who }}' }"),
      "vars: { mood: calm }",
    );
    const warnings = (vars: Record<string, string>) =>
      parsePipeline(text, "p.yaml", { vars }).warnings.map((d) => formatDiagnostic(d, "warning"));
    expect(warnings({ who: "me", mood: "x" })).toEqual([]);
    expect(warnings({ wh: "me" })).toEqual([
      'p.yaml:1:1: warning: --var wh is not used: no var "wh" under vars:, and no expression reads it (did you mean "who"?)',
    ]);
  });
});

describe("YAML problems", () => {
  it.each<[string, string, string[]]>([
    [
      "a tab used for indentation",
      "name: p\ntasks:\n\t- id: a\n",
      ["p.yaml:3:1: tabs are not allowed for indentation in YAML; use spaces"],
    ],
    [
      "a duplicate key",
      "name: p\ntasks: []\nname: q\n",
      ['p.yaml:3:1: duplicate key "name" (first at line 1)'],
    ],
    [
      "a duplicate key in a task",
      "name: p\ntasks:\n  - id: a\n    id: b\n",
      ['p.yaml:4:5: duplicate key "id" (first at line 3)'],
    ],
    [
      "an unclosed double quote: where the string opens, not the end of the file",
      'name: "p\ntasks:\n  - id: a\n',
      ["p.yaml:1:7: this quoted string is never closed (a missing quote?)"],
    ],
    [
      "an unclosed single quote in a flow mapping",
      "name: p\ntasks:\n  - { id: 'a }\n",
      [
        "p.yaml:3:11: this quoted string is never closed (a missing quote?)",
        "p.yaml:4:1: YAML: flow map in block collection must be sufficiently indented and end with a }",
      ],
    ],
    [
      "an unclosed flow sequence",
      "name: [p\ntasks: []\n",
      ["p.yaml:2:1: YAML: flow sequence in block collection must be sufficiently indented and end with a ]"],
    ],
    [
      "a key indented too deep: one error for the line, with the likely cause",
      "name: p\ntasks:\n  - id: a\n      service: s\n    agent: x\n",
      [
        "p.yaml:3:9: YAML: nested mappings are not allowed in compact mappings (check the indentation of the lines around here)",
      ],
    ],
    [
      "a list item outdented",
      "name: p\ntasks:\n  - id: a\n - id: b\n",
      [
        "p.yaml:4:1: YAML: a block sequence may not be used as an implicit map key (check the indentation of the lines around here)",
      ],
    ],
    [
      "an unclosed quote on a line with another error: the quote is still named",
      'name: p\ntasks: [ { id: a: b, service: s, agent: "x } ]\n',
      [
        "p.yaml:2:16: YAML: block collections are not allowed within flow collections",
        "p.yaml:2:41: this quoted string is never closed (a missing quote?)",
        "p.yaml:3:1: YAML: flow map in block collection must be sufficiently indented and end with a }",
      ],
    ],
    [
      "a quoted expression with a brace too many: no advice to quote it",
      'name: p\ntasks:\n  - { id: a, input: { task: "hi ${{ vars.x }}" } } }\n',
      ['p.yaml:3:52: YAML: unexpected flow-map-end token in YAML stream: "}"'],
    ],
    [
      "an unquoted expression in a flow list",
      "name: p\ntasks:\n  - id: a\n    for_each: [${{ vars.x }}]\n",
      [
        'p.yaml:4:17: YAML: missing , or : between flow sequence items (inside { } or [ ], quote a value that holds an expression: "${{ … }}")',
      ],
    ],
    [
      "an unquoted expression in a flow mapping: one error, saying to quote it",
      "name: p\ntasks:\n  - { id: a, input: { task: ${{ vars.x }} } }\n",
      [
        'p.yaml:3:30: YAML: unexpected flow-map-start at node end (inside { } or [ ], quote a value that holds an expression: "${{ … }}")',
      ],
    ],
    ["an undefined alias", "name: *x\ntasks: []\n", ["p.yaml:1:7: unknown alias *x (define &x before it)"]],
    [
      "two documents",
      "name: p\ntasks: []\n---\nname: q\n",
      ["p.yaml:3:1: a file holds one YAML document: remove the second one (after ---)"],
    ],
    ["an empty file", "", ["p.yaml:1:1: the file is empty: expected a pipeline (name, tasks, …)"]],
    [
      "a comment-only file",
      "# nothing\n",
      ["p.yaml:1:1: the file is empty: expected a pipeline (name, tasks, …)"],
    ],
    ["a scalar document", "hello\n", ['p.yaml:1:1: expected a mapping, got "hello"']],
  ])("%s", (_what, text, messages) => {
    const result = parsePipeline(text, "p.yaml");
    expect(result.diagnostics.map((d) => formatDiagnostic(d))).toEqual(messages);
  });

  it("reports unknown tags as warnings, not errors", () => {
    const result = parsePipeline("name: !custom p\ntasks: []\n", "p.yaml", { externalServices: true });
    expect(result.diagnostics).toEqual([]);
    expect(result.pipeline?.name).toBe("p");
    expect(result.warnings.map((d) => formatDiagnostic(d, "warning"))).toEqual([
      "p.yaml:1:7: warning: unresolved tag: !custom (the value is read as a plain string)",
    ]);
  });

  it("supports anchors, aliases and merge keys, with positions inside the anchor", () => {
    const lines = [
      "name: p",
      "services: { svc: { instances: [{ endpoint: embedded }] } }",
      "tasks:",
      "  - &base",
      "    id: a",
      "    service: svc",
      "    agent: A",
      "    input: { task: x }",
      "  - <<: *base",
      "    id: b",
      "  - id: c",
      "    service: svc",
      "    agent: A",
      "    input: *bad",
    ];
    expect(problems(lines)).toEqual(["p.yaml:14:12: unknown alias *bad (define &bad before it)"]);
    lines[13] = "    timeout: 1s";
    const good = parsePipeline(yaml(...lines), "p.yaml");
    expect(good.diagnostics).toEqual([]);
    expect(good.pipeline?.tasks.map((t) => [t.id, t.service, t.input])).toEqual([
      ["a", "svc", { task: "x" }],
      ["b", "svc", { task: "x" }],
      ["c", "svc", {}],
    ]);
    // A problem inside the anchored mapping is shown once, where it is written.
    lines[7] = "    input: { task: x, tsk: y }";
    expect(problems(lines)).toEqual(['p.yaml:8:23: unknown key "tsk" (did you mean "task"?)']);
    // A problem next to the merge key is shown there.
    lines[7] = "    input: { task: x }";
    lines.splice(10, 0, "    retires: 1");
    expect(problems(lines)).toEqual(['p.yaml:11:5: unknown key "retires" (did you mean "retries"?)']);
  });
});

describe("services", () => {
  it("reports a services file that cannot be read at the services: value", () => {
    const result = loadPipeline(fixture("uses-missing-services.yaml"));
    expect(result.diagnostics.map((d) => formatDiagnostic(d))).toEqual([
      `${fixture("uses-missing-services.yaml")}:2:11: cannot read services file "./nowhere/services.yaml": no such file`,
    ]);
  });

  it("reports problems of the services file in that file", () => {
    const result = loadPipeline(fixture("uses-broken-services.yaml"));
    expect(result.diagnostics.map((d) => formatDiagnostic(d))).toEqual([
      `${fixture("broken-services.yaml")}:5:9: unknown key "bogus"`,
    ]);
  });

  it("takes --services over the pipeline's own, relative to the current directory", () => {
    const result = loadPipeline(fixture("uses-missing-services.yaml"), {
      services: fixture("broken-services.yaml"),
    });
    expect(result.diagnostics.map((d) => formatDiagnostic(d))).toEqual([
      `${fixture("broken-services.yaml")}:5:9: unknown key "bogus"`,
    ]);
    const ok = parsePipeline(
      yaml("name: p", "tasks: [{ id: a, service: user-service, agent: GetUserAgent }]"),
      "p.yaml",
      {
        services: fixture("services.yaml"),
      },
    );
    expect(ok.diagnostics).toEqual([]);
    expect(ok.pipeline?.servicesFile).toBe(fixture("services.yaml"));
  });

  it("checks task services only against services it knows", () => {
    // No services in the file: they come from --services or a registry at run time.
    const lines = ["name: p", "tasks:", "  - { id: a, service: svc, agent: A }"];
    const alone = parsePipeline(yaml(...lines), "p.yaml");
    expect(alone.diagnostics).toEqual([]);
    expect(alone.pipeline?.services).toEqual({});
    // With a registry, the file's own services are not the instances that will be called.
    const inline = [...lines, "services: { other: { instances: [{ endpoint: embedded }] } }"];
    expect(problems(inline)).toEqual(['p.yaml:3:23: unknown service "svc"']);
    expect(problems(inline, { externalServices: true })).toEqual([]);
  });

  it("checks instances, ids, endpoints and headers", () => {
    const result = parseServices(
      yaml(
        "services:",
        "  api:",
        '    headers: { Authorization: "Bearer ${{ env.TOKEN }}", authorization: x, X-Run: "${{ run.id }}" }',
        "    load_balancing: least_pending",
        "    timeout: 0s",
        "    instances:",
        "      - endpoint: http://h:1/prefix",
        "      - id: api-1",
        "        endpoint: https://h:2?x=1",
        "      - endpoint: http://",
        "        agents: [ok, ..]",
        "  other/x:",
        "    instances: []",
      ),
      "s.yaml",
    );
    expect(result.services).toBeUndefined();
    expect(result.diagnostics.map((d) => formatDiagnostic(d))).toEqual([
      's.yaml:3:58: header "authorization" is given twice (also as "Authorization")',
      "s.yaml:3:83: header values may only read env.NAME (got ${{ run.id }})",
      "s.yaml:5:14: services.api.timeout: must be more than 0",
      's.yaml:8:13: duplicate instance id "api-1" (also used at line 7)',
      's.yaml:9:19: invalid endpoint "https://h:2?x=1": a base URL cannot have a query or a fragment',
      's.yaml:10:19: services.api.instances[2].endpoint: expected an http:// or https:// URL or "embedded", got "http://"',
      's.yaml:11:22: invalid agent name ".."',
      's.yaml:12:3: invalid key "other/x": expected a string matching /^[A-Za-z0-9_][A-Za-z0-9_.-]*$/',
    ]);
  });

  it("types a services file", () => {
    const result = parseServices(
      yaml(
        "services:",
        "  api:",
        '    headers: { x-token: "${{ env.T }}" }',
        "    circuit_breaker: { max_failures: 2, open_for: 1m }",
        "    timeout: 5s",
        "    max_response_bytes: 1024",
        "    instances:",
        "      - endpoint: http://h:1",
        "      - { id: b, endpoint: embedded, agents: [echo], metadata: { zone: z } }",
      ),
      "s.yaml",
    );
    expect(result.diagnostics).toEqual([]);
    expect(result.services?.api).toEqual({
      name: "api",
      headers: { "x-token": "${{ env.T }}" },
      circuitBreaker: { maxFailures: 2, openForMs: 60_000 },
      timeoutMs: 5000,
      maxResponseBytes: 1024,
      instances: [
        { id: "api-1", endpoint: "http://h:1", metadata: {} },
        { id: "b", endpoint: "embedded", agents: ["echo"], metadata: { zone: "z" } },
      ],
    });
    // No prototype: service names are safe to look up.
    expect(result.services?.constructor).toBeUndefined();
  });

  it("requires the services: key in a services file", () => {
    expect(parseServices("api: {}\n", "s.yaml").diagnostics.map((d) => formatDiagnostic(d))).toEqual([
      's.yaml:1:1: missing required key "services"',
      's.yaml:1:1: unknown key "api"',
    ]);
  });
});

describe("files", () => {
  it("reports a file that cannot be read without a position", () => {
    const result = loadPipeline(fixture("no-such-file.yaml"));
    expect(result.diagnostics).toEqual([
      {
        file: fixture("no-such-file.yaml"),
        line: 0,
        column: 0,
        message: "cannot read the file: no such file",
      },
    ]);
    expect(formatDiagnostic(result.diagnostics[0]!)).toBe(
      `${fixture("no-such-file.yaml")}: cannot read the file: no such file`,
    );
    expect(loadPipeline(fixtures).diagnostics[0]?.message).toBe("cannot read the file: it is a directory");
    expect(loadServices("a\0b").diagnostics[0]?.message).toBe(
      "cannot read the file: the path contains a NUL byte",
    );
  });

  it("keeps typed values free of prototypes where names come from the file", () => {
    const result = parsePipeline(
      yaml("name: p", "vars: { constructor: 1, __proto__: { polluted: true } }", "tasks: []"),
      "p.yaml",
      { externalServices: true },
    );
    expect(result.diagnostics).toEqual([]);
    const vars = result.pipeline?.vars ?? {};
    expect(Object.getPrototypeOf(vars)).toBeNull();
    expect(vars.constructor).toBe(1);
    expect(Object.hasOwn(vars, "__proto__")).toBe(true);
    expect(({} as Record<string, unknown>).polluted).toBeUndefined();
  });
});

describe("warnings", () => {
  it("points out settings that do nothing, without failing the load", () => {
    const result = parsePipeline(
      yaml(
        "name: p",
        "vars: { greeting: 'hi ${{ env.USER }}' }",
        "tasks:",
        "  - id: a",
        "    service: svc",
        "    agent: A",
        "    poll_interval: 2s",
        "    input: { timestamp: yesterday }",
        "    expect: { result: '${{ vars.greeting }}' }",
        "    needs: []",
        "  - { id: b, service: svc, agent: A, needs: [a, a] }",
      ),
      "p.yaml",
      { externalServices: true },
    );
    expect(result.diagnostics).toEqual([]);
    expect(result.pipeline?.tasks[1]?.needs).toEqual(["a"]);
    expect(result.warnings.map((d) => formatDiagnostic(d, "warning"))).toEqual([
      "p.yaml:2:19: warning: expressions are not evaluated here: the text is used as written",
      "p.yaml:7:5: warning: poll_interval has no effect without async: true",
      'p.yaml:8:25: warning: timestamp "yesterday" is not an RFC 3339 time (like 2024-05-01T12:00:00Z); the time of the attempt is sent instead',
      "p.yaml:9:23: warning: expressions are not evaluated here: the text is used as written",
      'p.yaml:11:49: warning: "a" is listed twice in needs',
    ]);
  });

  it("points out what looks like an expression written without its $ (other {{ }} text is the agent's)", () => {
    const result = parsePipeline(
      yaml(
        "name: p",
        "tasks:",
        "  - id: a",
        "    service: svc",
        "    agent: A",
        "    for_each: [1, 2]",
        "    input:",
        '      task: "n={{ item }}"',
        '      context: { prompt: "Hello {{ name }}", q: "{{index}} and ${{ index }}", v: "{{ vars.x }}" }',
        "  - id: b",
        "    service: svc",
        "    agent: A",
        // No for_each here: `item` is no expression of this task, so `{{ item }}` is just text.
        '    input: { task: "{{ item }} {{ run.id }}" }',
      ),
      "p.yaml",
      { externalServices: true },
    );
    expect(result.diagnostics).toEqual([]);
    expect(result.warnings.map((d) => formatDiagnostic(d, "warning"))).toEqual([
      'p.yaml:8:13: warning: "{{ item }}" is sent as text: an expression is written ${{ item }}',
      'p.yaml:9:49: warning: "{{index}}" is sent as text: an expression is written ${{index}}',
      'p.yaml:9:82: warning: "{{ vars.x }}" is sent as text: an expression is written ${{ vars.x }}',
      'p.yaml:13:20: warning: "{{ run.id }}" is sent as text: an expression is written ${{ run.id }}',
    ]);
  });
});
