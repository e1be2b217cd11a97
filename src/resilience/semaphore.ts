import { type AbortSubscription, cancelledError, onAbort } from "./abort.js";

/** One queued `acquire`: given the slot by `release`, or rejected when its signal aborts. */
class Waiter {
  /** Set once it left the queue (aborted); skipped when its turn comes. */
  gone = false;
  readonly subscription: AbortSubscription | undefined;

  constructor(
    readonly resolve: () => void,
    reject: (err: unknown) => void,
    signal: AbortSignal | undefined,
  ) {
    if (signal) {
      this.subscription = onAbort(signal, () => {
        this.gone = true;
        reject(cancelledError(signal));
      });
    }
  }
}

/**
 * Bounds how many operations run at once (cockatiel's bulkhead, without a queue limit).
 * Waiters are served in FIFO order; an aborted waiter leaves the queue. The queue is an array
 * with a moving head and abort subscriptions are O(1) ({@link onAbort}) however many waiters
 * share a signal (a run's signal is shared by thousands), so every operation costs O(1).
 */
export class Semaphore {
  private active = 0;
  private queue: Waiter[] = [];
  private head = 0;

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
      this.queue.push(new Waiter(resolve, reject, signal));
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
      next.subscription?.dispose();
      next.resolve(); // the slot passes straight to the waiter
      return;
    }
  }
}
