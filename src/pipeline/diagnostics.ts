/** Collecting the problems of pipeline and services files, to report all of them at once, in order. */
import type { Diagnostic } from "./types.js";
import type { YamlSource } from "./yaml-source.js";

/** At most this many diagnostics are returned (the last one says how many were left out). */
export const MAX_DIAGNOSTICS = 1000;

/** `file:line:column: message` (`file: message` for a problem with the whole file). */
export function formatDiagnostic(d: Diagnostic, severity: "error" | "warning" = "error"): string {
  const where = d.line > 0 ? `${d.file}:${d.line}:${d.column}` : d.file;
  return `${where}: ${severity === "warning" ? "warning: " : ""}${d.message}`;
}

/** The problems of one load (its files and the files they name): sorted, deduplicated, capped. */
export class Collector {
  readonly diagnostics: Diagnostic[] = [];
  readonly warnings: Diagnostic[] = [];

  take(src: YamlSource): void {
    this.diagnostics.push(...src.diagnostics);
    this.warnings.push(...src.warnings);
    src.diagnostics.length = 0;
    src.warnings.length = 0;
  }

  finish(): Diagnostic[] {
    const sorted = sortDiagnostics(this.diagnostics);
    const w = sortDiagnostics(this.warnings);
    this.warnings.splice(0, this.warnings.length, ...w.slice(0, MAX_DIAGNOSTICS));
    if (sorted.length <= MAX_DIAGNOSTICS) return sorted;
    const shown = sorted.slice(0, MAX_DIAGNOSTICS - 1);
    const last = sorted[MAX_DIAGNOSTICS - 1] as Diagnostic;
    shown.push({ ...last, message: `${sorted.length - shown.length} more problems not shown` });
    return shown;
  }
}

function sortDiagnostics(list: readonly Diagnostic[]): Diagnostic[] {
  const fileOrder = new Map<string, number>();
  for (const d of list) if (!fileOrder.has(d.file)) fileOrder.set(d.file, fileOrder.size);
  const seen = new Set<string>();
  return [...list]
    .sort(
      (a, b) =>
        (fileOrder.get(a.file) ?? 0) - (fileOrder.get(b.file) ?? 0) || a.line - b.line || a.column - b.column,
    )
    .filter((d) => {
      const key = `${d.file}\0${d.line}\0${d.column}\0${d.message}`;
      if (seen.has(key)) return false;
      seen.add(key);
      return true;
    });
}

/**
 * Runs `check` with a fresh collector; its value only when no problem was found. Never throws:
 * a bug in a check becomes a diagnostic too.
 */
export function collectProblems<T>(
  file: string,
  check: (out: Collector) => T | undefined,
): { value?: T; diagnostics: Diagnostic[]; warnings: Diagnostic[] } {
  const out = new Collector();
  try {
    const value = check(out);
    const diagnostics = out.finish();
    return diagnostics.length === 0 && value !== undefined
      ? { value, diagnostics, warnings: out.warnings }
      : { diagnostics, warnings: out.warnings };
  } catch (err) {
    out.diagnostics.push(internalError(file, err));
    return { diagnostics: out.finish(), warnings: out.warnings };
  }
}

function internalError(file: string, err: unknown): Diagnostic {
  const message = err instanceof Error ? err.message : String(err);
  return { file, line: 0, column: 0, message: `internal error while validating: ${message}` };
}
