import { randomBytes } from "node:crypto";

/** A run id that sorts by start time and is safe as a file name: `20261129-211530-3fa9c1`. */
export function newRunId(now: Date = new Date()): string {
  const stamp = now.toISOString().replace(/[-:]/g, "").replace("T", "-").slice(0, 15);
  return `${stamp}-${randomBytes(3).toString("hex")}`;
}
