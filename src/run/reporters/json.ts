import type { RunReport } from "../types.js";

/** `run --output json`: the report as one JSON document (SPEC §6). */
export function formatJson(report: RunReport): string {
  return JSON.stringify(report, null, 2);
}
