/**
 * Durations as files and flags write them (SPEC §5): `"250ms"`, `"30s"`, `"5m"`, `"1h"`, combinations
 * such as `"1m30s"` or `"1.5s"`, a string of digits (milliseconds, as a flag gives it) or a
 * non-negative number of milliseconds. Values are milliseconds everywhere in the code.
 */

import { showValue as show } from "./text.js";

/** One or more `<number><unit>` groups (units `ms`, `s`, `m`, `h`), or plain digits (milliseconds). */
export const DURATION_PATTERN = "^(?:(?:[0-9]+(?:\\.[0-9]+)?(?:ms|h|m|s))+|[0-9]+)$";

/**
 * The longest duration accepted: 2^31-1 ms (about 24.8 days), the most a Node.js timer can wait;
 * anything longer would fire at once.
 */
export const MAX_DURATION_MS = 2_147_483_647;

const DURATION_RE = new RegExp(DURATION_PATTERN);
const GROUP_RE = /([0-9]+(?:\.[0-9]+)?)(ms|h|m|s)/g;
const UNIT_MS: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000 };
/** Longer strings are never durations (and are not worth a regular expression). */
const MAX_DURATION_TEXT = 64;

/**
 * Milliseconds for a duration string or number; `undefined` when `v` is not a duration, is
 * negative, not finite, or longer than {@link MAX_DURATION_MS}. Callers report the problem.
 */
export function parseDuration(v: unknown): number | undefined {
  if (typeof v === "number") {
    return Number.isFinite(v) && v >= 0 && v <= MAX_DURATION_MS ? v : undefined;
  }
  if (typeof v !== "string" || v.length === 0 || v.length > MAX_DURATION_TEXT) return undefined;
  if (!DURATION_RE.test(v)) return undefined;
  let ms: number;
  if (/^[0-9]+$/.test(v)) {
    ms = Number(v);
  } else {
    ms = 0;
    for (const m of v.matchAll(GROUP_RE)) ms += Number(m[1]) * (UNIT_MS[m[2] ?? ""] ?? Number.NaN);
  }
  // Nanosecond precision: "1.001s" is 1001 ms, not 1000.9999999999999.
  ms = Math.round(ms * 1e6) / 1e6;
  return Number.isFinite(ms) && ms <= MAX_DURATION_MS ? ms : undefined;
}

/** Why `v` is not a usable duration (a message for a diagnostic), or `undefined` when it is one. */
export function durationProblem(v: unknown): string | undefined {
  if (parseDuration(v) !== undefined) return undefined;
  const looksRight =
    (typeof v === "number" && Number.isFinite(v) && v >= 0) ||
    (typeof v === "string" && v.length <= MAX_DURATION_TEXT && DURATION_RE.test(v));
  if (looksRight) return `duration ${show(v)} is too long (at most ${MAX_DURATION_MS}ms, about 24 days)`;
  return `expected a duration like "30s", got ${show(v)}`;
}

/** A short, readable form: `250ms`, `30s`, `1m30s`, `1h5m`, `1.5s`. Round-trips through parseDuration. */
export function formatDuration(ms: number): string {
  if (!Number.isFinite(ms)) return String(ms);
  if (ms < 0) return `-${formatDuration(-ms)}`;
  if (ms < 1000) return `${trimNumber(ms)}ms`;
  const h = Math.floor(ms / 3_600_000);
  let rest = ms - h * 3_600_000;
  const m = Math.floor(rest / 60_000);
  rest -= m * 60_000;
  const s = rest / 1000;
  let out = "";
  if (h > 0) out += `${h}h`;
  if (m > 0) out += `${m}m`;
  if (s > 0 || out === "") out += `${trimNumber(s)}s`;
  return out;
}

/** Milliseconds to integer nanoseconds (Go's time.Duration), as `options.timeout` is sent. */
export function durationToNanoseconds(ms: number): number {
  return Math.round(ms * 1_000_000);
}

function trimNumber(n: number): string {
  return String(Math.round(n * 1000) / 1000);
}
