import { existsSync, readdirSync, readFileSync } from "node:fs";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { execa, type ResultPromise } from "execa";
import { afterAll, afterEach, vi } from "vitest";
import { BIN, waitUntil } from "./cli.js";

export { waitUntil };

import { agentOutput, type FakeAgentServer, startFakeAgentServer } from "./fake-agent-server.js";

/**
 * Helpers for the durable-run tests (SPEC §8): the real CLI as a child process in a fresh
 * directory, its journal read back, and request logs of the agent servers counted per
 * idempotency key.
 */

export interface Finished {
  exitCode: number | undefined;
  signal: string | undefined;
  stdout: string;
  stderr: string;
}

/** A CLI process: its output so far, its run id (from stderr), its end. */
export interface Cli {
  readonly proc: ResultPromise;
  stderr(): string;
  /** The run id the CLI prints on stderr at the start (`run <id>: …`). */
  runId(timeoutMs?: number): Promise<string>;
  kill(signal?: NodeJS.Signals): void;
  readonly done: Promise<Finished>;
  readonly exited: boolean;
}

export interface CliOptions {
  env?: Record<string, string | undefined>;
  timeoutMs?: number;
}

/** Starts `node bin/agentctl.js ...args` in `cwd` (never rejects: look at the exit code). */
export function cli(cwd: string, args: readonly string[], options: CliOptions = {}): Cli {
  const proc = execa(process.execPath, [BIN, ...args], {
    cwd,
    env: { NO_COLOR: "1", FORCE_COLOR: undefined, ...options.env },
    extendEnv: true,
    reject: false,
    stdin: "ignore",
    timeout: options.timeoutMs ?? 25_000,
    killSignal: "SIGKILL",
    forceKillAfterDelay: false,
  });
  let err = "";
  let exited = false;
  proc.stderr?.setEncoding("utf8");
  proc.stderr?.on("data", (chunk: string) => {
    err += chunk;
  });
  const done = proc.then((r) => {
    exited = true;
    return {
      exitCode: r.exitCode,
      signal: r.signal,
      stdout: String(r.stdout ?? ""),
      stderr: typeof r.stderr === "string" ? r.stderr : err,
    };
  });
  return {
    proc,
    stderr: () => err,
    get exited() {
      return exited;
    },
    async runId(timeoutMs = 10_000) {
      let id: string | undefined;
      await waitUntil(
        () => {
          id = /^run (\S+):/m.exec(err)?.[1];
          return id !== undefined || exited;
        },
        timeoutMs,
        "the run id on stderr",
      );
      if (id === undefined) throw new Error(`the CLI ended without printing a run id:\n${err}`);
      return id;
    },
    kill(signal = "SIGKILL") {
      proc.kill(signal);
    },
    done,
  };
}

/** Runs the CLI to its end. */
export function run(cwd: string, args: readonly string[], options?: CliOptions): Promise<Finished> {
  return cli(cwd, args, options).done;
}

/** Parses the CLI's JSON result, showing its output when it is not JSON. */
// biome-ignore lint/suspicious/noExplicitAny: test code reads JSON loosely
export function json(r: Finished): any {
  try {
    return JSON.parse(r.stdout);
  } catch {
    throw new Error(`stdout is not JSON (exit ${r.exitCode}):\n${r.stdout}\n--- stderr:\n${r.stderr}`);
  }
}

// ---------------------------------------------------------------------------------------------
// Directories and journals

const made: string[] = [];

/** A fresh temporary directory (removed by `removeTempDirs`). */
export async function tempDir(): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), "agentctl-journal-"));
  made.push(dir);
  return dir;
}

export async function removeTempDirs(): Promise<void> {
  await Promise.all(made.splice(0).map((d) => rm(d, { recursive: true, force: true })));
}

export async function writeText(dir: string, name: string, text: string): Promise<string> {
  const path = join(dir, name);
  await writeFile(path, text);
  return path;
}

export function journalPath(dir: string, runId: string, stateDir = ".agentctl"): string {
  return join(dir, stateDir, "runs", `${runId}.jsonl`);
}

/** Journal files under `dir/stateDir/runs`. */
export function journalFiles(dir: string, stateDir = ".agentctl"): string[] {
  const runs = join(dir, stateDir, "runs");
  return existsSync(runs) ? readdirSync(runs).filter((f) => f.endsWith(".jsonl")) : [];
}

// biome-ignore lint/suspicious/noExplicitAny: journal records are read loosely
export type Rec = Record<string, any>;

/** The complete lines of a journal, parsed (a torn last line is left out). */
export function records(path: string): Rec[] {
  const text = readFileSync(path, "utf8");
  const lines = text.split("\n");
  lines.pop(); // "" after the last newline, or a torn line
  return lines.filter((l) => l !== "").map((l) => JSON.parse(l) as Rec);
}

// ---------------------------------------------------------------------------------------------
// Request logs

const EXECUTE = /\/api\/v1\/agents\/[^/?]+\/execute(\/async)?$/;

export function isAgentCall(r: { method: string; path: string }): boolean {
  return r.method === "POST" && EXECUTE.test(r.path);
}

export function keyOf(r: { headers: Record<string, string | string[] | undefined> }): string {
  const k = r.headers["idempotency-key"];
  return typeof k === "string" ? k : "";
}

type Logged = { method: string; path: string; headers: Record<string, string | string[] | undefined> };

/** Agent calls (execute, execute async) per idempotency key. */
export function callsPerKey(requests: readonly Logged[]): Map<string, number> {
  const counts = new Map<string, number>();
  for (const r of requests) {
    if (!isAgentCall(r)) continue;
    const k = keyOf(r);
    counts.set(k, (counts.get(k) ?? 0) + 1);
  }
  return counts;
}

/**
 * Scripts a fake agent server's `execute` calls by phase (1: the run that gets killed, 2: the
 * resume): `decide` gives the `result` to answer with, `{ delayMs, result }` to answer late,
 * or `"hang"` to never answer. Counts calls per idempotency key and phase.
 */
export class ScriptedAgents {
  phase = 1;
  /** `phase:key` → calls. */
  private readonly calls = new Map<string, number>();

  constructor(
    server: FakeAgentServer,
    decide: (call: {
      key: string;
      /** The task id, from the key `<run_id>:<task>[:<index>]`. */
      task: string;
      body: Rec;
      phase: number;
    }) => unknown,
  ) {
    server.route(
      (r) => isAgentCall(r) && !r.path.endsWith("/async"),
      (r) => {
        const key = keyOf(r);
        const k = `${this.phase}:${key}`;
        this.calls.set(k, (this.calls.get(k) ?? 0) + 1);
        const body = (r.json ?? {}) as Rec;
        const decision = decide({ key, task: key.split(":")[1] ?? "", body, phase: this.phase });
        if (decision === "hang") return { hang: true };
        if (decision !== null && typeof decision === "object" && "delayMs" in decision) {
          const d = decision as { delayMs: number; result: unknown };
          return { delayMs: d.delayMs, json: agentOutput({ result: d.result }) };
        }
        return { json: agentOutput({ result: decision }) };
      },
    );
  }

  /** Calls of `key` in `phase` (in every phase when omitted). */
  callsOf(key: string, phase?: number): number {
    if (phase !== undefined) return this.calls.get(`${phase}:${key}`) ?? 0;
    let n = 0;
    for (const [k, v] of this.calls) if (k.slice(k.indexOf(":") + 1) === key) n += v;
    return n;
  }
}

// ---------------------------------------------------------------------------------------------
// A two-task pipeline (`first → second`) whose `second` the test switches between failing,
// hanging and answering: the quickest way to a resumable run.

const started: Array<{ close(): Promise<void> }> = [];

/** Keeps a server (or anything closable) to be closed after the test. */
export function closeAfterTest<T extends { close(): Promise<void> }>(server: T): T {
  started.push(server);
  return server;
}

/** A scriptable fake agent server, closed after the test. */
export async function fakeServer(agents: string[] = ["echo"]): Promise<FakeAgentServer> {
  return closeAfterTest(await startFakeAgentServer({ agents }));
}

/** Closes every server the helpers started (useJournalTests runs it after each test). */
export async function closeServers(): Promise<void> {
  await Promise.all(started.splice(0).map((s) => s.close().catch(() => undefined)));
}

/**
 * The common setup of a journal test file: servers closed after each test, temporary
 * directories removed at the end, and room for slow child-process starts on a shared machine.
 */
export function useJournalTests(): void {
  afterEach(closeServers);
  afterAll(removeTempDirs);
  vi.setConfig({ testTimeout: 60_000 });
}

export const twoTaskPipeline = (url: string, extra = "") => `name: robust
services: { svc: { instances: [ { endpoint: ${url} } ] } }
retries: 0
vars: { who: world }
tasks:
  - { id: first, service: svc, agent: echo, input: { task: first } }
  - { id: second, service: svc, agent: echo, needs: [first], input: { task: "\${{ tasks.first.output.result }}-\${{ vars.who }}" } }
${extra}`;

export interface TwoTasks {
  server: FakeAgentServer;
  dir: string;
  /** What `second` does: fail (500; the run fails and can be resumed), hang, or answer. */
  set(mode: "fail" | "hang" | "ok"): void;
  /** Agent calls of `task` in run `runId` (by idempotency key). */
  calls(task: string, runId: string): number;
}

export async function twoTasks(): Promise<TwoTasks> {
  const server = await fakeServer();
  let mode: "fail" | "hang" | "ok" = "fail";
  server.route(
    (q) => isAgentCall(q),
    (q) => {
      const task = String((q.json as Rec).task);
      if (task !== "first" && mode === "fail") return { status: 500, json: { error: "boom" } };
      if (task !== "first" && mode === "hang") return { hang: true };
      return { json: agentOutput({ result: task.toUpperCase() }) };
    },
  );
  const dir = await tempDir();
  await writeText(dir, "p.yaml", twoTaskPipeline(server.url));
  return {
    server,
    dir,
    set: (m) => {
      mode = m;
    },
    calls: (task, runId) => server.agentCalls.filter((q) => keyOf(q) === `${runId}:${task}`).length,
  };
}

/** A run of `t` whose `first` succeeded and `second` failed (exit 1): its run id. */
export async function failedRun(t: TwoTasks): Promise<string> {
  t.set("fail");
  const r = await run(t.dir, ["run", "p.yaml", "--output", "json"]);
  if (r.exitCode !== 1) throw new Error(`expected exit 1, got ${r.exitCode}:\n${r.stderr}`);
  t.set("ok");
  return json(r).run_id as string;
}

/** `run p.yaml --output json --resume ID …` in `dir`. */
export function resume(dir: string, runId: string, ...more: string[]): Promise<Finished> {
  return run(dir, ["run", "p.yaml", "--output", "json", "--resume", runId, ...more]);
}
