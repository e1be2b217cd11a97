import { describe, expect, it } from "vitest";
import {
  durationProblem,
  durationToNanoseconds,
  formatDuration,
  MAX_DURATION_MS,
  parseDuration,
} from "../../src/pipeline/duration.js";

describe("parseDuration", () => {
  it.each([
    ["250ms", 250],
    ["30s", 30_000],
    ["5m", 300_000],
    ["1h", 3_600_000],
    ["1m30s", 90_000],
    ["1h2m3s4ms", 3_723_004],
    ["1.5s", 1500],
    ["0.5ms", 0.5],
    ["0s", 0],
    ["5000", 5000],
    [0, 0],
    [1500, 1500],
    [2.5, 2.5],
  ])("%j → %d ms", (input, ms) => {
    expect(parseDuration(input)).toBe(ms);
  });

  it.each(["3x", "", "s", "-1s", "1 s", " 1s", "1.s", ".5s", "1d", "1e3", "ms", "1sm", "x".repeat(1000)])(
    "rejects %j",
    (input) => {
      expect(parseDuration(input)).toBeUndefined();
    },
  );

  it.each([[-1], [Number.NaN], [Number.POSITIVE_INFINITY], [null], [undefined], [true], [[]], [{}]])(
    "rejects %j",
    (input) => {
      expect(parseDuration(input)).toBeUndefined();
    },
  );

  it("rejects durations a timer cannot wait for", () => {
    expect(parseDuration(MAX_DURATION_MS)).toBe(MAX_DURATION_MS);
    expect(parseDuration(MAX_DURATION_MS + 1)).toBeUndefined();
    expect(parseDuration("1000h")).toBeUndefined();
    expect(durationProblem("1000h")).toMatch(/too long/);
  });

  it("is fast on long digit strings (no catastrophic backtracking)", () => {
    const t0 = performance.now();
    expect(parseDuration("1".repeat(5_000_000))).toBeUndefined();
    expect(durationProblem("1".repeat(5_000_000))).toMatch(/^expected a duration like "30s", got "1111/);
    expect(performance.now() - t0).toBeLessThan(500);
  });
});

describe("durationProblem", () => {
  it("explains what is wrong", () => {
    expect(durationProblem("30s")).toBeUndefined();
    expect(durationProblem("3x")).toBe('expected a duration like "30s", got "3x"');
    expect(durationProblem(-5)).toBe('expected a duration like "30s", got -5');
    expect(durationProblem([1])).toBe('expected a duration like "30s", got a list');
  });
});

describe("formatDuration", () => {
  it.each([
    [250, "250ms"],
    [0, "0ms"],
    [1000, "1s"],
    [1500, "1.5s"],
    [90_000, "1m30s"],
    [3_600_000, "1h"],
    [3_723_004, "1h2m3.004s"],
    [0.5, "0.5ms"],
  ])("%d → %s", (ms, text) => {
    expect(formatDuration(ms)).toBe(text);
  });

  it("round-trips through parseDuration", () => {
    for (const ms of [0, 1, 999, 1000, 1001, 59_999, 60_000, 3_599_999, 3_600_000, 86_400_000, 123_456_789]) {
      expect(parseDuration(formatDuration(ms))).toBe(ms);
    }
  });

  it("converts to nanoseconds as integers", () => {
    expect(durationToNanoseconds(20_000)).toBe(20_000_000_000);
    expect(durationToNanoseconds(0.5)).toBe(500_000);
    expect(Number.isInteger(durationToNanoseconds(1 / 3))).toBe(true);
  });
});
