import { type ChildProcess, spawn, spawnSync } from "node:child_process";
import { mkdtemp, rm } from "node:fs/promises";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, it } from "vitest";

/** The etcd binary: `$ETCD_BIN`, else `etcd` on the PATH. */
export const ETCD_BIN = process.env.ETCD_BIN || "etcd";

let available: boolean | undefined;

/** Whether an etcd binary can be run here. */
export function etcdAvailable(): boolean {
  if (available === undefined) {
    const r = spawnSync(ETCD_BIN, ["--version"], { stdio: "ignore", timeout: 10_000 });
    available = r.error === undefined && r.status === 0;
  }
  return available;
}

/**
 * `describe` for suites that need a real etcd. Without one they are skipped with a clear message
 * locally, and fail in CI (`CI=true`), where a missing etcd is a broken setup, not a reason to pass.
 */
export function describeEtcd(name: string, fn: () => void): void {
  if (etcdAvailable()) {
    describe(name, fn);
    return;
  }
  const why = `etcd not found (tried ${JSON.stringify(ETCD_BIN)}; install etcd, e.g. apt-get install etcd-server, or set ETCD_BIN)`;
  if (process.env.CI === "true") {
    describe(name, () => {
      it("needs etcd, which CI must provide", () => {
        throw new Error(`${why}: etcd tests cannot be skipped in CI`);
      });
    });
    return;
  }
  process.stderr.write(`[etcd tests] skipping "${name}": ${why}\n`);
  describe.skip(`${name} [skipped: ${why}]`, fn);
}

export interface EtcdServer {
  /** `etcd://127.0.0.1:PORT` (default prefix). */
  readonly url: string;
  /** `http://127.0.0.1:PORT`, for an etcd3 client. */
  readonly clientUrl: string;
  /** Stops etcd and removes its data directory. Idempotent. */
  stop(): Promise<void>;
  /**
   * Stops etcd (SIGTERM), runs `whileDown` if given, then starts it again on the same ports and
   * data directory, and waits until it is healthy.
   */
  restart(whileDown?: () => Promise<void>): Promise<void>;
  /**
   * Freezes etcd (SIGSTOP) for `ms`, then lets it go on (SIGCONT): connections stay open and
   * nothing answers, as with a stalled or suspended server.
   */
  pause(ms: number): Promise<void>;
}

/** A free loopback port (the system's pick; a clash with another process is retried by startEtcd). */
function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.unref();
    server.on("error", reject);
    server.listen(0, "127.0.0.1", () => {
      const address = server.address();
      const port = typeof address === "object" && address ? address.port : 0;
      server.close(() => resolve(port));
    });
  });
}

async function healthy(clientUrl: string): Promise<boolean> {
  try {
    const res = await fetch(`${clientUrl}/health`, { signal: AbortSignal.timeout(1000) });
    const body = (await res.json()) as { health?: string };
    return res.ok && body.health === "true";
  } catch {
    return false;
  }
}

interface Running {
  child: ChildProcess;
  exited: Promise<void>;
  log: () => string;
}

function launch(dataDir: string, clientPort: number, peerPort: number): Running {
  const client = `http://127.0.0.1:${clientPort}`;
  const peer = `http://127.0.0.1:${peerPort}`;
  const child = spawn(
    ETCD_BIN,
    [
      "--name",
      "default",
      "--data-dir",
      dataDir,
      "--listen-client-urls",
      client,
      "--advertise-client-urls",
      client,
      "--listen-peer-urls",
      peer,
      "--initial-advertise-peer-urls",
      peer,
      "--initial-cluster",
      `default=${peer}`,
      "--log-level",
      "warn",
    ],
    { stdio: ["ignore", "ignore", "pipe"], env: { ...process.env, ETCD_UNSUPPORTED_ARCH: process.arch } },
  );
  let tail = "";
  child.stderr?.setEncoding("utf8");
  child.stderr?.on("data", (chunk: string) => {
    tail = (tail + chunk).slice(-8000);
  });
  const exited = new Promise<void>((resolve) => {
    if (child.exitCode !== null || child.signalCode !== null) resolve();
    else child.once("exit", () => resolve());
    child.once("error", () => resolve());
  });
  return { child, exited, log: () => tail };
}

async function waitHealthy(running: Running, clientUrl: string, timeoutMs: number): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (running.child.exitCode !== null || running.child.signalCode !== null) return false;
    if (await healthy(clientUrl)) return true;
    await new Promise((r) => setTimeout(r, 50));
  }
  return false;
}

async function terminate(running: Running): Promise<void> {
  if (running.child.exitCode !== null || running.child.signalCode !== null) return;
  running.child.kill("SIGTERM");
  const killer = setTimeout(() => running.child.kill("SIGKILL"), 10_000);
  await running.exited;
  clearTimeout(killer);
}

/**
 * Starts a single-member etcd on free loopback ports with a temporary data directory, and waits
 * until it answers `/health`. Call `stop()` when done (an afterAll).
 */
export async function startEtcd(): Promise<EtcdServer> {
  const dataDir = await mkdtemp(join(tmpdir(), "agentctl-etcd-"));
  let running: Running | undefined;
  let clientPort = 0;
  let peerPort = 0;
  let lastLog = "";
  for (let attempt = 0; attempt < 5 && !running; attempt++) {
    clientPort = await freePort();
    peerPort = await freePort();
    if (clientPort === peerPort) continue;
    const candidate = launch(dataDir, clientPort, peerPort);
    if (await waitHealthy(candidate, `http://127.0.0.1:${clientPort}`, 20_000)) {
      running = candidate;
    } else {
      lastLog = candidate.log();
      await terminate(candidate);
      // A half-initialised member must not be reused with other ports.
      await rm(dataDir, { recursive: true, force: true });
    }
  }
  if (!running) {
    await rm(dataDir, { recursive: true, force: true });
    throw new Error(`etcd did not become healthy:\n${lastLog}`);
  }
  const clientUrl = `http://127.0.0.1:${clientPort}`;
  let stopped = false;
  return {
    url: `etcd://127.0.0.1:${clientPort}`,
    clientUrl,
    async stop() {
      if (stopped) return;
      stopped = true;
      if (running) await terminate(running);
      await rm(dataDir, { recursive: true, force: true });
    },
    async pause(ms) {
      if (stopped || !running) throw new Error("etcd is not running");
      running.child.kill("SIGSTOP");
      try {
        await new Promise((r) => setTimeout(r, ms));
      } finally {
        running.child.kill("SIGCONT");
      }
    },
    async restart(whileDown) {
      if (stopped) throw new Error("etcd was stopped");
      if (running) await terminate(running);
      running = undefined;
      if (whileDown) await whileDown();
      const next = launch(dataDir, clientPort, peerPort);
      if (!(await waitHealthy(next, clientUrl, 20_000))) {
        const log = next.log();
        await terminate(next);
        throw new Error(`etcd did not come back after a restart:\n${log}`);
      }
      running = next;
    },
  };
}

/** Polls `check` until it holds, or fails after `timeoutMs`: a condition, never a guessed sleep. */
export async function waitFor(
  check: () => boolean | Promise<boolean>,
  timeoutMs = 10_000,
  what = "condition",
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (await check()) return;
    if (Date.now() > deadline) throw new Error(`${what}: not met within ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, 25));
  }
}
