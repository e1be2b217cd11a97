import { setFlagsFromString } from "node:v8";
import { runInNewContext } from "node:vm";

/**
 * One full garbage collection. Parsing a large pipeline file leaves a heap of garbage that V8
 * would keep until the run had added its own: collecting it in between makes the run's peak
 * memory the larger of the two instead of their sum.
 */
export function collectGarbage(): void {
  setFlagsFromString("--expose-gc");
  (runInNewContext("gc") as () => void)();
}
