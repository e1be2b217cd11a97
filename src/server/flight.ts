import type { ServerResponse } from "node:http";
import type { Reply } from "./reply.js";

/**
 * One agent run shared by every request that asked for it (duplicates with the same
 * idempotency key wait for it instead of running the agent again). It is aborted only when all
 * of those requests have disconnected before it finished.
 */
export class Flight {
  readonly promise: Promise<Reply>;
  private readonly controller = new AbortController();
  private waiters = 0;
  private settled = false;

  constructor(run: (signal: AbortSignal) => Promise<Reply>) {
    this.promise = run(this.controller.signal).finally(() => {
      this.settled = true;
    });
  }

  /** Aborted: a newcomer must start a fresh run rather than join this one. */
  get abandoned(): boolean {
    return this.controller.signal.aborted;
  }

  attach(res: ServerResponse): void {
    if (this.settled) return;
    this.waiters++;
    res.once("close", () => {
      if (res.writableFinished) return;
      this.waiters--;
      if (this.waiters === 0 && !this.settled) this.controller.abort();
    });
  }
}
