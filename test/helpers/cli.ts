import { existsSync } from "node:fs";
import { mkdir, mkdtemp, readdir, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { execa, type ResultPromise } from "execa";
import { afterAll, beforeAll } from "vitest";
import { stringify } from "yaml";
import { type AgentServer, startAgentServer } from "../../src/server/index.js";

/**
 * Runs the real CLI (`node bin/agentctl.js …`, built into dist/) as a child process, and gives
 * each test a temporary directory to write pipelines and services files into.
 */

export const ROOT = fileURLToPath(new URL("../..", import.meta.url));
export const BIN = join(ROOT, "bin", "agentctl.js");
export const PACKAGE_VERSION = (
  JSON.parse(await readFile(join(ROOT, "package.json"), "utf8")) as { version: string }
).version;

// What the bin script loads must have been built.
for (const built of ["main.cjs", "compile-cache.cjs"]) {
  const file = join(ROOT, "dist", "cli-bundle", built);
  if (!existsSync(file)) throw new Error(`${file} is missing: build first (npm run build)`);
}

export interface CliOptions {
  cwd?: string;
  /**
   * Laid over the parent's environment; `undefined` removes a variable. By default colours are
   * off (NO_COLOR=1, FORCE_COLOR unset) so output is plain text; pass NO_COLOR: undefined to
   * let FORCE_COLOR decide.
   */
  env?: Record<string, string | undefined>;
  /** Kill the CLI (SIGKILL) after this many ms; default 30 s. */
  timeout?: number;
  /**
   * Read nothing from stdout until `releaseStdout()`: once the pipe is full, the CLI's writes
   * wait, like those of a CLI piped into a consumer that stalls.
   */
  holdStdout?: boolean;
}

export interface CliResult {
  /** Undefined when the process was killed by a signal. */
  exitCode: number | undefined;
  signal: string | undefined;
  stdout: string;
  stderr: string;
  timedOut: boolean;
  durationMs: number;
}

/** A running CLI: output so far, waits on it, signals. */
export interface CliProcess {
  readonly child: ResultPromise;
  readonly pid: number | undefined;
  stdout(): string;
  stderr(): string;
  /** Resolves once the text so far on `stream` satisfies `test` (bounded by `timeoutMs`). */
  waitForOutput(
    stream: "stdout" | "stderr",
    test: RegExp | ((text: string) => boolean),
    timeoutMs?: number,
  ): Promise<string>;
  kill(signal: NodeJS.Signals): boolean;
  /** Starts reading stdout (after `holdStdout`). */
  releaseStdout(): void;
  /** Resolves when the process has exited, before its output is read to the end. */
  exit: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  /** Resolves when the process has ended and its output is read (never rejects). */
  result: Promise<CliResult>;
  /** Whether it has ended and its output is read. */
  readonly exited: boolean;
  /** Whether the process is still running (its output may still be in the pipes). */
  readonly alive: boolean;
}

function cliEnv(env: Record<string, string | undefined> | undefined): Record<string, string | undefined> {
  return { NO_COLOR: "1", FORCE_COLOR: undefined, ...env };
}

/** Starts `node bin/agentctl.js ...args`; stdin is closed, output is collected as it comes. */
export function startCli(args: readonly string[], options: CliOptions = {}): CliProcess {
  const started = performance.now();
  const child = execa(process.execPath, [BIN, ...args], {
    cwd: options.cwd ?? ROOT,
    env: cliEnv(options.env),
    extendEnv: true,
    reject: false,
    // Output is collected here, as it comes (and not at all while stdout is held).
    buffer: false,
    stdin: "ignore",
    stripFinalNewline: false,
    timeout: options.timeout ?? 30_000,
    killSignal: "SIGKILL",
    forceKillAfterDelay: false,
  });
  let out = "";
  let err = "";
  let exited = false;
  const waiters = new Set<() => void>();
  const notify = () => {
    for (const w of waiters) w();
  };
  let alive = true;
  const exit = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
    child.once("exit", (code, signal) => {
      alive = false;
      resolve({ code, signal });
    }),
  );
  child.stdout?.setEncoding("utf8");
  child.stderr?.setEncoding("utf8");
  let reading = false;
  const releaseStdout = () => {
    if (reading) return;
    reading = true;
    child.stdout?.on("data", (chunk: string) => {
      out += chunk;
      notify();
    });
    child.stdout?.resume();
  };
  // Paused on purpose: without `buffer`, execa resumes (drains and drops) a stream nobody set
  // flowing or paused, and the CLI's writes would never wait.
  if (options.holdStdout) child.stdout?.pause();
  else releaseStdout();
  child.stderr?.on("data", (chunk: string) => {
    err += chunk;
    notify();
  });
  const result = child.then((r) => {
    exited = true;
    notify();
    return {
      exitCode: r.exitCode,
      signal: r.signal,
      stdout: out,
      stderr: err,
      timedOut: r.timedOut,
      durationMs: performance.now() - started,
    } satisfies CliResult;
  });
  return {
    child,
    get pid() {
      return child.pid;
    },
    stdout: () => out,
    stderr: () => err,
    get exited() {
      return exited;
    },
    get alive() {
      return alive;
    },
    kill: (signal) => child.kill(signal),
    releaseStdout,
    exit,
    result,
    waitForOutput(stream, test, timeoutMs = 15_000) {
      const text = () => (stream === "stdout" ? out : err);
      const ok = () => (typeof test === "function" ? test(text()) : test.test(text()));
      if (ok()) return Promise.resolve(text());
      return new Promise((resolve, reject) => {
        const timer = setTimeout(() => {
          waiters.delete(check);
          reject(
            new Error(
              `timed out after ${timeoutMs} ms waiting for ${stream} to match ${String(test)}\n--- stdout:\n${out}\n--- stderr:\n${err}`,
            ),
          );
        }, timeoutMs);
        const check = () => {
          if (ok()) {
            clearTimeout(timer);
            waiters.delete(check);
            resolve(text());
          } else if (exited) {
            clearTimeout(timer);
            waiters.delete(check);
            reject(
              new Error(
                `the CLI exited before ${stream} matched ${String(test)}\n--- stdout:\n${out}\n--- stderr:\n${err}`,
              ),
            );
          }
        };
        waiters.add(check);
      });
    },
  };
}

/** Runs the CLI to its end. Never rejects on a non-zero exit: look at `exitCode`. */
export function runCli(args: readonly string[], options: CliOptions = {}): Promise<CliResult> {
  return startCli(args, options).result;
}

/** The JSON document on stdout, with the CLI's output in the error when it is not JSON. */
// biome-ignore lint/suspicious/noExplicitAny: callers read the JSON loosely unless they say otherwise
export function parseJsonOutput<T = any>(result: CliResult): T {
  try {
    return JSON.parse(result.stdout) as T;
  } catch {
    throw new Error(
      `stdout is not one JSON document (exit ${result.exitCode}):\n${result.stdout}\n--- stderr:\n${result.stderr}`,
    );
  }
}

/** Waits until `condition` holds, checking every `intervalMs`; fails after `timeoutMs`. */
export async function waitUntil(
  condition: () => boolean | Promise<boolean>,
  timeoutMs = 10_000,
  what = "condition",
  intervalMs = 20,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (await condition()) return;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, intervalMs));
  }
}

// ---------------------------------------------------------------------------------------------
// Temporary directories

const created: string[] = [];

/** A temporary directory with helpers to write pipelines and services files into it. */
export class Workspace {
  constructor(readonly dir: string) {}

  path(name: string): string {
    return join(this.dir, name);
  }

  /** Writes text as is (positions in it are what validation reports). Returns the path. */
  async write(name: string, text: string | Buffer): Promise<string> {
    const path = this.path(name);
    await mkdir(dirname(path), { recursive: true });
    await writeFile(path, text);
    return path;
  }

  /** Writes a value as YAML (pipelines and services files built as objects). Returns the path. */
  writeYaml(name: string, value: unknown): Promise<string> {
    return this.write(name, stringify(value, { lineWidth: 0 }));
  }

  read(name: string): Promise<string> {
    return readFile(this.path(name), "utf8");
  }

  /** Every file under a subdirectory (recursively), as paths relative to the workspace. */
  async files(under = "."): Promise<string[]> {
    const root = this.path(under);
    if (!existsSync(root)) return [];
    const entries = await readdir(root, { recursive: true, withFileTypes: true });
    return entries
      .filter((e) => e.isFile())
      .map((e) => join(e.parentPath, e.name).slice(this.dir.length + 1))
      .sort();
  }
}

export async function workspace(prefix = "agentctl-cli-"): Promise<Workspace> {
  const dir = await mkdtemp(join(tmpdir(), prefix));
  created.push(dir);
  return new Workspace(dir);
}

/** Removes every workspace made so far (call from afterAll). */
export async function removeWorkspaces(): Promise<void> {
  await Promise.all(created.splice(0).map((d) => rm(d, { recursive: true, force: true })));
}

/**
 * For a test file: a reference agent server (recording requests) and a workspace, made before
 * its tests and removed after them; `ready` receives both.
 */
export function useServerAndWorkspace(ready: (server: AgentServer, ws: Workspace) => void): void {
  let server: AgentServer | undefined;
  beforeAll(async () => {
    server = await startAgentServer({ recordRequests: true });
    ready(server, await workspace());
  });
  afterAll(async () => {
    await server?.close();
    await removeWorkspaces();
  });
}

// ---------------------------------------------------------------------------------------------
// Pipelines

export interface InstanceSpec {
  id?: string;
  endpoint: string;
  agents?: string[];
}

/** A services mapping (the part under `services:`) with one service of the given instances. */
export function servicesOf(
  instances: readonly (string | InstanceSpec)[],
  extra: Record<string, unknown> = {},
  name = "svc",
): Record<string, unknown> {
  return {
    [name]: {
      ...extra,
      instances: instances.map((i) => (typeof i === "string" ? { endpoint: i } : i)),
    },
  };
}

/** The ANSI colour escapes in a text. */
export const ANSI = /\u001b\[[0-9;]*m/;

export function stripAnsi(text: string): string {
  return text.replace(/\u001b\[[0-9;]*m/g, "");
}
