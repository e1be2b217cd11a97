import { cancelledError } from "./abort.js";

interface Waiter {
  resolve: () => void;
  reject: (e: unknown) => void;
  signal?: AbortSignal;
  onAbort?: () => void;
  /** Set when it left the queue through its signal; skipped when its turn comes. */
  gone?: boolean;
}

/**
 * Bounds how many operations run at once (cockatiel's bulkhead, without a queue limit).
 * Waiters are served in FIFO order; an aborted waiter leaves the queue. The queue is an array
 * with a moving head, so tens of thousands of waiters cost O(1) each.
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
    if (this.active < this.limit) {
      this.active++;
      return Promise.resolve();
    }
    return new Promise((resolve, reject) => {
      const waiter: Waiter = { resolve, reject, signal };
      if (signal) {
        waiter.onAbort = () => {
          waiter.gone = true;
          reject(cancelledError(signal));
        };
        signal.addEventListener("abort", waiter.onAbort, { once: true });
      }
      this.queue.push(waiter);
    });
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
      if (next.onAbort) next.signal?.removeEventListener("abort", next.onAbort);
      next.resolve(); // the slot passes straight to the waiter
      return;
    }
  }
}
