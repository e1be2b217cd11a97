import { describe, expect, it } from "vitest";
import { nestsDeeperThan } from "../../src/protocol/json-depth.js";

const deeper = (text: string, max: number) => nestsDeeperThan(JSON.parse(text), text, max);

describe("nestsDeeperThan", () => {
  it("counts arrays and objects, not brackets inside strings", () => {
    const nested = (n: number) => `${'{"a":['.repeat(n)}1${"]}".repeat(n)}`;
    expect(deeper(nested(2), 4)).toBe(false);
    expect(deeper(nested(3), 4)).toBe(true);
    const text = JSON.stringify({ s: `[[[[[[[[[[ \\" {{{{{{{{ "` });
    expect(deeper(text, 1)).toBe(false);
    expect(deeper(`[${text}]`, 1)).toBe(true);
  });

  it("finds the deep branch among shallow ones, without recursion", () => {
    const deep = `${"[".repeat(100_000)}${"]".repeat(100_000)}`;
    expect(deeper(`{"a":1,"b":[[]],"c":${deep},"d":{}}`, 1000)).toBe(true);
  });

  it("a text too short to nest that deep is not walked, and is not", () => {
    expect(deeper("[[[]]]", 3)).toBe(false);
    expect(deeper("[[[[]]]]", 3)).toBe(true);
  });
});
