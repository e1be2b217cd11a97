import type { IKeyValue, Watcher } from "etcd3";
import { AgentctlError } from "../errors.js";
import {
  createEtcdClient,
  DEFAULT_DIAL_TIMEOUT_MS,
  defaultWarn,
  type EtcdConnection,
  reason,
  withTimeout,
} from "./etcd-client.js";
import { decodeInstance, type EtcdInstance, serviceDirectory } from "./etcd-layout.js";
import { describeEtcdUrl, parseEtcdUrl } from "./etcd-url.js";
import type { Registry } from "./registry.js";

export interface EtcdSourceOptions {
  /**
   * Receives each warning and notice as one line (`warning: lost etcd at …`, `etcd reconnected
   * …`, skipped bad values). Default: written to stderr.
   */
  onWarning?: (message: string) => void;
  /** Bound on connecting and on each etcd request, ms (default 5000); for tests. */
  dialTimeoutMs?: number;
}

/** A live feed of instances into a Registry. */
export interface RegistrySource {
  /** Stops following etcd and frees the client; the registry keeps what it has. Idempotent. */
  close(): Promise<void>;
}

/** Delays between attempts to re-read the registry after a reconnect or a cancelled watch. */
const RESYNC_FIRST_MS = 250;
const RESYNC_MAX_MS = 2000;
/** How long close() waits for the watch to be cancelled before closing the client anyway. */
const CANCEL_TIMEOUT_MS = 2000;

/**
 * Loads every instance under the prefix into `registry`, then follows changes until close().
 * Rejects (code `connection`) if the initial load fails, `invalid` for a malformed URL.
 *
 * While etcd is unreachable the registry keeps the last known instances (one warning); once the
 * connection is back the prefix is listed again and the registry reconciled with it. An instance
 * whose key is deleted is deregistered, which takes it out of service: calls in flight on it
 * finish, no new call goes to it. Bad values are skipped with a warning.
 *
 * Instances read from etcd do not heartbeat the registry: give it `heartbeatTimeout: 0`.
 */
export async function watchEtcdRegistry(
  url: string,
  registry: Registry,
  options: EtcdSourceOptions = {},
): Promise<RegistrySource> {
  const parsed = parseEtcdUrl(url);
  const source = new EtcdRegistrySource(
    await createEtcdClient(parsed.hosts, options.dialTimeoutMs ?? DEFAULT_DIAL_TIMEOUT_MS),
    registry,
    parsed.prefix,
    describeEtcdUrl(parsed),
    options,
  );
  await source.start();
  return source;
}

/**
 * Reads the instances under the URL's prefix once (for `ping` and `list-agents`), sorted by
 * service and id. Bad values are skipped with a warning. Rejects (code `connection`) if etcd
 * cannot be read, `invalid` for a malformed URL.
 */
export async function listEtcdInstances(
  url: string,
  options: EtcdSourceOptions = {},
): Promise<EtcdInstance[]> {
  const parsed = parseEtcdUrl(url);
  const where = describeEtcdUrl(parsed);
  const warn = options.onWarning ?? defaultWarn;
  const timeout = options.dialTimeoutMs ?? DEFAULT_DIAL_TIMEOUT_MS;
  const connection = await createEtcdClient(parsed.hosts, timeout);
  try {
    const response = await withTimeout(
      connection.client.getAll().prefix(serviceDirectory(parsed.prefix)).exec(),
      timeout,
      `etcd at ${where}`,
    ).catch((err: unknown) => {
      throw new AgentctlError("connection", `cannot read the registry from ${where}: ${reason(err)}`, {
        cause: err,
      });
    });
    const instances: EtcdInstance[] = [];
    const ids = new Map<string, string>();
    for (const kv of response.kvs) {
      const key = kv.key.toString();
      const decoded = decodeInstance(parsed.prefix, key, kv.value.toString());
      if (!decoded.ok) {
        warn(`warning: skipping etcd key ${key}: ${decoded.problem}`);
        continue;
      }
      const owner = ids.get(decoded.instance.id);
      if (owner !== undefined) {
        warn(
          `warning: skipping etcd key ${key}: instance id ${decoded.instance.id} is already used by ${owner}`,
        );
        continue;
      }
      ids.set(decoded.instance.id, key);
      instances.push(decoded.instance);
    }
    return instances.sort((a, b) =>
      a.service === b.service ? a.id.localeCompare(b.id) : a.service.localeCompare(b.service),
    );
  } finally {
    connection.close();
  }
}

/** What is known of one key: the revision it was last seen at, and the instance it holds. */
interface KeyState {
  revision: bigint;
  /** The registered instance's id; absent for a deleted key or a bad value. */
  id?: string;
}

class EtcdRegistrySource implements RegistrySource {
  private readonly dir: string;
  private readonly warn: (message: string) => void;
  private readonly timeout: number;
  /** Every key seen, with deletions kept as tombstones: stale events never undo newer ones. */
  private readonly keys = new Map<string, KeyState>();
  /** Instance id → the key that registered it (ids are unique across the registry). */
  private readonly owners = new Map<string, string>();
  private watcher: Watcher | undefined;
  private closed = false;
  private closing: Promise<void> | undefined;
  /** Lost the connection and not yet reconciled since. */
  private lost = false;
  private resyncTimer: NodeJS.Timeout | undefined;
  private resyncDelay = RESYNC_FIRST_MS;
  private resyncing = false;

  constructor(
    private readonly connection: EtcdConnection,
    private readonly registry: Registry,
    private readonly prefix: string,
    private readonly where: string,
    options: EtcdSourceOptions,
  ) {
    this.dir = serviceDirectory(prefix);
    this.warn = options.onWarning ?? defaultWarn;
    this.timeout = options.dialTimeoutMs ?? DEFAULT_DIAL_TIMEOUT_MS;
  }

  async start(): Promise<void> {
    try {
      const revision = await this.list();
      await withTimeout(this.follow(revision), this.timeout, `etcd watch at ${this.where}`);
    } catch (err) {
      await this.close();
      // A source that failed to start leaves the registry as it found it.
      for (const [id, key] of [...this.owners]) this.deregister(id, key);
      throw err instanceof AgentctlError && err.code === "connection"
        ? err
        : new AgentctlError("connection", `cannot read the registry from ${this.where}: ${reason(err)}`, {
            cause: err,
          });
    }
  }

  close(): Promise<void> {
    this.closing ??= this.shutdown();
    return this.closing;
  }

  private async shutdown(): Promise<void> {
    this.closed = true;
    this.connection.beginClose();
    if (this.resyncTimer) clearTimeout(this.resyncTimer);
    this.resyncTimer = undefined;
    const watcher = this.watcher;
    this.watcher = undefined;
    if (watcher) {
      // Detach before closing the client: a watcher left attached would be re-dialled forever.
      await withTimeout(watcher.cancel(), CANCEL_TIMEOUT_MS, "cancelling the etcd watch").catch(() => {});
      watcher.removeAllListeners();
      // etcd3 emits 'error' on a watcher it cancels unexpectedly; never let that throw.
      watcher.on("error", () => {});
    }
    this.connection.close();
  }

  /** Lists the prefix, reconciles the registry with it, and returns the revision read at. */
  private async list(): Promise<bigint> {
    const response = await withTimeout(
      this.connection.client.getAll().prefix(this.dir).exec(),
      this.timeout,
      `etcd at ${this.where}`,
    ).catch((err: unknown) => {
      throw new AgentctlError("connection", `cannot read the registry from ${this.where}: ${reason(err)}`, {
        cause: err,
      });
    });
    if (this.closed) throw new AgentctlError("cancelled", "the etcd registry source was closed");
    const revision = BigInt(response.header.revision);
    const seen = new Set<string>();
    for (const kv of response.kvs) {
      seen.add(kv.key.toString());
      this.put(kv);
    }
    // Keys we hold that were absent at `revision`, and not changed after it: deleted meanwhile.
    for (const [key, state] of this.keys) {
      if (state.id !== undefined && !seen.has(key) && state.revision <= revision) {
        this.delete(key, revision);
      }
    }
    return revision;
  }

  /** Starts the watch just after `revision`, so that no change between list and watch is missed. */
  private follow(revision: bigint): Promise<void> {
    const watcher = this.connection.client
      .watch()
      .prefix(this.dir)
      .startRevision(String(revision + 1n))
      .watcher();
    this.watcher = watcher;
    const connected = new Promise<void>((resolve, reject) => {
      watcher.once("connected", () => resolve());
      watcher.once("error", reject);
    });
    watcher.on("put", (kv) => {
      if (this.watcher === watcher) this.put(kv);
    });
    watcher.on("delete", (kv) => {
      if (this.watcher === watcher) this.delete(kv.key.toString(), BigInt(kv.mod_revision));
    });
    watcher.on("disconnected", (err) => {
      if (this.watcher !== watcher || this.closed) return;
      this.onLost(err);
    });
    watcher.on("connected", () => {
      if (this.watcher !== watcher || this.closed || !this.lost) return;
      this.scheduleResync(0);
    });
    watcher.on("error", (err) => {
      // etcd cancelled the watch (e.g. its revision was compacted away while we were gone):
      // etcd3 has dropped it; list again and watch anew from there.
      if (this.watcher !== watcher || this.closed) return;
      this.watcher = undefined;
      watcher.removeAllListeners();
      watcher.on("error", () => {});
      if (!this.lost) {
        this.warn(
          `warning: etcd watch at ${this.where} was cancelled (${reason(err)}); reading the registry again`,
        );
      }
      this.lost = true;
      this.scheduleResync(0);
    });
    return connected;
  }

  private onLost(err: unknown): void {
    if (this.lost) return;
    this.lost = true;
    this.warn(
      `warning: lost etcd at ${this.where} (${reason(err)}); keeping the last known registry while reconnecting`,
    );
  }

  private scheduleResync(delay: number): void {
    if (this.closed || this.resyncing || this.resyncTimer) return;
    this.resyncTimer = setTimeout(() => {
      this.resyncTimer = undefined;
      void this.resync();
    }, delay);
    // The run keeps the process alive, never this timer.
    this.resyncTimer.unref();
  }

  /** After a reconnect (or a cancelled watch): list again, reconcile, and watch if needed. */
  private async resync(): Promise<void> {
    if (this.closed || this.resyncing) return;
    this.resyncing = true;
    try {
      const revision = await this.list();
      if (!this.watcher)
        await withTimeout(this.follow(revision), this.timeout, `etcd watch at ${this.where}`);
      if (this.closed) return;
      this.resyncDelay = RESYNC_FIRST_MS;
      // The watch is attached but not connected yet: its 'connected' event resyncs again.
      if (this.watcher?.id === null) return;
      if (this.lost) {
        this.lost = false;
        this.warn(`etcd reconnected at ${this.where}; registry reconciled`);
      }
    } catch {
      if (this.closed) return;
      // Still unreachable (or the new watch has not connected yet): try again a little later.
      // A watch that is attached but not yet connected stays: its 'connected' event retries too.
      this.lost = true;
      const delay = this.resyncDelay;
      this.resyncDelay = Math.min(this.resyncDelay * 2, RESYNC_MAX_MS);
      this.resyncing = false;
      this.scheduleResync(delay);
    } finally {
      this.resyncing = false;
    }
  }

  private put(kv: IKeyValue): void {
    const key = kv.key.toString();
    const revision = BigInt(kv.mod_revision);
    const known = this.keys.get(key);
    if (known && known.revision >= revision) return;
    const decoded = decodeInstance(this.prefix, key, kv.value.toString());
    let id: string | undefined;
    if (!decoded.ok) {
      this.warn(`warning: skipping etcd key ${key}: ${decoded.problem}`);
    } else {
      const owner = this.owners.get(decoded.instance.id);
      if (owner !== undefined && owner !== key) {
        this.warn(
          `warning: skipping etcd key ${key}: instance id ${decoded.instance.id} is already used by ${owner}`,
        );
      } else {
        id = decoded.instance.id;
      }
    }
    // The key held another instance (or now holds a bad value): that one is gone.
    if (known?.id !== undefined && known.id !== id) this.deregister(known.id, key);
    this.keys.set(key, id === undefined ? { revision } : { revision, id });
    if (id !== undefined && decoded.ok) {
      const { service, endpoint, agents, metadata } = decoded.instance;
      try {
        this.registry.register({ id, serviceName: service, endpoint, agents, metadata });
        this.owners.set(id, key);
      } catch (err) {
        this.keys.set(key, { revision });
        this.warn(`warning: skipping etcd key ${key}: ${reason(err)}`);
      }
    }
  }

  private delete(key: string, revision: bigint): void {
    const known = this.keys.get(key);
    if (known && known.revision >= revision) return;
    this.keys.set(key, { revision });
    if (known?.id !== undefined) this.deregister(known.id, key);
  }

  private deregister(id: string, key: string): void {
    if (this.owners.get(id) !== key) return;
    this.owners.delete(id);
    try {
      this.registry.deregister(id);
    } catch {
      // Already gone from the registry (removed by its owner): nothing to undo.
    }
  }
}
