/** Abort plumbing under every call: shared abort subscriptions, sleep and deadlines. */
import { getHeapSpaceStatistics, setFlagsFromString } from "node:v8";
import { runInNewContext } from "node:vm";
import { describe, expect, it } from "vitest";
import { deadline, onAbort, sleep } from "../../src/resilience/abort.js";
import { rejection } from "./util.js";

describe("onAbort", () => {
  it("calls every subscriber once, in order, when the signal aborts", () => {
    const controller = new AbortController();
    const calls: string[] = [];
    onAbort(controller.signal, () => calls.push("a"));
    onAbort(controller.signal, () => calls.push("b"));
    controller.abort();
    controller.abort();
    expect(calls).toEqual(["a", "b"]);
  });

  it("dispose stops one subscriber, once; the others still run, in order", () => {
    const controller = new AbortController();
    const calls: string[] = [];
    const subs = ["a", "b", "c", "d"].map((name) => onAbort(controller.signal, () => calls.push(name)));
    subs[0]!.dispose(); // the head
    subs[2]!.dispose(); // the middle
    subs[2]!.dispose(); // again: nothing happens
    subs[3]!.dispose(); // the tail
    onAbort(controller.signal, () => calls.push("e"));
    controller.abort();
    subs[1]!.dispose(); // after the abort: nothing happens
    expect(calls).toEqual(["b", "e"]);
  });

  it("many subscribers share one listener on the signal", () => {
    const controller = new AbortController();
    let added = 0;
    const add = controller.signal.addEventListener.bind(controller.signal);
    controller.signal.addEventListener = ((...args: Parameters<typeof add>) => {
      added++;
      add(...args);
    }) as typeof add;
    let n = 0;
    const subs = Array.from({ length: 10_000 }, () => onAbort(controller.signal, () => n++));
    for (const s of subs.slice(0, 5000)) s.dispose();
    controller.abort();
    expect(added).toBe(1);
    expect(n).toBe(5000);
  });

  it("a subscriber that unsubscribes another during the abort does not break the others", () => {
    const controller = new AbortController();
    const calls: string[] = [];
    const subs: { dispose(): void }[] = [];
    subs.push(
      onAbort(controller.signal, () => {
        calls.push("a");
        subs[2]!.dispose();
        subs[0]!.dispose(); // itself, while it runs
      }),
    );
    subs.push(onAbort(controller.signal, () => calls.push("b")));
    subs.push(onAbort(controller.signal, () => calls.push("c")));
    controller.abort();
    expect(calls).toEqual(["a", "b"]);
  });

  // Each call in flight subscribes and later disposes. The subscriber store outlives many
  // young-generation GCs; what a disposed subscription held must not survive them (a Set did
  // here: ~4 MB survived a scavenge and ~11 MB were promoted, against ~0.15 MB for the list).
  it("what disposed subscriptions held does not survive young-generation GCs", () => {
    setFlagsFromString("--expose-gc");
    const gc = runInNewContext("gc") as (options: { type: "minor" | "major" }) => void;
    const used = (space: string) =>
      getHeapSpaceStatistics().find((s) => s.space_name === space)!.space_used_size;
    const controller = new AbortController();
    const inFlight: { dispose(): void }[] = [];
    const churn = (n: number) => {
      for (let i = 0; i < n; i++) {
        const held = new Array<number>(256).fill(i); // ~2 KB per subscription
        inFlight.push(onAbort(controller.signal, () => held.length));
        if (inFlight.length > 64) inFlight.shift()!.dispose();
      }
    };
    churn(1000);
    gc({ type: "major" }); // the store is now in the old generation, as in a long run
    gc({ type: "minor" });
    gc({ type: "minor" });
    const oldBefore = used("old_space");
    churn(5000); // ~10 MB held by subscriptions, all but 64 disposed
    gc({ type: "minor" });
    expect(used("new_space")).toBeLessThan(1.5 * 1024 * 1024);
    gc({ type: "minor" });
    expect(used("old_space") - oldBefore).toBeLessThan(3 * 1024 * 1024);
  });
});

describe("sleep and deadline on a shared signal", () => {
  it("sleep rejects with cancelled on abort, and a finished sleep leaves no subscriber", async () => {
    const controller = new AbortController();
    await sleep(1, controller.signal);
    const pending = sleep(60_000, controller.signal);
    controller.abort();
    await rejection(pending, "cancelled");
  });

  it("a deadline follows its parent until disposed", () => {
    const parent = new AbortController();
    const first = deadline(undefined, parent.signal);
    first.dispose();
    const second = deadline(undefined, parent.signal);
    parent.abort(new Error("stop"));
    expect(first.signal.aborted).toBe(false);
    expect(second.signal.aborted).toBe(true);
    expect(second.timedOut()).toBe(false);
    second.dispose();
  });
});
