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
}
