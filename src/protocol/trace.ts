import { randomBytes } from "node:crypto";

/** A W3C trace id (16 bytes hex); one per run. */
export function newTraceId(): string {
  return randomBytes(16).toString("hex");
}

// Span ids need uniqueness, not secrecy: cut them from a pool of random bytes refilled in
// batches, rather than reading randomness per request. The pool is small so that refilling is
// part of the warm path: a refill first met in optimized code throws away the whole inlined
// call path (~50 ms of recompiling in a 20,000-call run). It starts empty, so commands that call
// no agent never fill it.
const POOL_SIZE = 512;
let pool = Buffer.alloc(0);
let offset = POOL_SIZE;

function spanId(): string {
  if (offset + 8 > POOL_SIZE) {
    pool = randomBytes(POOL_SIZE);
    offset = 0;
  }
  const id = pool.toString("hex", offset, offset + 8);
  offset += 8;
  return id;
}

/** A W3C `traceparent` for one attempt: the run's trace id and a fresh span id, sampled. */
export function traceparent(traceId: string): string {
  return `00-${traceId}-${spanId()}-01`;
}
