import { AgentctlError } from "../errors.js";

/** Rejects with `cancelled` when the signal is (or becomes) aborted. */
export function throwIfAborted(signal: AbortSignal | undefined): void {
  if (signal?.aborted) throw cancelledError(signal);
}

export function cancelledError(signal?: AbortSignal): AgentctlError {
  const reason = signal?.reason;
  if (reason instanceof AgentctlError && reason.code === "cancelled") return reason;
  return new AgentctlError("cancelled", "cancelled", { cause: reason });
}

/** Waits `ms`, or rejects with `cancelled` as soon as the signal aborts. */
export function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  if (signal?.aborted) return Promise.reject(cancelledError(signal));
  if (ms <= 0) return Promise.resolve();
  return new Promise((resolve, reject) => {
    const onAbort = () => {
      clearTimeout(timer);
      reject(cancelledError(signal));
    };
    const timer = setTimeout(() => {
      signal?.removeEventListener("abort", onAbort);
      resolve();
    }, ms);
    signal?.addEventListener("abort", onAbort, { once: true });
  });
}

/**
 * A signal for one operation bounded by `timeoutMs` and by a parent signal. `timedOut()` tells
 * which of the two fired, so the error can say `timeout` rather than `cancelled`.
 * Always call `dispose()` to clear the timer and the listener.
 */
export interface Deadline {
  readonly signal: AbortSignal;
  timedOut(): boolean;
  dispose(): void;
}

export function deadline(timeoutMs: number | undefined, parent?: AbortSignal): Deadline {
  const controller = new AbortController();
  let fired = false;
  const onParentAbort = () => controller.abort(parent?.reason);
  if (parent?.aborted) controller.abort(parent.reason);
  else parent?.addEventListener("abort", onParentAbort, { once: true });
  const timer =
    timeoutMs !== undefined && timeoutMs > 0 && Number.isFinite(timeoutMs)
      ? setTimeout(() => {
          fired = true;
          controller.abort(new AgentctlError("timeout", `timed out after ${timeoutMs} ms`));
        }, timeoutMs)
      : undefined;
  return {
    signal: controller.signal,
    timedOut: () => fired,
    dispose: () => {
      if (timer !== undefined) clearTimeout(timer);
      parent?.removeEventListener("abort", onParentAbort);
    },
  };
}
