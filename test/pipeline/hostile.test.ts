import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { formatDiagnostic, MAX_DIAGNOSTICS } from "../../src/pipeline/diagnostics.js";
import { loadPipeline, parsePipeline } from "../../src/pipeline/loader.js";
import { parseServices } from "../../src/pipeline/services-file.js";
import { MAX_FILE_BYTES } from "../../src/pipeline/yaml-source.js";

/** Generous, for loaded CI machines; these finish in well under a second or two on a quiet one. */
const BUDGET_MS = 10_000;

function run(text: string): string[] {
  const t0 = performance.now();
  const result = parsePipeline(text, "h.yaml");
  const elapsed = performance.now() - t0;
  expect(elapsed).toBeLessThan(BUDGET_MS);
  expect(result.diagnostics.length).toBeGreaterThan(0);
  expect(result.diagnostics.length).toBeLessThanOrEqual(MAX_DIAGNOSTICS);
  expect(result.pipeline).toBeUndefined();
  for (const d of result.diagnostics) {
    expect(d.file).toBe("h.yaml");
    expect(d.message.length).toBeLessThan(1000);
  }
  return result.diagnostics.map((d) => formatDiagnostic(d));
}

function billionLaughs(): string {
  const lines = ['  a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]'];
  for (let i = 1; i < 10; i++) {
    const name = String.fromCharCode(97 + i);
    const prev = String.fromCharCode(96 + i);
    lines.push(`  ${name}: &${name} [${Array(9).fill(`*${prev}`).join(",")}]`);
  }
  return `name: x\ntasks: []\nvars:\n${lines.join("\n")}\n`;
}

describe("hostile input ends in diagnostics, quickly, without throwing", { timeout: 60_000 }, () => {
  it.each<[string, () => string, RegExp]>([
    ["malformed flow collections", () => "name: [x\ntasks: {\n", /YAML: flow sequence/],
    ["an unterminated quote", () => 'name: "x\ntasks: []\n', /quoted string is never closed/],
    ["tabs", () => "name: x\ntasks:\n\t- id: a\n\t  service: s\n", /tabs are not allowed/],
    ["duplicate keys", () => "name: a\nname: b\ntasks: []\ntasks: []\n", /duplicate key "name"/],
    [
      "thousands of duplicate keys",
      () => `name: x\ntasks: []\nvars:\n${"  k: v\n".repeat(50_000)}`,
      /duplicate key "k"/,
    ],
    [
      "10,000 nested flow lists",
      () => `name: x\ntasks: ${"[".repeat(10_000)}${"]".repeat(10_000)}\n`,
      /nesting too deep/,
    ],
    ["10,000 nested block lists", () => `name: x\ntasks:\n${"- ".repeat(10_000)}x\n`, /nesting too deep/],
    [
      "10,000 nested mappings",
      () => `name: x\nvars: ${"{a: ".repeat(10_000)}1${"}".repeat(10_000)}\n`,
      /nesting too deep/,
    ],
    [
      "deep indentation",
      () => Array.from({ length: 3000 }, (_, i) => `${" ".repeat(i)}a:`).join("\n"),
      /nesting too deep/,
    ],
    ["5 MB of opening brackets", () => "[".repeat(5_000_000), /nesting too deep/],
    [
      "thousands of syntax errors on one long line",
      () => `name: p\ntasks: [${"a: b: c, ".repeat(40_000)}]\n`,
      /block collections are not allowed within flow collections/,
    ],
    [
      "a 10 MB plain string",
      () => `name: x\ntasks: 3\nvars: { a: ${"x".repeat(10_000_000)} }\n`,
      /tasks: expected a list/,
    ],
    [
      "a 10 MB quoted string",
      () => `name: "${"x".repeat(10_000_000)}"\ntasks: 3\n`,
      /tasks: expected a list/,
    ],
    [
      "a 10 MB task id and duration",
      () =>
        `name: a\ntasks:\n  - id: "${"1".repeat(10_000_000)}"\n    service: s\n    agent: a\n    timeout: "${"1".repeat(1_000_000)}"\n`,
      /expected a task id/,
    ],
    ["a 10 MB key", () => `name: a\n${"k".repeat(10_000_000)}: 1\ntasks: []\n`, /YAML|unknown key/],
    [
      "a 10 MB expression",
      () =>
        `name: a\ntasks: [{ id: a, service: s, agent: a, input: { task: "\${{ vars.${"x".repeat(10_000_000)} }}" } }]\n`,
      /unknown var/,
    ],
    ["a NUL byte", () => "name: a\0b\ntasks: []\n", /NUL byte/],
    [
      "binary garbage",
      () => String.fromCharCode(...Array.from({ length: 60_000 }, (_, i) => (i * 7919) % 256)),
      /./,
    ],
    ["a billion laughs", billionLaughs, /alias/],
    ["a recursive alias", () => "name: x\ntasks: []\nvars: &v\n  a: *v\n", /recursive alias/],
    ["a recursive merge", () => "name: x\ntasks: []\nvars: &v\n  <<: *v\n", /recursive alias/],
    ["thousands of aliases", () => `name: x\ntasks: []\nvars:\n  a: &a 1\n${"  - *a\n".repeat(5000)}`, /./],
    ["a flood of tokens", () => `name: x\ntasks: [${"1,".repeat(600_000)}]\n`, /too large: more than/],
    ["a flood of comments", () => "#\n".repeat(2_000_000), /too large: more than|empty/],
    ["a flood of YAML errors", () => `name: "${"x\n".repeat(100_000)}"\n`, /YAML/],
    [
      "a flood of schema errors",
      () => `name: x\ntasks: []\n${Array.from({ length: 60_000 }, (_, i) => `k${i}: v`).join("\n")}\n`,
      /unknown key/,
    ],
    [
      "a flood of semantic errors",
      () =>
        `name: x\ntasks:\n${Array.from({ length: 5000 }, (_, i) => `  - { id: t${i}, service: s, agent: a, needs: [x${i}] }`).join("\n")}\n`,
      /unknown task/,
    ],
    ["several documents", () => "name: a\ntasks: []\n---\n---\n---\n", /one YAML document/],
    [
      "directives and odd tags",
      () => "%YAML 1.1\n%TAG ! tag:x,2000:\n---\nname: !<tag:x> 1\ntasks: !!map {}\n",
      /./,
    ],
    [
      "invalid UTF-8",
      () => Buffer.from([0x6e, 0x61, 0x6d, 0x65, 0x3a, 0x20, 0xff, 0xfe, 0xc3]).toString("utf8"),
      /missing required key "tasks"/,
    ],
    [
      "prototype keys",
      () => "name: x\ntasks: []\n__proto__: { polluted: 1 }\nconstructor: 1\n",
      /unknown key "__proto__"/,
    ],
  ])("%s", (_what, make, pattern) => {
    const problems = run(make());
    expect(
      problems.some((p) => pattern.test(p)),
      problems.slice(0, 5).join("\n"),
    ).toBe(true);
    expect(({} as Record<string, unknown>).polluted).toBeUndefined();
  });

  it("survives random YAML-ish noise", () => {
    let seed = 42;
    const random = () => {
      seed = (seed * 1_103_515_245 + 12_345) % 2_147_483_648;
      return seed / 2_147_483_648;
    };
    const alphabet = [
      ..."abc:-[]{}&*!|>'\"#%@`,? \n\n\t\\$",
      "${{",
      "}}",
      "tasks",
      "name",
      "<<",
      "---",
      "...",
    ];
    const t0 = performance.now();
    for (let i = 0; i < 300; i++) {
      let text = "";
      const n = Math.floor(random() * 200);
      for (let j = 0; j < n; j++) text += alphabet[Math.floor(random() * alphabet.length)];
      expect(() => parsePipeline(text, "r.yaml")).not.toThrow();
      expect(() => parseServices(text, "r.yaml")).not.toThrow();
    }
    expect(performance.now() - t0).toBeLessThan(BUDGET_MS);
  });

  describe("files", () => {
    const dir = mkdtempSync(join(tmpdir(), "agentctl-pipeline-"));
    afterAll(() => rmSync(dir, { recursive: true, force: true }));

    it("refuses a file over the size limit without reading it", () => {
      const path = join(dir, "big.yaml");
      writeFileSync(path, Buffer.alloc(MAX_FILE_BYTES + 1, 0x61));
      const t0 = performance.now();
      const result = loadPipeline(path);
      expect(performance.now() - t0).toBeLessThan(1000);
      expect(result.diagnostics.map((d) => formatDiagnostic(d))).toEqual([
        `${path}: the file is too large (${MAX_FILE_BYTES + 1} bytes; at most ${MAX_FILE_BYTES} bytes)`,
      ]);
    });

    it("refuses text over the size limit", () => {
      const result = parsePipeline("a".repeat(MAX_FILE_BYTES + 1), "t.yaml");
      expect(result.diagnostics[0]?.message).toMatch(/too large/);
    });

    it("reports a services file that is hostile in its own name", () => {
      writeFileSync(
        join(dir, "bomb-services.yaml"),
        billionLaughs().replace("name: x\ntasks: []\nvars:", "services:"),
      );
      writeFileSync(join(dir, "p.yaml"), "name: x\nservices: bomb-services.yaml\ntasks: []\n");
      const problems = loadPipeline(join(dir, "p.yaml")).diagnostics.map((d) => formatDiagnostic(d));
      expect(problems).toHaveLength(1);
      expect(problems[0]).toMatch(/bomb-services\.yaml:\d+:\d+: too many values once aliases are expanded/);
    });
  });
});

describe("hostile paths", () => {
  it("reports a huge services path briefly", () => {
    const result = parsePipeline(`name: x\nservices: ${"a/".repeat(100_000)}s.yaml\ntasks: []\n`, "p.yaml");
    expect(result.diagnostics.map((d) => formatDiagnostic(d))).toEqual([
      'p.yaml:2:11: cannot read services file "a/a/a/a/a/a/a/a/a/a/a/a/a/a/a/a/a/a/a/a/a/a/a/a/a/a/a/a/a/a/…": the path is too long',
    ]);
  });
});
