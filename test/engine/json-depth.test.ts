import { describe, expect, it } from "vitest";
import { nestsDeeperThan } from "../../src/protocol/json-depth.js";

describe("nestsDeeperThan", () => {
  it("counts arrays and objects, not brackets inside strings", () => {
    const nested = (n: number) => `${'{"a":['.repeat(n)}1${"]}".repeat(n)}`;
    expect(nestsDeeperThan(nested(2), 4)).toBe(false);
    expect(nestsDeeperThan(nested(3), 4)).toBe(true);
    // Brackets and escaped quotes in strings are text.
    const text = JSON.stringify({ s: `[[[[[[[[[[ \\" {{{{{{{{ "` });
    expect(nestsDeeperThan(text, 1)).toBe(false);
    expect(nestsDeeperThan(`[${text}]`, 1)).toBe(true);
  });

  it("a text too short to nest that deep is not scanned, and is not", () => {
    expect(nestsDeeperThan("[[[]]]", 3)).toBe(false);
    expect(nestsDeeperThan("[[[[]]]]", 3)).toBe(true);
  });
});
