/** Exponential backoff with full jitter and Retry-After parsing (SPEC §4). */
import { describe, expect, it } from "vitest";
import { backoffDelay, parseRetryAfter } from "../../src/index.js";

describe("backoffDelay", () => {
  it("defaults: base 200 ms, factor 2, cap 10 s (the ceiling, with random = 1)", () => {
    const one = () => 1;
    expect([0, 1, 2, 3, 4, 5, 6, 7, 20].map((n) => backoffDelay(n, {}, one))).toEqual([
      200, 400, 800, 1600, 3200, 6400, 10_000, 10_000, 10_000,
    ]);
  });

  it("full jitter: uniform in [0, ceiling]", () => {
    expect(backoffDelay(3, {}, () => 0)).toBe(0);
    expect(backoffDelay(3, {}, () => 0.5)).toBe(800);
    for (let i = 0; i < 200; i++) {
      const d = backoffDelay(2, {});
      expect(d).toBeGreaterThanOrEqual(0);
      expect(d).toBeLessThanOrEqual(800);
      expect(Number.isInteger(d)).toBe(true);
    }
  });

  it("configurable base, factor and cap; negative retry numbers count as the first", () => {
    const one = () => 1;
    expect(backoffDelay(0, { base: 10, factor: 3, cap: 50 }, one)).toBe(10);
    expect(backoffDelay(1, { base: 10, factor: 3, cap: 50 }, one)).toBe(30);
    expect(backoffDelay(2, { base: 10, factor: 3, cap: 50 }, one)).toBe(50);
    expect(backoffDelay(-3, { base: 10 }, one)).toBe(10);
  });
});

describe("parseRetryAfter", () => {
  const now = Date.UTC(2024, 0, 2, 3, 4, 5);

  it("delta seconds", () => {
    expect(parseRetryAfter("0", now)).toBe(0);
    expect(parseRetryAfter("5", now)).toBe(5000);
    expect(parseRetryAfter(" 12 ", now)).toBe(12_000);
    expect(parseRetryAfter(["3", "9"], now)).toBe(3000);
  });

  it("an HTTP date, relative to now; a past date is 0", () => {
    expect(parseRetryAfter(new Date(now + 8000).toUTCString(), now)).toBe(8000);
    expect(parseRetryAfter("Tue, 02 Jan 2024 03:04:15 GMT", now)).toBe(10_000);
    expect(parseRetryAfter(new Date(now - 60_000).toUTCString(), now)).toBe(0);
  });

  it("capped at 30 s", () => {
    expect(parseRetryAfter("31", now)).toBe(30_000);
    expect(parseRetryAfter("86400", now)).toBe(30_000);
    expect(parseRetryAfter(new Date(now + 3_600_000).toUTCString(), now)).toBe(30_000);
  });

  it("absent or unparseable: undefined", () => {
    expect(parseRetryAfter(undefined, now)).toBeUndefined();
    expect(parseRetryAfter("soon", now)).toBeUndefined();
    expect(parseRetryAfter("", now)).toBeUndefined();
    // Not delta-seconds; whatever Date.parse makes of them, they never ask for a wait.
    expect(parseRetryAfter("-5", now) ?? 0).toBe(0);
    expect(parseRetryAfter("1.5", now) ?? 0).toBe(0);
  });
});
