import { describe, expect, it } from "vitest";
import type { AgentServer } from "../../src/server/index.js";
import { runCli, useServerAndWorkspace, type Workspace } from "../helpers/cli.js";

/**
 * Files no one should write, and some an attacker would: the CLI answers with exit 0 or 2 and
 * positions, never a stack trace, a crash or a hang, within a few seconds each.
 */

let server: AgentServer;
let ws: Workspace;

useServerAndWorkspace((s, w) => {
  server = s;
  ws = w;
});

const STACK = /\n\s+at .+[(\s].*:\d+:\d+\)?/;

interface Hostile {
  name: string;
  file: string;
  content: () => string | Buffer;
  /** The exit code expected (2 unless the file is in fact valid). */
  exit: 0 | 2;
  /** A diagnostic expected on stderr (for exit 2). */
  diagnostic?: RegExp;
  /** Wall-clock bound for the whole CLI run. */
  withinMs?: number;
}

const services = () => `services:\n  svc:\n    instances:\n      - endpoint: ${server.url}\n`;

const cases: Hostile[] = [
  {
    name: "malformed YAML (an unclosed flow sequence)",
    file: "malformed.yaml",
    content: () => "name: x\ntasks: [\n  - id: a\n",
    exit: 2,
    diagnostic: /^malformed\.yaml:\d+:\d+: /m,
  },
  {
    name: "tabs for indentation",
    file: "tabs.yaml",
    content: () => `name: x\n${services()}tasks:\n\t- id: a\n`,
    exit: 2,
    diagnostic: /^tabs\.yaml:7:1: .*tab/im,
  },
  {
    name: "duplicate mapping keys",
    file: "dupkeys.yaml",
    content: () => `name: x\nname: y\n${services()}tasks:\n  - id: a\n    service: svc\n    agent: echo\n`,
    exit: 2,
    diagnostic: /^dupkeys\.yaml:2:1: duplicate key "name"/m,
  },
  {
    name: "10,000-deep flow nesting",
    file: "deep-flow.yaml",
    content: () => `name: x\ntasks: ${"[".repeat(10_000)}${"]".repeat(10_000)}\n`,
    exit: 2,
    diagnostic: /^deep-flow\.yaml:2:\d+: .*nest/im,
  },
  {
    name: "10,000-deep block nesting",
    file: "deep-block.yaml",
    content: () => {
      // Compact nested sequences: `- - - … x`, 10,000 levels on one line.
      return `name: x\n${services()}tasks:\n  - id: a\n    service: svc\n    agent: echo\n    input:\n      context:\n        k:\n          ${"- ".repeat(10_000)}x\n`;
    },
    exit: 2,
    diagnostic: /^deep-block\.yaml:\d+:\d+: .*nest/im,
  },
  {
    name: "a 10 MB plain string",
    file: "big-string.yaml",
    content: () =>
      `name: x\n${services()}tasks:\n  - id: a\n    service: svc\n    agent: echo\n    input:\n      task: ${"a".repeat(10 * 1024 * 1024)}\n`,
    exit: 0,
  },
  {
    // ~5.5 s alone on 2 cores (the yaml parser builds a double-quoted scalar one character at
    // a time and the garbage collector does the rest): a wider bound than the others.
    name: "a 10 MB double-quoted string",
    file: "big-quoted.yaml",
    content: () =>
      `name: x\n${services()}tasks:\n  - id: a\n    service: svc\n    agent: echo\n    input:\n      task: "${"q".repeat(10 * 1024 * 1024)}"\n`,
    exit: 0,
    withinMs: 20_000,
  },
  {
    name: "a 10 MB string with a bad expression at its end (position past the string)",
    file: "big-expr.yaml",
    content: () =>
      `name: x\n${services()}tasks:\n  - id: a\n    service: svc\n    agent: echo\n    input:\n      task: '${"b".repeat(10 * 1024 * 1024)} \${{ nope }}'\n`,
    exit: 2,
    diagnostic: new RegExp(`^big-expr\\.yaml:11:${14 + 10 * 1024 * 1024 + 1}: `, "m"),
  },
  {
    name: "a file over the size limit",
    file: "too-big.yaml",
    content: () => `name: x\ntasks: []\n# ${"z".repeat(17 * 1024 * 1024)}\n`,
    exit: 2,
    diagnostic: /^too-big\.yaml: .*too large/m,
  },
  {
    name: "NUL bytes",
    file: "nul.yaml",
    content: () => Buffer.from(`name: x\u0000y\n${services()}tasks: []\n`, "utf8"),
    exit: 2,
    diagnostic: /^nul\.yaml:1:8: .*NUL/m,
  },
  {
    name: "binary garbage",
    file: "binary.yaml",
    content: () => Buffer.from(Array.from({ length: 4096 }, (_, i) => (i * 7919) % 256)),
    exit: 2,
    diagnostic: /^binary\.yaml(:\d+:\d+)?: /m,
  },
  {
    name: "a billion-laughs alias bomb",
    file: "laughs.yaml",
    content: () => {
      const lines = ["name: lol", 'a0: &a0 ["lol","lol","lol","lol","lol","lol","lol","lol","lol","lol"]'];
      for (let i = 1; i <= 9; i++)
        lines.push(
          `a${i}: &a${i} [${Array(10)
            .fill(`*a${i - 1}`)
            .join(",")}]`,
        );
      lines.push(
        services().trimEnd(),
        "tasks:",
        "  - id: a",
        "    service: svc",
        "    agent: echo",
        "    input:",
      );
      lines.push("      context: { bomb: *a9 }", "");
      return lines.join("\n");
    },
    exit: 2,
    diagnostic: /^laughs\.yaml:\d+:\d+: .*alias/im,
  },
  {
    name: "a recursive alias",
    file: "recursive.yaml",
    content: () =>
      `name: x\n${services()}tasks: &t\n  - id: a\n    service: svc\n    agent: echo\n    input: { context: *t }\n`,
    exit: 2,
    diagnostic: /^recursive\.yaml:\d+:\d+: /m,
  },
  {
    name: "prototype-polluting keys are plain keys",
    file: "proto.yaml",
    content: () =>
      `name: x\n${services()}vars:\n  __proto__: { polluted: yes }\n  hasOwnProperty: 1\n  who: me\ntasks:\n  - id: a\n    service: svc\n    agent: echo\n    input: { task: "\${{ vars.who }}", context: { __proto__: 1 } }\n`,
    exit: 0,
  },
  {
    name: "an expression reaching for the prototype",
    file: "proto-expr.yaml",
    content: () =>
      `name: x\n${services()}vars:\n  who: me\ntasks:\n  - id: a\n    service: svc\n    agent: echo\n    input: { task: "\${{ vars.constructor }}" }\n`,
    exit: 2,
    diagnostic: /^proto-expr\.yaml:12:30: /m,
  },
  {
    name: "a YAML document that is a scalar",
    file: "scalar.yaml",
    content: () => "just a string\n",
    exit: 2,
    diagnostic: /^scalar\.yaml:1:1: /m,
  },
  {
    name: "an empty file",
    file: "empty.yaml",
    content: () => "",
    exit: 2,
    diagnostic: /^empty\.yaml(:\d+:\d+)?: .*empty/m,
  },
  {
    name: "several YAML documents",
    file: "multi.yaml",
    content: () => `name: x\n${services()}tasks: []\n---\nname: y\n`,
    exit: 2,
    diagnostic: /^multi\.yaml:\d+:\d+: /m,
  },
];

describe.concurrent("hostile pipeline files", () => {
  for (const c of cases) {
    it(c.name, async () => {
      await ws.write(c.file, c.content());
      const before = server.requests.length;
      const r = await runCli(["validate", c.file], { cwd: ws.dir, timeout: 30_000 });
      expect(r.timedOut).toBe(false);
      expect(r.signal).toBeUndefined();
      expect(r.exitCode, r.stderr.slice(0, 2000)).toBe(c.exit);
      expect(r.stderr).not.toMatch(STACK);
      expect(r.stderr).not.toMatch(/internal error/i);
      if (c.diagnostic) expect(r.stderr.slice(0, 5000)).toMatch(c.diagnostic);
      if (c.exit === 2) expect(r.stdout).toBe("");
      // Diagnostics stay readable: no line of stderr quotes megabytes of the file.
      for (const line of r.stderr.split("\n")) expect(line.length).toBeLessThan(4096);
      expect(r.durationMs).toBeLessThan(c.withinMs ?? 8000);
      expect(server.requests.length).toBe(before);
    });
  }
});
