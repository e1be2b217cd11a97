import { describe, expect, it } from "vitest";
import {
  checkExpectations,
  deepEqual,
  expectationProblems,
  parseRegexLiteral,
} from "../../src/pipeline/expect.js";

const output = {
  result: { words: 3, text: "HELLO WORLD", items: [{ name: "a" }, { name: "b" }], "a.b": true },
  status: "success",
  message: "",
  reasoning_steps: [],
  tool_calls: [],
  latency: 1200,
  timestamp: "2024-01-01T00:00:00Z",
  metadata: { zone: "a" },
};

describe("checkExpectations", () => {
  it("passes when every expectation holds", () => {
    expect(checkExpectations(undefined, output)).toBeUndefined();
    expect(
      checkExpectations(
        {
          status: "success",
          "result.words": 3,
          "result.text": "/^[A-Z ]+$/",
          "result.items[1].name": "b",
          "result.items.0": { name: "a" },
          'result["a.b"]': true,
          result: { words: 3, text: "HELLO WORLD", items: [{ name: "a" }, { name: "b" }], "a.b": true },
          metadata: { zone: "a" },
          message: "",
          tool_calls: [],
        },
        output,
      ),
    ).toBeUndefined();
  });

  it("names the path, the expected and the actual value", () => {
    expect(checkExpectations({ "result.words": 4 }, output)).toBe("expect result.words: expected 4, got 3");
    expect(checkExpectations({ status: "failed" }, output)).toBe(
      'expect status: expected "failed", got "success"',
    );
    expect(checkExpectations({ "result.items": [{ name: "a" }] }, output)).toBe(
      'expect result.items: expected [{"name":"a"}], got [{"name":"a"},{"name":"b"}]',
    );
    expect(checkExpectations({ "result.missing": 1 }, output)).toBe(
      "expect result.missing: expected 1, got nothing (no value at that path)",
    );
    expect(checkExpectations({ "result.words": "3" }, output)).toBe(
      'expect result.words: expected "3", got 3',
    );
  });

  it("reports every failing expectation", () => {
    expect(checkExpectations({ status: "partial", latency: 1, "metadata.zone": "a" }, output)).toBe(
      'expect status: expected "partial", got "success"; expect latency: expected 1, got 1200',
    );
  });

  it("matches /regex/ strings against string values only", () => {
    expect(checkExpectations({ "result.text": "/world/i" }, output)).toBeUndefined();
    expect(checkExpectations({ "result.text": "/^world/i" }, output)).toBe(
      'expect result.text: expected a string matching /^world/i, got "HELLO WORLD"',
    );
    expect(checkExpectations({ "result.words": "/3/" }, output)).toBe(
      "expect result.words: expected a string matching /3/, got 3",
    );
    // Stateful flags do not carry over from one check to the next.
    expect(checkExpectations({ "result.text": "/O/g", status: "/s/g" }, output)).toBeUndefined();
    expect(checkExpectations({ "result.text": "/O/g" }, output)).toBeUndefined();
  });

  it("does not read inherited properties", () => {
    expect(checkExpectations({ "result.constructor": "x" }, { result: {} })).toMatch(
      /"constructor" cannot be used/,
    );
    expect(checkExpectations({ "result.toString": "x" }, { result: {} })).toMatch(/got nothing/);
    expect(checkExpectations({ "result.length": 0 }, { result: [] })).toMatch(/got nothing/);
  });

  it("keeps long values short in messages", () => {
    const message = checkExpectations({ result: "x" }, { result: "y".repeat(100_000) }) ?? "";
    expect(message.length).toBeLessThan(300);
  });
});

describe("expectationProblems", () => {
  it("finds bad paths and invalid regular expressions before the run", () => {
    expect(
      expectationProblems({
        status: "success",
        "result.": 1,
        resul: 2,
        "result.x": "/(/",
        ok: "/a/z",
        "result.y": "/a/",
      }),
    ).toEqual([
      { key: "result.", atKey: true, message: 'invalid expect path "result.": expected a name after "."' },
      {
        key: "resul",
        atKey: true,
        message:
          'expect path "resul" must start with an AgentOutput field (result, status, message, reasoning_steps, tool_calls, token_usage, latency, timestamp, metadata)',
      },
      { key: "result.x", atKey: false, message: 'invalid regular expression "/(/": unterminated group' },
      { key: "ok", atKey: true, message: expect.stringContaining('expect path "ok" must start') },
      {
        key: "ok",
        atKey: false,
        message: "invalid regular expression \"/a/z\": invalid flags supplied to RegExp constructor 'z'",
      },
    ]);
  });

  it("parses regex literals", () => {
    expect(parseRegexLiteral("plain")).toBeUndefined();
    expect(parseRegexLiteral("/a/i")).toEqual(/a/i);
    expect(parseRegexLiteral("/a/b/")).toEqual(/a\/b/);
    expect(parseRegexLiteral("//")).toEqual(/(?:)/);
  });
});

describe("deepEqual", () => {
  it("compares JSON values structurally", () => {
    expect(deepEqual({ a: [1, { b: null }] }, { a: [1, { b: null }] })).toBe(true);
    expect(deepEqual({ a: 1, b: 2 }, { b: 2, a: 1 })).toBe(true);
    expect(deepEqual({ a: 1 }, { a: 1, b: undefined })).toBe(false);
    expect(deepEqual([1], { 0: 1 })).toBe(false);
    expect(deepEqual(1, "1")).toBe(false);
    expect(deepEqual(null, {})).toBe(false);
  });
});
