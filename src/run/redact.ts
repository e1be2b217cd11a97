/**
 * Replaces every known secret (configured header values, values read from `env`) by `***` in
 * text bound for output, logs, errors or journals. Longest secrets first, so a secret that
 * contains another is hidden whole.
 */
export class Redactor {
  private readonly secrets = new Set<string>();
  private pattern: RegExp | undefined;

  add(...values: readonly (string | undefined)[]): void {
    for (const v of values) {
      // Very short values would redact ordinary text and hide nothing worth hiding.
      if (v !== undefined && v.length >= 3 && !this.secrets.has(v)) {
        this.secrets.add(v);
        this.pattern = undefined;
      }
    }
  }

  get size(): number {
    return this.secrets.size;
  }

  redact(text: string): string {
    if (this.secrets.size === 0) return text;
    if (!this.pattern) {
      const alternatives = [...this.secrets]
        .sort((a, b) => b.length - a.length)
        .flatMap((s) => [s, JSON.stringify(s).slice(1, -1)])
        .map((s) => s.replace(/[.*+?^${}()|[\]\\]/g, "\\$&"));
      this.pattern = new RegExp([...new Set(alternatives)].join("|"), "g");
    }
    return text.replace(this.pattern, "***");
  }

  /**
   * A JSON value with every string in it (keys too) redacted — the same value when nothing
   * changed. Redacting values before they are formatted catches what a search of the formatted
   * text misses: a secret escaped twice (a JSON body quoted in an error message), XML-escaped,
   * or cut short to fit a table column.
   */
  redactValue<T>(value: T): T {
    return this.secrets.size === 0 ? value : (this.deep(value) as T);
  }

  private deep(value: unknown): unknown {
    if (typeof value === "string") return this.redact(value);
    if (Array.isArray(value)) {
      let copy: unknown[] | undefined;
      value.forEach((item, i) => {
        const r = this.deep(item);
        if (r !== item) {
          copy ??= [...value];
          copy[i] = r;
        }
      });
      return copy ?? value;
    }
    if (value !== null && typeof value === "object") {
      let copy: Record<string, unknown> | undefined;
      for (const [key, item] of Object.entries(value)) {
        const k = this.redact(key);
        const r = this.deep(item);
        if (k !== key || r !== item) {
          copy ??= { ...value };
          if (k !== key) delete copy[key];
          copy[k] = r;
        }
      }
      return copy ?? value;
    }
    return value;
  }
}
