import type { ChalkInstance } from "chalk";
import Table from "cli-table3";
import { count } from "../../pipeline/text.js";
import type { RunReport, TaskReport, TaskStatus } from "../types.js";

export interface TableStyle {
  color: ChalkInstance;
  /** Terminal width to fit the table into. */
  columns: number;
}

const STATUS_COLOR: Record<TaskStatus, keyof ChalkInstance & ("green" | "red" | "yellow" | "gray")> = {
  succeeded: "green",
  failed: "red",
  skipped: "yellow",
  cancelled: "gray",
};

export function formatMs(ms: number): string {
  if (ms < 1000) return `${Math.round(ms)}ms`;
  if (ms < 60_000) return `${(ms / 1000).toFixed(ms < 10_000 ? 2 : 1)}s`;
  const m = Math.floor(ms / 60_000);
  return `${m}m${Math.round((ms % 60_000) / 1000)}s`;
}

/** A one-line, width-bounded view of a task's result (or error). */
function shortResult(t: TaskReport, width: number): string {
  let text: string;
  if (t.error) text = `${t.error.code}: ${t.error.message}`;
  else if (t.outputs) text = count(t.outputs.length, "item");
  else {
    const r = t.output?.result;
    text = typeof r === "string" ? r : (JSON.stringify(r) ?? "");
    if (t.output?.status === "partial") text = `(partial) ${text}`;
  }
  text = printable(text);
  return text.length > width ? `${text.slice(0, Math.max(1, width - 1))}…` : text;
}

export function formatSummary(report: RunReport, color: ChalkInstance): string {
  const s = report.summary;
  const parts = [
    color.green(`${s.succeeded} succeeded`),
    s.failed ? color.red(`${s.failed} failed`) : `${s.failed} failed`,
    s.skipped ? color.yellow(`${s.skipped} skipped`) : `${s.skipped} skipped`,
    s.cancelled ? color.gray(`${s.cancelled} cancelled`) : `${s.cancelled} cancelled`,
  ];
  const verdict =
    report.status === "succeeded"
      ? color.green.bold("succeeded")
      : report.status === "failed"
        ? color.red.bold("failed")
        : color.gray.bold("cancelled");
  return `${report.pipeline}: ${verdict} — ${count(s.total, "task")}: ${parts.join(", ")} in ${formatMs(report.duration_ms)} (run ${report.run_id})`;
}

/** The people's view of a run: a table, a summary line, then each error with its code. */
export function formatTable(report: RunReport, style: TableStyle): string {
  const { color } = style;
  const rows = report.tasks.map((t) => [
    t.id,
    `${t.service}/${t.agent}`,
    t.instance ?? "-",
    color[STATUS_COLOR[t.status]](t.status),
    String(t.attempts),
    formatMs(t.duration_ms),
  ]);
  const widths = [0, 1, 2, 3, 4, 5].map((c) =>
    Math.max(...rows.map((r) => visibleLength(r[c]!)), HEAD[c]!.length),
  );
  // Borders and padding take 3 columns per cell plus one.
  const used = widths.reduce((a, b) => a + b + 3, 1) + 3;
  const resultWidth = Math.max(12, Math.min(80, style.columns - used));
  const table = new Table({
    head: HEAD.map((h) => color.bold(h)),
    style: { head: [], border: [] },
    wordWrap: false,
  });
  report.tasks.forEach((t, i) => {
    table.push([...rows[i]!, shortResult(t, resultWidth)]);
  });
  const lines = [table.toString(), formatSummary(report, color)];
  const failures = report.tasks.filter((t) => t.error && t.status !== "skipped");
  const skipped = report.tasks.filter((t) => t.status === "skipped");
  if (failures.length > 0) {
    lines.push("", color.bold("Errors:"));
    for (const t of failures) {
      const { status: httpStatus, message } = t.error!;
      // The status, unless the message says it already ("HTTP 503 from …").
      const status =
        httpStatus !== undefined && !message.includes(`HTTP ${httpStatus}`) ? ` (HTTP ${httpStatus})` : "";
      lines.push(`  ${color.red(t.id)}: [${t.error!.code}]${status} ${printable(message)}`);
    }
  }
  if (skipped.length > 0) {
    lines.push("", color.bold("Skipped:"));
    for (const t of skipped)
      lines.push(`  ${color.yellow(t.id)}: ${printable(t.error?.message ?? "skipped")}`);
  }
  return lines.join("\n");
}

// C0 and C1 control characters and DEL (ESC starts terminal escape sequences).
const CONTROL = /[\u0000-\u001f\u007f-\u009f]/g;

/**
 * Text that came from a server (results, error messages with the start of a body), made safe
 * for a terminal: on one line, and with control characters shown as `\xNN` instead of being
 * sent raw — a server must not be able to move the cursor, clear the screen or forge colours.
 */
export function printable(text: string): string {
  return text
    .replace(/\s+/g, " ")
    .replace(CONTROL, (c) => `\\x${c.charCodeAt(0).toString(16).padStart(2, "0")}`);
}

const HEAD = ["task", "service/agent", "instance", "status", "attempts", "duration", "result"];

const ANSI = /\u001b\[[0-9;]*m/g;

function visibleLength(s: string): number {
  return s.replace(ANSI, "").length;
}
