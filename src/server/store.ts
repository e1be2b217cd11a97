export interface ExpiringMapLimits<V> {
  readonly ttlMs: number;
  readonly maxEntries: number;
  /**
   * Bound on the characters held in keys and values together (see `sizeOf`): a count alone
   * would let 100,000 large results, or large idempotency keys, take gigabytes.
   */
  readonly maxChars: number;
  /** The characters a value holds; keys count by their length. */
  readonly sizeOf: (value: V) => number;
}

interface Entry<V> {
  readonly key: string;
  value: V;
  readonly expiresAt: number;
  size: number;
  // Insertion order, oldest first, as a list: a `Map` iterated from its head after many deletions
  // walks every deleted slot until its next rehash (up to ~40 µs per insert at 100,000 entries).
  newer: Entry<V> | undefined;
  older: Entry<V> | undefined;
}

/**
 * A map whose entries expire `ttlMs` after they were set and which never holds more than
 * `maxEntries` nor `maxChars` (the oldest go first), so long benchmarks do not grow memory. Every
 * entry lives for the same TTL, so insertion order is expiry order and pruning only looks at the
 * head.
 */
export class ExpiringMap<V> {
  private readonly entries = new Map<string, Entry<V>>();
  private oldest: Entry<V> | undefined;
  private newest: Entry<V> | undefined;
  private chars = 0;

  constructor(private readonly limits: ExpiringMapLimits<V>) {}

  get(key: string, now = Date.now()): V | undefined {
    const entry = this.entries.get(key);
    if (entry === undefined) return undefined;
    if (entry.expiresAt > now) return entry.value;
    this.delete(entry);
    return undefined;
  }

  set(key: string, value: V, now = Date.now()): void {
    const old = this.entries.get(key);
    if (old !== undefined) this.delete(old);
    const size = key.length + this.limits.sizeOf(value);
    const entry: Entry<V> = {
      key,
      value,
      expiresAt: now + this.limits.ttlMs,
      size,
      newer: undefined,
      older: this.newest,
    };
    if (this.newest === undefined) this.oldest = entry;
    else this.newest.newer = entry;
    this.newest = entry;
    this.entries.set(key, entry);
    this.chars += size;
    this.prune(now);
  }

  /**
   * Swaps `current` for `next` (keeping the expiry), or deletes the entry when `next` is
   * undefined; only while `key` still maps to `current`, so a newer entry is left alone.
   */
  replace(key: string, current: V, next: V | undefined, now = Date.now()): void {
    const entry = this.entries.get(key);
    if (entry === undefined || entry.value !== current) return;
    if (next === undefined) {
      this.delete(entry);
      return;
    }
    const size = key.length + this.limits.sizeOf(next);
    this.chars += size - entry.size;
    entry.value = next;
    entry.size = size;
    this.prune(now);
  }

  private prune(now: number): void {
    const { maxEntries, maxChars } = this.limits;
    for (let entry = this.oldest; entry !== undefined; entry = this.oldest) {
      if (this.entries.size <= maxEntries && this.chars <= maxChars && entry.expiresAt > now) break;
      this.delete(entry);
    }
  }

  private delete(entry: Entry<V>): void {
    this.entries.delete(entry.key);
    this.chars -= entry.size;
    if (entry.older === undefined) this.oldest = entry.newer;
    else entry.older.newer = entry.newer;
    if (entry.newer === undefined) this.newest = entry.older;
    else entry.newer.older = entry.older;
  }
}
