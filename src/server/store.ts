/**
 * A map whose entries expire `ttlMs` after they were set and which never holds more than
 * `maxEntries` (the oldest go first), so long benchmarks do not grow memory. Every entry lives
 * for the same TTL, so insertion order is expiry order and pruning only looks at the head.
 */
export class ExpiringMap<V> {
  private readonly entries = new Map<string, { value: V; expiresAt: number }>();

  constructor(
    private readonly ttlMs: number,
    private readonly maxEntries: number,
  ) {}

  get(key: string, now = Date.now()): V | undefined {
    const entry = this.entries.get(key);
    if (entry === undefined) return undefined;
    if (entry.expiresAt > now) return entry.value;
    this.entries.delete(key);
    return undefined;
  }

  set(key: string, value: V, now = Date.now()): void {
    this.entries.delete(key);
    this.entries.set(key, { value, expiresAt: now + this.ttlMs });
    for (const [k, entry] of this.entries) {
      if (this.entries.size <= this.maxEntries && entry.expiresAt > now) break;
      this.entries.delete(k);
    }
  }

  /**
   * Swaps `current` for `next` (keeping the expiry), or deletes the entry when `next` is
   * undefined; only while `key` still maps to `current`, so a newer entry is left alone.
   */
  replace(key: string, current: V, next: V | undefined): void {
    const entry = this.entries.get(key);
    if (entry?.value !== current) return;
    if (next === undefined) this.entries.delete(key);
    else entry.value = next;
  }
}
