import { describe, expect, it } from "vitest";
import { ExpiringMap } from "../../src/server/store.js";

const limits = { ttlMs: 1000, maxEntries: 3, maxChars: 100, sizeOf: (v: string) => v.length };

describe("ExpiringMap (the reference server's idempotency and task stores)", () => {
  it("forgets entries after the TTL", () => {
    const m = new ExpiringMap(limits);
    m.set("a", "1", 0);
    expect(m.get("a", 999)).toBe("1");
    expect(m.get("a", 1000)).toBeUndefined();
  });

  it("keeps at most maxEntries, dropping the oldest", () => {
    const m = new ExpiringMap(limits);
    for (const k of ["a", "b", "c", "d"]) m.set(k, "v", 0);
    expect(m.get("a", 0)).toBeUndefined();
    expect(["b", "c", "d"].map((k) => m.get(k, 0))).toEqual(["v", "v", "v"]);
  });

  it("counts an overwritten key as the newest, and keeps order through deletions", () => {
    const m = new ExpiringMap(limits);
    for (const k of ["a", "b", "c"]) m.set(k, "v", 0);
    m.set("a", "w", 0); // now the newest: "b" is the oldest
    m.replace("c", "v", undefined, 0); // removed from the middle
    m.set("d", "v", 0);
    m.set("e", "v", 0); // 4 entries: "b" goes
    expect(["a", "b", "d", "e"].map((k) => m.get(k, 0))).toEqual(["w", undefined, "v", "v"]);
    m.set("f", "v", 0); // then "a"
    expect(["a", "d", "e", "f"].map((k) => m.get(k, 0))).toEqual([undefined, "v", "v", "v"]);
  });

  it("keeps at most maxChars of keys and values, dropping the oldest", () => {
    const m = new ExpiringMap(limits);
    m.set("a", "x".repeat(40), 0); // 41 characters
    m.set("b", "x".repeat(40), 0); // 82
    m.set("c", "x".repeat(40), 0); // 123: "a" goes
    expect(m.get("a", 0)).toBeUndefined();
    expect(m.get("b", 0)).toHaveLength(40);
    // A key counts too: one this long leaves room for nothing else.
    m.set("k".repeat(95), "v", 0);
    expect(m.get("b", 0)).toBeUndefined();
    expect(m.get("c", 0)).toBeUndefined();
    expect(m.get("k".repeat(95), 0)).toBe("v");
  });

  it("never keeps a single entry larger than maxChars", () => {
    const m = new ExpiringMap(limits);
    m.set("big", "x".repeat(200), 0);
    expect(m.get("big", 0)).toBeUndefined();
  });

  it("re-weighs a replaced value and frees what a deleted or overwritten one held", () => {
    const m = new ExpiringMap(limits);
    m.set("a", "", 0); // a run in flight: weighs its key only
    m.set("b", "x".repeat(60), 0);
    m.replace("a", "", "y".repeat(30), 0); // 2 + 61 + 30 = 93: fits
    expect(m.get("a", 0)).toHaveLength(30);
    m.replace("a", "not the current value", undefined, 0); // only while "a" still maps to ""
    expect(m.get("a", 0)).toHaveLength(30);
    m.replace("a", "y".repeat(30), "z".repeat(50), 0); // 113: the oldest, "a" itself, goes
    expect(m.get("a", 0)).toBeUndefined();
    expect(m.get("b", 0)).toHaveLength(60);
    m.set("b", "w", 0); // overwriting frees the 60 characters
    m.set("c", "x".repeat(90), 0); // 2 + 91 = 93
    expect(m.get("b", 0)).toBe("w");
    expect(m.get("c", 0)).toHaveLength(90);
  });
});
