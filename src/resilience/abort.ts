import { AgentctlError } from "../errors.js";

const subscribers = new WeakMap<AbortSignal, Set<() => void>>();

/**
 * Calls `fn` when `signal` aborts (check `signal.aborted` first: an aborted signal never calls
 * it). Every subscriber of one signal shares a single listener, so subscribing and
 * {@link offAbort} cost O(1): a run's signal has one subscriber per call in flight, and
 * EventTarget walks its whole list of listeners on every add and remove. `fn` must not throw.
 */
export function onAbort(signal: AbortSignal, fn: () => void): void {
  let set = subscribers.get(signal);
  if (set === undefined) {
    const fns = new Set<() => void>();
    set = fns;
    subscribers.set(signal, fns);
    signal.addEventListener(
      "abort",
      () => {
        for (const f of fns) f();
        subscribers.delete(signal);
      },
      { once: true },
    );
  }
  set.add(fn);
}

/** Stops calling `fn` on abort (see {@link onAbort}). */
export function offAbort(signal: AbortSignal, fn: () => void): void {
  subscribers.get(signal)?.delete(fn);
}

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
    const abort = () => {
      clearTimeout(timer);
      reject(cancelledError(signal));
    };
    const timer = setTimeout(() => {
      if (signal) offAbort(signal, abort);
      resolve();
    }, ms);
    if (signal) onAbort(signal, abort);
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
  else if (parent) onAbort(parent, onParentAbort);
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
      if (parent) offAbort(parent, onParentAbort);
    },
  };
}
