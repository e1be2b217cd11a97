import { cancelledError } from "./abort.js";

interface Waiter {
  resolve: () => void;
  reject: (e: unknown) => void;
  signal?: AbortSignal;
  /** Set once it left the queue (aborted); skipped when its turn comes. */
  gone?: boolean;
}

/**
 * Bounds how many operations run at once (cockatiel's bulkhead, without a queue limit).
 * Waiters are served in FIFO order; an aborted waiter leaves the queue. The queue is an array
 * with a moving head, and each distinct signal gets one abort listener however many waiters
 * share it (a run's signal is shared by thousands), so every operation costs O(1).
 */
export class Semaphore {
  private active = 0;
  private queue: Waiter[] = [];
  private head = 0;
  // Weak: a signal and its one listener go away together once nobody holds the signal.
  private readonly bySignal = new WeakMap<AbortSignal, Set<Waiter>>();

  constructor(readonly limit: number) {
    if (!(limit >= 1)) throw new RangeError("semaphore limit must be at least 1");
  }

  get inFlight(): number {
    return this.active;
  }

  async run<T>(fn: () => Promise<T>, signal?: AbortSignal): Promise<T> {
    await this.acquire(signal);
    try {
      return await fn();
    } finally {
      this.release();
    }
  }

  acquire(signal?: AbortSignal): Promise<void> {
    if (signal?.aborted) return Promise.reject(cancelledError(signal));
    if (this.tryAcquire()) return Promise.resolve();
    return new Promise((resolve, reject) => {
      const waiter: Waiter = { resolve, reject, signal };
      if (signal) this.watch(signal).add(waiter);
      this.queue.push(waiter);
    });
  }

  /** Takes a slot if one is free, without waiting (and without a promise). */
  tryAcquire(): boolean {
    if (this.active >= this.limit) return false;
    this.active++;
    return true;
  }

  release(): void {
    for (;;) {
      const next = this.queue[this.head];
      if (next === undefined) {
        this.active--;
        return;
      }
      this.queue[this.head++] = undefined as unknown as Waiter;
      if (this.head > 1024 && this.head * 2 > this.queue.length) {
        this.queue = this.queue.slice(this.head);
        this.head = 0;
      }
      if (next.gone) continue;
      if (next.signal) this.unwatch(next.signal, next);
      next.resolve(); // the slot passes straight to the waiter
      return;
    }
  }

  private watch(signal: AbortSignal): Set<Waiter> {
    let waiters = this.bySignal.get(signal);
    if (!waiters) {
      const set = new Set<Waiter>();
      waiters = set;
      this.bySignal.set(signal, set);
      signal.addEventListener(
        "abort",
        () => {
          this.bySignal.delete(signal);
          for (const w of set) {
            w.gone = true;
            w.reject(cancelledError(signal));
          }
        },
        { once: true },
      );
    }
    return waiters;
  }

  private unwatch(signal: AbortSignal, waiter: Waiter): void {
    this.bySignal.get(signal)?.delete(waiter);
  }
}
