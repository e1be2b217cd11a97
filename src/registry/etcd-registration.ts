import { EtcdLeaseInvalidError, type Lease } from "etcd3";
import { AgentctlError } from "../errors.js";
import {
  createEtcdClient,
  DEFAULT_DIAL_TIMEOUT_MS,
  defaultWarn,
  type EtcdConnection,
  reason,
  withTimeout,
} from "./etcd-client.js";
import { checkInstance, encodeInstance, instanceKey } from "./etcd-layout.js";
import { describeEtcdUrl, parseEtcdUrl } from "./etcd-url.js";

/** TTL of a registration's lease, seconds: a killed server vanishes within it (SPEC §9). */
export const REGISTRATION_TTL_SECONDS = 10;

export interface EtcdRegistrationSpec {
  service: string;
  id: string;
  endpoint: string;
  /** Agents the instance serves; absent = any agent. */
  agents?: string[];
  metadata?: Record<string, unknown>;
}

export interface EtcdRegistrationOptions {
  /** Receives each warning and notice as one line. Default: written to stderr. */
  onWarning?: (message: string) => void;
  /** Bound on connecting and on each etcd request, ms (default 5000); for tests. */
  dialTimeoutMs?: number;
  /**
   * Abandons the first registration at once (rejecting with `cancelled`) instead of waiting
   * for an unresponsive etcd; a lease granted meanwhile expires by itself.
   */
  signal?: AbortSignal;
}

export interface EtcdRegistration {
  /** The key written: `PREFIX/<service>/<id>`. */
  readonly key: string;
  /** Revokes the lease (deleting the key) and closes the client. Idempotent; never rejects. */
  close(): Promise<void>;
}

const REGRANT_FIRST_MS = 500;
const REGRANT_MAX_MS = 5000;

/**
 * Puts the instance's key under a lease of 10 s, kept alive by a heartbeat every third of it. If
 * the lease is lost (etcd was unreachable for longer than the TTL), a new one is granted and the
 * key written again, with a warning. Rejects (code `connection`) if the first registration fails,
 * `invalid` for a malformed URL or instance.
 */
export async function registerInEtcd(
  url: string,
  spec: EtcdRegistrationSpec,
  options: EtcdRegistrationOptions = {},
): Promise<EtcdRegistration> {
  const parsed = parseEtcdUrl(url);
  checkInstance(spec);
  const where = describeEtcdUrl(parsed);
  const key = instanceKey(parsed.prefix, spec.service, spec.id);
  const value = encodeInstance(spec);
  const timeout = options.dialTimeoutMs ?? DEFAULT_DIAL_TIMEOUT_MS;
  const registration = new Registration(
    await createEtcdClient(parsed.hosts, timeout),
    key,
    value,
    where,
    timeout,
    options.onWarning ?? defaultWarn,
  );
  const abandon = () => registration.abandon();
  options.signal?.addEventListener("abort", abandon, { once: true });
  try {
    if (options.signal?.aborted) abandon();
    await registration.register();
  } catch (err) {
    await registration.close();
    if (options.signal?.aborted)
      throw new AgentctlError("cancelled", `the registration of ${key} was abandoned`);
    throw new AgentctlError("connection", `cannot register ${key} in etcd at ${where}: ${reason(err)}`, {
      cause: err,
    });
  } finally {
    options.signal?.removeEventListener("abort", abandon);
  }
  return registration;
}

class Registration implements EtcdRegistration {
  private lease: Lease | undefined;
  private closed = false;
  private closing: Promise<void> | undefined;
  private timer: NodeJS.Timeout | undefined;
  private heartbeat: NodeJS.Timeout | undefined;
  private delay = REGRANT_FIRST_MS;
  /** Lost a lease and not registered again yet. */
  private lost = false;
  /** Registered once: only then is a lost lease granted again (the first failure rejects). */
  private started = false;

  constructor(
    private readonly connection: EtcdConnection,
    readonly key: string,
    private readonly value: string,
    private readonly where: string,
    private readonly timeout: number,
    private readonly warn: (message: string) => void,
  ) {}

  /** Grants a lease and puts the key under it; the lease's loss schedules this again. */
  async register(): Promise<void> {
    // Our own heartbeat, not etcd3's automatic keepalive: when two of its keepalive streams fail
    // at once (etcd stalled past the TTL, then the connection dropped), it leaks an interval that
    // nothing clears, and the process never exits.
    const lease = this.connection.client.lease(REGISTRATION_TTL_SECONDS, { autoKeepAlive: false });
    this.lease = lease;
    lease.on("lost", (err) => this.onLost(lease, err));
    try {
      await withTimeout(lease.put(this.key).value(this.value).exec(), this.timeout, `etcd at ${this.where}`);
    } catch (err) {
      // Never granted, or granted but the key not written: drop this lease (best effort).
      if (this.lease === lease) this.lease = undefined;
      lease.removeAllListeners("lost");
      void withTimeout(lease.revoke(), this.timeout, "revoking a lease").catch(() => lease.release());
      throw err;
    }
    this.started = true;
    this.beat(lease);
  }

  /** Renews `lease` every third of its TTL (as etcd's Go client does); lost past the TTL. */
  private beat(lease: Lease): void {
    clearInterval(this.heartbeat);
    let renewed = Date.now();
    this.heartbeat = setInterval(
      () => {
        if (this.closed || this.lease !== lease) return;
        withTimeout(lease.keepaliveOnce(), this.timeout, `etcd at ${this.where}`).then(
          () => {
            renewed = Date.now();
          },
          (err) => {
            // A lease etcd says has expired is reported through "lost"; this is etcd unreachable.
            if (Date.now() - renewed >= REGISTRATION_TTL_SECONDS * 1000) this.onLost(lease, err);
          },
        );
      },
      (REGISTRATION_TTL_SECONDS * 1000) / 3,
    );
    // Shutdown clears it; unreferenced all the same, so that it can never keep the process alive.
    this.heartbeat.unref();
  }

  close(): Promise<void> {
    this.closing ??= this.shutdown();
    return this.closing;
  }

  /** Closes without asking etcd anything (not even to revoke): for a registration given up. */
  abandon(): void {
    this.closing ??= (async () => {
      this.stopTimers();
      this.lease?.removeAllListeners("lost");
      this.lease?.release();
      this.lease = undefined;
      this.connection.close();
    })();
  }

  private stopTimers(): void {
    this.closed = true;
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
    clearInterval(this.heartbeat);
  }

  private async shutdown(): Promise<void> {
    this.stopTimers();
    const lease = this.lease;
    this.lease = undefined;
    if (lease) {
      lease.removeAllListeners("lost");
      try {
        await withTimeout(lease.revoke(), this.timeout, `etcd at ${this.where}`);
      } catch (err) {
        lease.release();
        this.warn(
          `warning: could not remove ${this.key} from etcd at ${this.where} (${reason(err)}); it expires within ${REGISTRATION_TTL_SECONDS} s`,
        );
      }
    }
    this.connection.close();
  }

  private onLost(lease: Lease, err: unknown): void {
    if (this.closed || !this.started || this.lease !== lease) return;
    this.lease = undefined;
    clearInterval(this.heartbeat);
    lease.removeAllListeners("lost");
    lease.release();
    if (!this.lost) {
      this.lost = true;
      const why = err instanceof EtcdLeaseInvalidError ? "it expired or was revoked" : reason(err);
      this.warn(`warning: lost the etcd lease of ${this.key} (${why}); registering again`);
    }
    this.schedule();
  }

  private schedule(): void {
    if (this.closed || this.timer) return;
    const delay = this.delay;
    this.delay = Math.min(this.delay * 2, REGRANT_MAX_MS);
    this.timer = setTimeout(() => {
      this.timer = undefined;
      if (this.closed) return;
      this.register().then(
        () => {
          if (this.closed) return;
          this.delay = REGRANT_FIRST_MS;
          if (this.lost) {
            this.lost = false;
            this.warn(`etcd registration of ${this.key} restored`);
          }
        },
        () => this.schedule(),
      );
    }, delay);
  }
}
