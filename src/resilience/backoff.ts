/** Exponential backoff with full jitter (AWS architecture blog's "full jitter"). */
export interface BackoffConfig {
  /** First delay ceiling, ms (default 200). */
  base?: number;
  /** Growth per retry (default 2). */
  factor?: number;
  /** Largest ceiling, ms (default 10 s). */
  cap?: number;
}

export const RETRY_AFTER_CAP_MS = 30_000;

/** Delay before retry number `n` (0 for the first retry): uniform in [0, min(cap, base·factorⁿ)]. */
export function backoffDelay(
  n: number,
  config: BackoffConfig = {},
  random: () => number = Math.random,
): number {
  const base = config.base ?? 200;
  const factor = config.factor ?? 2;
  const cap = config.cap ?? 10_000;
  const ceiling = Math.min(cap, base * factor ** Math.max(0, n));
  return Math.floor(random() * ceiling);
}

/**
 * Parses a `Retry-After` value (delta seconds or an HTTP date) into milliseconds, capped at 30 s.
 * Returns undefined when absent or unparseable.
 */
export function parseRetryAfter(
  value: string | string[] | undefined,
  now: number = Date.now(),
): number | undefined {
  const v = Array.isArray(value) ? value[0] : value;
  if (v === undefined) return undefined;
  const trimmed = v.trim();
  let ms: number;
  if (/^\d+$/.test(trimmed)) {
    ms = Number(trimmed) * 1000;
  } else {
    const at = Date.parse(trimmed);
    if (Number.isNaN(at)) return undefined;
    ms = at - now;
  }
  return Math.min(RETRY_AFTER_CAP_MS, Math.max(0, ms));
}
