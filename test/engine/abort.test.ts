/** Abort plumbing under every call: shared abort subscriptions, sleep and deadlines. */
import { describe, expect, it } from "vitest";
import { deadline, offAbort, onAbort, sleep } from "../../src/resilience/abort.js";
import { rejection } from "./util.js";

describe("onAbort / offAbort", () => {
  it("calls every subscriber once, in order, when the signal aborts", () => {
    const controller = new AbortController();
    const calls: string[] = [];
    onAbort(controller.signal, () => calls.push("a"));
    onAbort(controller.signal, () => calls.push("b"));
    controller.abort();
    controller.abort();
    expect(calls).toEqual(["a", "b"]);
  });

  it("offAbort stops one subscriber; the others still run", () => {
    const controller = new AbortController();
    const calls: string[] = [];
    const a = () => calls.push("a");
    onAbort(controller.signal, a);
    onAbort(controller.signal, () => calls.push("b"));
    offAbort(controller.signal, a);
    offAbort(new AbortController().signal, a); // unknown signal: nothing happens
    controller.abort();
    expect(calls).toEqual(["b"]);
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
    const fns = Array.from({ length: 10_000 }, () => () => n++);
    for (const f of fns) onAbort(controller.signal, f);
    for (const f of fns.slice(0, 5000)) offAbort(controller.signal, f);
    controller.abort();
    expect(added).toBe(1);
    expect(n).toBe(5000);
  });

  it("a subscriber that unsubscribes another during the abort does not break the others", () => {
    const controller = new AbortController();
    const calls: string[] = [];
    const c = () => calls.push("c");
    onAbort(controller.signal, () => {
      calls.push("a");
      offAbort(controller.signal, c);
    });
    onAbort(controller.signal, () => calls.push("b"));
    onAbort(controller.signal, c);
    controller.abort();
    expect(calls).toEqual(["a", "b"]);
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
