import { createHash } from "node:crypto";
import {
  closeSync,
  existsSync,
  fstatSync,
  fsyncSync,
  ftruncateSync,
  openSync,
  readFileSync,
  readSync,
  writeSync,
} from "node:fs";
import { join } from "node:path";
import type { AsyncSubmitted } from "../coordinator/types.js";
import { makeDirSync } from "../make-dir.js";
import type { PipelineConfig, TaskConfig } from "../pipeline/types.js";
import type { AgentOutput } from "../protocol/types.js";
import { acquireLock } from "./lock.js";
import type { RunObserver } from "./observer.js";
import type { Redactor } from "./redact.js";
import type { AsyncHandle, ResumeState } from "./runner.js";
import type { RunReport, TaskErrorReport, TaskReport } from "./types.js";

/** The longest item records wait to share a `write`, and the most text they gather meanwhile. */
const ITEM_BATCH_MS = 50;
const ITEM_BATCH_CHARS = 1024 * 1024;

/** Journal records, one JSON object per line (SPEC §8). */
export type JournalRecord =
  | {
      type: "run";
      v: 1;
      run_id: string;
      pipeline: string;
      file: string;
      hash: string;
      /** Hash of each task's definition, to say what changed on a refused resume. */
      tasks: Record<string, string>;
      vars: Record<string, unknown>;
      /** Vars whose values held secrets: `***` in `vars`, so a resume needs them again. */
      secret_vars?: string[];
      started_at: string;
    }
  | {
      type: "resume";
      at: string;
      forced: boolean;
      /** A forced resume's pipeline (as in the header): the run is of this pipeline from then on. */
      pipeline?: string;
      file?: string;
      hash?: string;
      tasks?: Record<string, string>;
      vars?: Record<string, unknown>;
      secret_vars?: string[];
    }
  | { type: "task_start"; task: string; at: string }
  | { type: "async"; task: string; index?: number; task_id: string; endpoint: string; instance: string }
  | { type: "item"; task: string; index: number; output: AgentOutput | null; error?: TaskErrorReport }
  | { type: "task_end"; task: string; report: TaskReport }
  | { type: "run_end"; at: string; status: RunReport["status"]; summary: RunReport["summary"] };

export type RunHeader = Extract<JournalRecord, { type: "run" }>;

/**
 * Which pipeline (name and file, file hash, task hashes, vars) a run is of. The name and file are
 * unknown after a forced resume written by an older version, which did not record them.
 */
export type RunIdentity = Pick<RunHeader, "hash" | "tasks" | "vars" | "secret_vars"> & {
  pipeline?: string;
  file?: string;
};

/** A journal problem the user must see (exit 2): unknown run, corrupt line, changed pipeline. */
export class JournalError extends Error {
  override readonly name = "JournalError";
}

export function runsDir(stateDir: string): string {
  return join(stateDir, "runs");
}

export function journalPath(stateDir: string, runId: string): string {
  return join(runsDir(stateDir), `${runId}.jsonl`);
}

function sha256(text: string): string {
  return createHash("sha256").update(text).digest("hex");
}

export function pipelineHash(pipeline: PipelineConfig): { hash: string; tasks: Record<string, string> } {
  const tasks: Record<string, string> = {};
  for (const t of pipeline.tasks) tasks[t.id] = sha256(JSON.stringify(taskIdentity(t))).slice(0, 16);
  return { hash: sha256(pipeline.source), tasks };
}

function taskIdentity(t: TaskConfig): unknown {
  return [t.service, t.agent, t.needs, t.input, t.forEach, t.async, t.expect, t.retries, t.timeoutMs];
}

/**
 * The append-only journal of one run. Each record is written with a synchronous `write` (it is
 * in the file before the run moves on, so `kill -9` loses nothing reported); `fsync` is batched
 * once a second and done at close. Every line goes through the redactor: no secret is written.
 *
 * One exception keeps a 100,000-item fan-out from paying a system call per item: the records
 * of fan-out items share one `write` per batch (at most 50 ms or 1 MiB of them) — always before
 * any other record, so nothing that depends on them can overtake them. No later step of the run
 * depends on an item record (SPEC §8 asks for task starts, async ids and task ends); a crash
 * costs at most calling that batch's items again on resume, with the same idempotency keys.
 */
export class JournalWriter implements RunObserver {
  private fd: number | undefined;
  private dirty = false;
  /** Lines not written yet: item records of the current batch (see the class comment). */
  private pending: string[] = [];
  private pendingChars = 0;
  private batchTimer: NodeJS.Timeout | undefined;
  private readonly syncTimer: NodeJS.Timeout;

  private constructor(
    readonly path: string,
    private readonly redactor: Redactor,
    private readonly unlock: () => void,
  ) {
    this.fd = openSync(path, "a");
    this.syncTimer = setInterval(() => this.sync(), 1000).unref();
  }

  /** Opens (creating) the journal of `runId` under `stateDir`, holding its lock. */
  static open(stateDir: string, runId: string, redactor: Redactor): JournalWriter {
    try {
      makeDirSync(runsDir(stateDir));
    } catch (err) {
      // A state dir that is a file, or cannot be made: the user's to fix, not a crash.
      const why = (err as Error).message;
      throw new JournalError(`cannot keep journals in ${runsDir(stateDir)}: ${why}`);
    }
    const path = journalPath(stateDir, runId);
    const unlock = acquireLock(`${path}.lock`);
    try {
      dropTornTail(path);
      return new JournalWriter(path, redactor, unlock);
    } catch (err) {
      unlock();
      throw err;
    }
  }

  append(record: JournalRecord): void {
    this.pending.push(this.line(record));
    this.flush();
  }

  private line(record: JournalRecord): string {
    // Every string of the record is redacted before it is serialised: once, on this hot path.
    return `${JSON.stringify(this.redactor.redactValue(record))}\n`;
  }

  private readonly flush = (): void => {
    if (this.batchTimer !== undefined) {
      clearTimeout(this.batchTimer);
      this.batchTimer = undefined;
    }
    if (this.pending.length === 0) return;
    const text = this.pending.length === 1 ? this.pending[0]! : this.pending.join("");
    this.pending = [];
    this.pendingChars = 0;
    if (this.fd === undefined) return;
    writeSync(this.fd, text);
    this.dirty = true;
  };

  taskStarted(taskId: string): void {
    this.append({ type: "task_start", task: taskId, at: new Date().toISOString() });
  }

  asyncSubmitted(taskId: string, index: number | undefined, event: AsyncSubmitted): void {
    this.append({
      type: "async",
      task: taskId,
      ...(index === undefined ? {} : { index }),
      task_id: event.taskId,
      endpoint: event.endpoint,
      instance: event.instance,
    });
  }

  itemFinished(taskId: string, index: number, output: AgentOutput | null, error?: TaskErrorReport): void {
    const line = this.line({ type: "item", task: taskId, index, output, ...(error ? { error } : {}) });
    this.pending.push(line);
    this.pendingChars += line.length;
    if (this.pendingChars >= ITEM_BATCH_CHARS) this.flush();
    else this.batchTimer ??= setTimeout(this.flush, ITEM_BATCH_MS);
  }

  taskFinished(report: TaskReport): void {
    // A fan-out's outputs are in its item records already; repeating them would double the file.
    const { outputs: _outputs, ...rest } = report;
    this.append({ type: "task_end", task: report.id, report: rest });
  }

  private sync(): void {
    if (this.fd === undefined || !this.dirty) return;
    this.dirty = false;
    fsyncSync(this.fd);
  }

  close(): void {
    clearInterval(this.syncTimer);
    if (this.fd === undefined) return;
    this.flush();
    this.sync();
    closeSync(this.fd);
    this.fd = undefined;
    this.unlock();
  }
}

/**
 * Cuts a torn last line (a write cut short by `kill -9`) off the journal, so that the records a
 * resumed run appends start on a line of their own instead of turning the fragment into a
 * corrupt line in the middle of the file. Only called with the journal's lock held.
 */
function dropTornTail(path: string): void {
  let fd: number;
  try {
    fd = openSync(path, "r+");
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === "ENOENT") return;
    throw err;
  }
  try {
    const size = fstatSync(fd).size;
    const buf = Buffer.alloc(64 * 1024);
    let end = size;
    while (end > 0) {
      const start = Math.max(0, end - buf.length);
      const n = readSync(fd, buf, 0, end - start, start);
      const nl = buf.subarray(0, n).lastIndexOf(0x0a);
      if (nl !== -1) {
        if (start + nl + 1 < size) ftruncateSync(fd, start + nl + 1);
        return;
      }
      end = start;
    }
    if (size > 0) ftruncateSync(fd, 0);
  } finally {
    closeSync(fd);
  }
}

/**
 * The vars run `runId` goes on with, if its journal can be read (a resume reports any problem
 * with it later, under its lock): read before the pipeline is loaded, which must know them.
 */
export function journaledVars(stateDir: string, runId: string): Record<string, unknown> | undefined {
  try {
    // Only the header and resume records: a fan-out's journal is mostly item records.
    const lines = readFileSync(journalPath(stateDir, runId), "utf8").split("\n");
    const header = JSON.parse(lines[0]!) as RunHeader;
    const resumes = lines.filter((l) => l.startsWith('{"type":"resume"')).flatMap(parsedOrNone);
    return runIdentity({ header, records: resumes }).vars;
  } catch {
    return undefined;
  }
}

/** A record, or none for a torn line (the resume proper reports a corrupt one). */
function parsedOrNone(line: string): JournalRecord[] {
  try {
    return [JSON.parse(line) as JournalRecord];
  } catch {
    return [];
  }
}

/** The pipeline a run is of now: its header's, or the one its last forced resume switched to. */
export function runIdentity(contents: JournalContents): RunIdentity {
  const { pipeline, file, hash, tasks, vars, secret_vars } = contents.header;
  let identity: RunIdentity = { pipeline, file, hash, tasks, vars, secret_vars };
  for (const r of contents.records) {
    if (r.type === "resume" && r.hash !== undefined && r.tasks !== undefined && r.vars !== undefined) {
      const { pipeline, file, hash, tasks, vars, secret_vars } = r;
      identity = { pipeline, file, hash, tasks, vars, secret_vars };
    }
  }
  return identity;
}

/** What a journal holds, read back for `--resume` and `agentctl runs`. */
export interface JournalContents {
  header: RunHeader;
  records: JournalRecord[];
}

/**
 * Reads a journal. A torn last line (a write cut by `kill -9`) is ignored; a corrupt line
 * anywhere else is an error naming its line number, never silently dropped.
 */
export function readJournal(path: string): JournalContents {
  if (!existsSync(path)) throw new JournalError(`no journal at ${path}`);
  const text = readFileSync(path, "utf8");
  const lines = text.split("\n");
  const complete = text.endsWith("\n");
  const records: JournalRecord[] = [];
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i]!;
    const last = i === lines.length - 1;
    if (line === "") continue;
    try {
      records.push(JSON.parse(line) as JournalRecord);
    } catch {
      if (last && !complete) break; // torn by a crash mid-write: that step never happened
      throw new JournalError(`${path}:${i + 1}: corrupt journal line`);
    }
  }
  const header = records[0];
  if (header?.type !== "run") throw new JournalError(`${path}:1: not a run journal (no run record first)`);
  return { header, records };
}

/** Rebuilds what already happened: succeeded tasks, finished items, async tasks still out. */
export function resumeState(contents: JournalContents, pipeline: PipelineConfig): ResumeState {
  const done = new Map<string, TaskReport>();
  const items = new Map<string, Map<number, AgentOutput>>();
  const pendingAsync = new Map<string, AsyncHandle>();
  for (const r of contents.records) {
    switch (r.type) {
      case "async":
        pendingAsync.set(r.index === undefined ? r.task : `${r.task}:${r.index}`, {
          taskId: r.task_id,
          endpoint: r.endpoint,
          instance: r.instance,
        });
        break;
      case "item":
        // A cancelled item (SIGINT) left its async task running on the server: poll it on resume.
        if (r.error?.code !== "cancelled") pendingAsync.delete(`${r.task}:${r.index}`);
        if (r.output) {
          const m = items.get(r.task) ?? new Map<number, AgentOutput>();
          items.set(r.task, m);
          m.set(r.index, r.output);
        }
        break;
      case "task_end":
        if (r.report.status !== "cancelled") pendingAsync.delete(r.task);
        // Succeeded is final: a later end (a resume interrupted while it reused the task, by
        // an agentctl before 2026-11-30) must not make it run again.
        if (r.report.status === "succeeded" && !done.has(r.task)) done.set(r.task, r.report);
        break;
      default:
        break;
    }
  }
  // A forced resume may have removed or renamed tasks: only this pipeline's are reused.
  const ids = new Set(pipeline.tasks.map((t) => t.id));
  for (const id of done.keys()) if (!ids.has(id)) done.delete(id);
  // A finished fan-out is reused whole: give it back its outputs, in item order.
  const forEach = new Set(pipeline.tasks.filter((t) => t.forEach !== undefined).map((t) => t.id));
  for (const [id, report] of done) {
    if (!forEach.has(id)) continue;
    const m = items.get(id) ?? new Map<number, AgentOutput>();
    const n = m.size === 0 ? 0 : Math.max(...m.keys()) + 1;
    report.outputs = Array.from({ length: n }, (_, i) => m.get(i) ?? null);
  }
  return { done, items, pendingAsync };
}

/** Why a resume must be refused (unless forced): what changed since the journaled run. */
export function describeChanges(
  header: RunIdentity,
  pipeline: PipelineConfig,
  vars: Record<string, unknown>,
): string | undefined {
  const now = pipelineHash(pipeline);
  const changes: string[] = [];
  if (now.hash !== header.hash) {
    const before = header.tasks;
    const added = Object.keys(now.tasks).filter((id) => !(id in before));
    const removed = Object.keys(before).filter((id) => !(id in now.tasks));
    const changed = Object.keys(now.tasks).filter((id) => id in before && before[id] !== now.tasks[id]);
    if (added.length) changes.push(`tasks added: ${added.join(", ")}`);
    if (removed.length) changes.push(`tasks removed: ${removed.join(", ")}`);
    if (changed.length) changes.push(`tasks changed: ${changed.join(", ")}`);
    if (changes.length === 0) changes.push("the file's content changed (outside task definitions)");
  }
  const varNames = new Set([...Object.keys(header.vars), ...Object.keys(vars)]);
  const changedVars = [...varNames].filter((k) => JSON.stringify(header.vars[k]) !== JSON.stringify(vars[k]));
  if (changedVars.length) changes.push(`vars changed: ${changedVars.join(", ")}`);
  return changes.length ? changes.join("; ") : undefined;
}
