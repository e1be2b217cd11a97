import { randomBytes } from "node:crypto";

/** A W3C trace id (16 bytes hex); one per run. */
export function newTraceId(): string {
  return randomBytes(16).toString("hex");
}

/** A W3C `traceparent` for one attempt: the run's trace id and a fresh span id, sampled. */
export function traceparent(traceId: string): string {
  return `00-${traceId}-${randomBytes(8).toString("hex")}-01`;
}
