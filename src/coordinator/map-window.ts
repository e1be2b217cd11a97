/**
 * Maps `items` through `fn` with at most `window` calls pending, results in item order. Only
 * `window` closures are alive at once, so a 100,000-item list costs little memory and GC.
 */
export async function mapWindow<T, R>(
  items: readonly T[],
  window: number,
  fn: (item: T, index: number) => Promise<R>,
): Promise<R[]> {
  const results = new Array<R>(items.length);
  let next = 0;
  const worker = async () => {
    for (let i = next++; i < items.length; i = next++) results[i] = await fn(items[i]!, i);
  };
  const n = Math.max(1, Math.min(items.length, window));
  await Promise.all(Array.from({ length: n }, worker));
  return results;
}
