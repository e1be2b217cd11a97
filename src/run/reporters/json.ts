import type { RunReport } from "../types.js";

function indent(text: string, spaces: number): string {
  return text.replace(/\n/g, `\n${" ".repeat(spaces)}`);
}

/**
 * `run --output json`: the report as one JSON document (SPEC §6), produced in pieces — the head,
 * then each task, then each output of a fan-out — so a 100,000-item result is never one giant
 * string in memory. Joined, the pieces are exactly one valid JSON document.
 */
export function* jsonChunks(report: RunReport): Generator<string> {
  const { tasks, ...head } = report;
  const headText = JSON.stringify(head, null, 2);
  yield `${headText.slice(0, -2)},\n  "tasks": [`;
  for (const [i, task] of tasks.entries()) {
    const { outputs, ...rest } = task;
    const taskText = indent(JSON.stringify(rest, null, 2), 4);
    const sep = i === 0 ? "\n    " : ",\n    ";
    if (outputs === undefined) {
      yield sep + taskText;
      continue;
    }
    yield `${sep}${taskText.slice(0, -6)},\n      "outputs": [`;
    for (const [j, output] of outputs.entries()) {
      yield `${j === 0 ? "\n        " : ",\n        "}${JSON.stringify(output)}`;
    }
    yield outputs.length > 0 ? "\n      ]\n    }" : "]\n    }";
  }
  yield tasks.length > 0 ? "\n  ]\n}\n" : "]\n}\n";
}

/** The whole document as one string (for small reports and tests). */
export function formatJson(report: RunReport): string {
  return [...jsonChunks(report)].join("");
}
