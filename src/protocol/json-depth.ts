/**
 * How deeply the JSON agentctl reads (an agent's response) or its reference server accepts may
 * nest: far more than any real output needs, and far from where the recursive work done on
 * values (serialising a journal record, redaction, expressions) would overflow the stack, about
 * 4,500 levels. (Go's decoder stops at 10,000.)
 */
export const MAX_JSON_DEPTH = 1000;

/**
 * Whether `value`, parsed from `text`, nests arrays and objects deeper than `max`. Only
 * containers are visited, never strings: a large text answer costs next to nothing. A text
 * shorter than 2·max characters cannot nest that deep (each level takes two), and is not walked.
 */
export function nestsDeeperThan(value: unknown, text: string, max: number = MAX_JSON_DEPTH): boolean {
  if (text.length <= 2 * max) return false;
  // Iterative, with the depth of each container kept beside it: a recursive walk would
  // overflow on exactly the values this is meant to catch.
  const nodes: unknown[] = [value];
  const depths: number[] = [1];
  while (nodes.length > 0) {
    const node = nodes.pop();
    const depth = depths.pop()!;
    if (typeof node !== "object" || node === null) continue;
    if (depth > max) return true;
    for (const child of Array.isArray(node) ? node : Object.values(node)) {
      if (typeof child === "object" && child !== null) {
        nodes.push(child);
        depths.push(depth + 1);
      }
    }
  }
  return false;
}
