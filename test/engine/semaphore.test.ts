/** The concurrency limit under the coordinator (SPEC §4 "Concurrency"). */
import { describe, expect, it } from "vitest";
import { Semaphore } from "../../src/resilience/semaphore.js";
import { rejection } from "./util.js";

function deferred() {
  let resolve!: () => void;
  const promise = new Promise<void>((r) => {
    resolve = r;
  });
  return { promise, resolve };
}

describe("Semaphore", () => {
  it("rejects a limit below 1", () => {
    expect(() => new Semaphore(0)).toThrow(RangeError);
    expect(() => new Semaphore(Number.NaN)).toThrow(RangeError);
  });

  it("never runs more than the limit at once, and runs everything", async () => {
    const sem = new Semaphore(3);
    let active = 0;
    let max = 0;
    const results = await Promise.all(
      Array.from({ length: 30 }, (_, i) =>
        sem.run(async () => {
          active++;
          max = Math.max(max, active);
          await new Promise((r) => setTimeout(r, 1 + (i % 3)));
          active--;
          return i;
        }),
      ),
    );
    expect(max).toBe(3);
    expect(results).toEqual(Array.from({ length: 30 }, (_, i) => i));
    expect(sem.inFlight).toBe(0);
  });

  it("serves waiters in FIFO order and releases the slot when fn throws", async () => {
    const sem = new Semaphore(1);
    const gate = deferred();
    const order: number[] = [];
    const first = sem.run(async () => {
      await gate.promise;
      throw new Error("boom");
    });
    const rest = [1, 2, 3].map((n) => sem.run(async () => void order.push(n)));
    gate.resolve();
    await expect(first).rejects.toThrow("boom");
    await Promise.all(rest);
    expect(order).toEqual([1, 2, 3]);
    expect(sem.inFlight).toBe(0);
  });

  it("an aborted waiter leaves the queue with cancelled and takes no slot", async () => {
    const sem = new Semaphore(1);
    const gate = deferred();
    const holder = sem.run(() => gate.promise);
    const controller = new AbortController();
    let ran = false;
    const waiter = sem.run(async () => {
      ran = true;
    }, controller.signal);
    const after = sem.run(async () => "after");
    controller.abort();
    await rejection(waiter, "cancelled");
    gate.resolve();
    await holder;
    expect(await after).toBe("after");
    expect(ran).toBe(false);
    expect(sem.inFlight).toBe(0);
    await rejection(
      sem.run(async () => 1, AbortSignal.abort()),
      "cancelled",
    );
  });

  it("tryAcquire takes a free slot at once and refuses when none is free", async () => {
    const sem = new Semaphore(2);
    expect(sem.tryAcquire()).toBe(true);
    expect(sem.tryAcquire()).toBe(true);
    expect(sem.tryAcquire()).toBe(false);
    expect(sem.inFlight).toBe(2);
    const waiting = sem.acquire();
    sem.release(); // passes straight to the waiter
    await waiting;
    expect(sem.inFlight).toBe(2);
    sem.release();
    sem.release();
    expect(sem.inFlight).toBe(0);
  });

  it("thousands of waiters on one signal are all cancelled by its abort, in one go", async () => {
    const sem = new Semaphore(1);
    expect(sem.tryAcquire()).toBe(true);
    const controller = new AbortController();
    const waiters = Array.from({ length: 5000 }, () => sem.acquire(controller.signal));
    controller.abort();
    const settled = await Promise.allSettled(waiters);
    expect(settled.every((s) => s.status === "rejected")).toBe(true);
    sem.release();
    expect(sem.inFlight).toBe(0);
    expect(sem.tryAcquire()).toBe(true);
  });
});
