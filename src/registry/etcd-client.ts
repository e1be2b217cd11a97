import { createRequire } from "node:module";
import type { Etcd3, IOptions } from "etcd3";
import { AgentctlError } from "../errors.js";

/** Where etcd warnings go when the caller gives no `onWarning`: stderr, one line each. */
export function defaultWarn(message: string): void {
  process.stderr.write(message.endsWith("\n") ? message : `${message}\n`);
}

/** Default bound on connecting and on each unary etcd call, ms. */
export const DEFAULT_DIAL_TIMEOUT_MS = 5000;

/**
 * Reconnect delays of the watch stream: 200 ms doubling to at most 1 s. A re-dial timer pending
 * when the client is closed during an outage delays the exit by at most that much.
 */
const WATCH_BACKOFF_FIRST_MS = 200;
const WATCH_BACKOFF_MAX_MS = 1000;

/** Delay of etcd3's watch re-dial once the client is closing: nothing is left to re-dial. */
const WATCH_BACKOFF_CLOSING_MS = 10;

/**
 * The shape etcd3's watch manager reads (cockatiel's IBackoff): a delay and the next backoff.
 * Kept short so that a reconnect is noticed within seconds. etcd3 schedules a re-dial even when
 * its last watcher is cancelled; once closing, that timer is made near-immediate so that it never
 * holds the process open after close().
 */
interface Backoff {
  readonly duration: number;
  next(): Backoff;
}

function cappedBackoff(ms: number, closing: () => boolean): Backoff {
  return {
    get duration() {
      return closing() ? WATCH_BACKOFF_CLOSING_MS : ms;
    },
    next: () => cappedBackoff(Math.min(ms * 2, WATCH_BACKOFF_MAX_MS), closing),
  };
}

/** An etcd3 client and the way to close it without leaving timers behind. */
export interface EtcdConnection {
  readonly client: Etcd3;
  /** Call before cancelling watchers: etcd3's re-dial timers become near-immediate. */
  beginClose(): void;
  /** Closes the client (beginClose() included). */
  close(): void;
}

/**
 * An etcd3 client tuned for service discovery: each unary call is bounded by `dialTimeoutMs`
 * (etcd3 1.x accepts `dialTimeout` but does not use it), gRPC reconnects within 2 s rather than
 * backing off to minutes, keepalive pings notice a dead peer, and the watch stream re-dials fast.
 */
export async function createEtcdClient(
  hosts: string[],
  dialTimeoutMs = DEFAULT_DIAL_TIMEOUT_MS,
): Promise<EtcdConnection> {
  // Loaded on first use: gRPC is heavy, and most users of the library never touch etcd. With
  // require, not import(): the CLI bundle is compiled where import() is unavailable (compile-cache.ts).
  const { Etcd3 } = createRequire(import.meta.url)("etcd3") as typeof import("etcd3");
  let closing = false;
  const options: IOptions = {
    hosts,
    dialTimeout: dialTimeoutMs,
    defaultCallOptions: (context) => (context.isStream ? {} : { deadline: Date.now() + dialTimeoutMs }),
    grpcOptions: {
      "grpc.initial_reconnect_backoff_ms": 250,
      "grpc.max_reconnect_backoff_ms": 2000,
      // etcd refuses pings more often than every 5 s by default.
      "grpc.keepalive_time_ms": 10_000,
      "grpc.keepalive_timeout_ms": 5000,
    },
    faultHandling: { watchBackoff: cappedBackoff(WATCH_BACKOFF_FIRST_MS, () => closing) as never },
  };
  const client = new Etcd3(options);
  return {
    client,
    beginClose() {
      closing = true;
    },
    close() {
      closing = true;
      client.close();
    },
  };
}

/** Rejects with `connection` if `promise` has not settled within `ms`; never leaves a timer behind. */
export function withTimeout<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(
      () => reject(new AgentctlError("connection", `${what}: no answer within ${ms} ms`)),
      ms,
    );
    timer.unref();
  });
  // The loser of the race may still reject later: keep that from becoming unhandled.
  promise.catch(() => {});
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

/** A one-line reason from whatever etcd3 or gRPC threw. */
export function reason(err: unknown): string {
  const message = err instanceof Error ? err.message : String(err);
  return message
    .split("\n")[0]!
    .replace(/ Please report this error at \S+$/, "")
    .replace(/\.? ?Resolution note:.*$/, "")
    .replace(/Last error: Error: /, "last error: ")
    .trim();
}
