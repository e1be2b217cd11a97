/**
 * How deeply the JSON agentctl reads (an agent's response) or its reference server accepts may
 * nest: far more than any real output needs, and far from where the recursive work done on
 * values (serialising a journal record, redaction, expressions) would overflow the stack, about
 * 4,500 levels. (Go's decoder stops at 10,000.)
 */
export const MAX_JSON_DEPTH = 1000;

/** Whether valid JSON `text` nests arrays and objects deeper than `max`. */
export function nestsDeeperThan(text: string, max: number = MAX_JSON_DEPTH): boolean {
  // n levels take 2n characters: a shorter text cannot, and most bodies skip the scan.
  if (text.length <= 2 * max) return false;
  let depth = 0;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (c === 0x22) {
      // A string: brackets in it do not count; a backslash escapes the next character.
      for (i++; i < text.length; i++) {
        const d = text.charCodeAt(i);
        if (d === 0x5c) i++;
        else if (d === 0x22) break;
      }
    } else if (c === 0x5b || c === 0x7b) {
      if (++depth > max) return true;
    } else if (c === 0x5d || c === 0x7d) {
      depth--;
    }
  }
  return false;
}
