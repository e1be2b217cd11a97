import type { RunReport, TaskReport } from "../types.js";

// XML 1.0 forbids most control characters even as references; drop them.
const INVALID_XML = /[\u0000-\u0008\u000B\u000C\u000E-\u001F\uFFFE\uFFFF]/g;

function esc(text: string): string {
  return text
    .replace(INVALID_XML, "")
    .replace(/&/g, "&amp;")
    .replace(/</g, "&lt;")
    .replace(/>/g, "&gt;")
    .replace(/"/g, "&quot;")
    .replace(/'/g, "&apos;");
}

function seconds(ms: number): string {
  return (ms / 1000).toFixed(3);
}

function testcase(t: TaskReport, suite: string): string {
  const open = `    <testcase name="${esc(t.id)}" classname="${esc(`${suite}.${t.service}.${t.agent}`)}" time="${seconds(t.duration_ms)}"`;
  const message = t.error ? esc(t.error.message) : "";
  const type = t.error ? esc(t.error.code) : "";
  switch (t.status) {
    case "succeeded":
      return `${open}/>`;
    case "skipped":
      return `${open}>\n      <skipped message="${message}"/>\n    </testcase>`;
    default:
      return `${open}>\n      <failure message="${message}" type="${type}">${message}</failure>\n    </testcase>`;
  }
}

/** JUnit XML: one testsuite per run, one testcase per task (failed and cancelled → failure). */
export function formatJunit(report: RunReport): string {
  const s = report.summary;
  const lines = [
    `<?xml version="1.0" encoding="UTF-8"?>`,
    `<testsuites name="agentctl" tests="${s.total}" failures="${s.failed + s.cancelled}" skipped="${s.skipped}" time="${seconds(report.duration_ms)}">`,
    `  <testsuite name="${esc(report.pipeline)}" tests="${s.total}" failures="${s.failed + s.cancelled}" errors="0" skipped="${s.skipped}" time="${seconds(report.duration_ms)}" timestamp="${esc(report.started_at)}">`,
    `    <properties><property name="run_id" value="${esc(report.run_id)}"/></properties>`,
    ...report.tasks.map((t) => testcase(t, report.pipeline)),
    "  </testsuite>",
    "</testsuites>",
    "",
  ];
  return lines.join("\n");
}
