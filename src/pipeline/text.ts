/** Small text helpers for messages: bounded value previews and "did you mean" suggestions. */

const PREVIEW = 60;

/** "1 task", "2 tasks": `noun` with an "s" unless there is exactly one. */
export function count(n: number, noun: string): string {
  return `${n} ${noun}${n === 1 ? "" : "s"}`;
}

/** A JSON string literal of `s`, cut to a readable length (hostile input may hold megabytes). */
export function quote(s: string, max = PREVIEW): string {
  return JSON.stringify(s.length > max ? `${s.slice(0, max)}…` : s);
}

/** A short description of any value for a message: `"abc"`, `42`, `true`, `null`, `a list`, `a mapping`. */
export function showValue(v: unknown): string {
  if (typeof v === "string") return quote(v);
  if (v === null) return "null";
  if (v === undefined) return "nothing";
  if (Array.isArray(v)) return "a list";
  if (typeof v === "object") return "a mapping";
  if (typeof v === "number" && !Number.isFinite(v))
    return Number.isNaN(v) ? ".nan" : v > 0 ? ".inf" : "-.inf";
  return String(v);
}

/** A JSON rendering of a value for a message (expected/actual values), cut to `max` characters. */
export function previewJson(v: unknown, max = 200): string {
  let text: string;
  try {
    text = v === undefined ? "nothing" : (JSON.stringify(v) ?? String(v));
  } catch {
    text = String(v);
  }
  return text.length > max ? `${text.slice(0, max)}…` : text;
}

/** The candidate closest to `word` when it is close enough to be a likely typo. */
export function suggest(word: string, candidates: Iterable<string>): string | undefined {
  if (word.length === 0 || word.length > 64) return undefined;
  const lower = word.toLowerCase();
  let best: string | undefined;
  let bestDistance = Number.POSITIVE_INFINITY;
  let seen = 0;
  for (const c of candidates) {
    // Bounded work: a hostile file may hold thousands of names.
    if (++seen > 2000) break;
    if (c.length > 64 || Math.abs(c.length - word.length) > Math.max(2, word.length / 3)) continue;
    const d = c.toLowerCase() === lower ? 0 : editDistance(lower, c.toLowerCase());
    if (d < bestDistance) {
      bestDistance = d;
      best = c;
    }
  }
  if (best === undefined) return undefined;
  const limit = Math.max(1, Math.floor(Math.max(word.length, best.length) / 3));
  // Some of the word must survive: "a" is no suggestion for "b".
  return bestDistance <= limit && bestDistance < word.length ? best : undefined;
}

/** ` (did you mean "x"?)` or an empty string. */
export function didYouMean(word: string, candidates: Iterable<string>): string {
  const s = suggest(word, candidates);
  return s === undefined ? "" : ` (did you mean ${quote(s)}?)`;
}

/** Edit distance where swapping two neighbouring letters counts as one edit (optimal string alignment). */
function editDistance(a: string, b: string): number {
  if (a === b) return 0;
  let before: number[] = [];
  let prev = Array.from({ length: b.length + 1 }, (_, i) => i);
  for (let i = 1; i <= a.length; i++) {
    const cur = [i];
    for (let j = 1; j <= b.length; j++) {
      const cost = a[i - 1] === b[j - 1] ? 0 : 1;
      let d = Math.min((prev[j] ?? 0) + 1, (cur[j - 1] ?? 0) + 1, (prev[j - 1] ?? 0) + cost);
      if (i > 1 && j > 1 && a[i - 1] === b[j - 2] && a[i - 2] === b[j - 1])
        d = Math.min(d, (before[j - 2] ?? 0) + 1);
      cur[j] = d;
    }
    before = prev;
    prev = cur;
  }
  return prev[b.length] ?? 0;
}
