import { setTimeout as sleep } from "node:timers/promises";
import type { AgentInput } from "../protocol/types.js";

/** What an agent produces; the server wraps it into a full AgentOutput. */
export interface AgentOutcome {
  result: unknown;
  status?: string;
  message?: string;
}

/** An agent run. `signal` aborts when nobody waits for the result any more (or the server closes). */
export type BuiltInAgent = (input: AgentInput, signal: AbortSignal) => Promise<AgentOutcome> | AgentOutcome;

export type BuiltInAgentName = "echo" | "upper" | "wordcount" | "sleep" | "fail";

/** setTimeout's ceiling: a longer delay would fire at once. */
const MAX_SLEEP_MS = 2 ** 31 - 1;

/** Abortable delay that never keeps the process alive by itself. */
export function delay(ms: number, signal: AbortSignal): Promise<void> {
  return sleep(ms, undefined, { signal, ref: false });
}

function taskText(input: AgentInput): string {
  return typeof input.task === "string" ? input.task : "";
}

/** `context.ms` as a number or numeric string; anything else means no wait. */
function sleepMs(input: AgentInput): number {
  const raw = input.context?.ms;
  const ms = typeof raw === "string" && raw.trim() !== "" ? Number(raw) : raw;
  return typeof ms === "number" && Number.isFinite(ms) && ms > 0 ? Math.min(ms, MAX_SLEEP_MS) : 0;
}

export const BUILT_IN_AGENTS: Readonly<Record<BuiltInAgentName, BuiltInAgent>> = {
  echo: (input) => ({ result: input }),
  upper: (input) => ({ result: taskText(input).toUpperCase() }),
  wordcount: (input) => {
    const text = taskText(input).trim();
    return { result: { words: text === "" ? 0 : text.split(/\s+/).length } };
  },
  sleep: async (input, signal) => {
    const ms = sleepMs(input);
    if (ms > 0) await delay(ms, signal);
    return { result: input };
  },
  fail: () => ({ result: null, status: "failed", message: "agent failed on purpose" }),
};

export const BUILT_IN_AGENT_NAMES: readonly BuiltInAgentName[] = [
  "echo",
  "upper",
  "wordcount",
  "sleep",
  "fail",
];
