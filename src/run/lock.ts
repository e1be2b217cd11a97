import { randomBytes } from "node:crypto";
import {
  closeSync,
  linkSync,
  openSync,
  readdirSync,
  readFileSync,
  statSync,
  unlinkSync,
  writeSync,
} from "node:fs";
import { hostname } from "node:os";
import { dirname, join } from "node:path";

export class LockHeldError extends Error {
  override readonly name = "LockHeldError";
  constructor(
    readonly path: string,
    readonly pid: number,
  ) {
    super(`locked by process ${pid} (${path})`);
  }
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    // EPERM: it exists but belongs to someone else.
    return (err as NodeJS.ErrnoException).code === "EPERM";
  }
}

/**
 * An exclusive lock file holding the owner's pid. A lock whose owner died (kill -9) is stale:
 * the next taker removes it, so a crash never leaves a run locked for good.
 */
export function acquireLock(path: string): () => void {
  for (let attempt = 0; attempt < 3; attempt++) {
    try {
      createWhole(path, JSON.stringify({ pid: process.pid, host: hostname(), at: new Date().toISOString() }));
      removeOrphans(path);
      return () => {
        try {
          unlinkSync(path);
        } catch {
          // Already gone: nothing to release.
        }
      };
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== "EEXIST") throw err;
    }
    let text = "";
    try {
      text = readFileSync(path, "utf8");
    } catch {
      continue; // Released meanwhile: try again.
    }
    const pid = ownerPid(text);
    if (pid !== undefined && alive(pid)) throw new LockHeldError(path, pid);
    removeStale(path, text);
  }
  throw new LockHeldError(path, -1);
}

/** Whether a live process holds the lock at `path` now. */
export function lockHeld(path: string): boolean {
  let text: string;
  try {
    text = readFileSync(path, "utf8");
  } catch {
    return false;
  }
  const pid = ownerPid(text);
  return pid !== undefined && alive(pid);
}

/**
 * Creates `path` with `text`, failing with EEXIST if it exists. The file appears with its whole
 * content at once (written aside, then hard-linked into place): a process that finds the lock
 * never reads it half-written and takes a live lock for a crashed one.
 */
function createWhole(path: string, text: string): void {
  const tmp = `${path}.${process.pid}.${randomBytes(4).toString("hex")}.tmp`;
  const fd = openSync(tmp, "wx");
  try {
    writeSync(fd, text);
  } finally {
    closeSync(fd);
  }
  try {
    linkSync(tmp, path);
  } finally {
    unlinkSync(tmp);
  }
}

function ownerPid(text: string): number | undefined {
  try {
    const owner = JSON.parse(text) as { pid?: unknown; host?: unknown };
    return typeof owner.pid === "number" && owner.host === hostname() ? owner.pid : undefined;
  } catch {
    return undefined; // Not a lock this code wrote (garbage): stale.
  }
}

/**
 * Removes a stale lock only if it is still the one we judged stale. A second, short-lived lock
 * serialises breakers, so two processes breaking the same stale lock cannot both win.
 */
function removeStale(path: string, staleText: string): void {
  const breaker = `${path}.break`;
  let fd: number;
  try {
    fd = openSync(breaker, "wx");
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== "EEXIST") throw err;
    // Another process is breaking it now, unless it died doing so a while ago.
    const st = statSync(breaker, { throwIfNoEntry: false });
    if (st && Date.now() - st.mtimeMs < 10_000) throw new LockHeldError(path, -1);
    if (st) unlinkSync(breaker);
    return;
  }
  try {
    let current: string | undefined;
    try {
      current = readFileSync(path, "utf8");
    } catch {
      current = undefined;
    }
    if (current === staleText) unlinkSync(path);
  } finally {
    closeSync(fd);
    unlinkSync(breaker);
  }
}

/** What {@link createWhole} writes aside: `<lock file>.<pid>.<8 hex>.tmp`. */
const ASIDE = /\.lock\.(\d+)\.[0-9a-f]{8}\.tmp$/;

/**
 * Removes the files {@link createWhole} writes aside that processes killed between writing and
 * linking one left behind, for any lock in the directory of `path` (a fresh run's is new: the
 * orphans are other runs'), so they do not pile up next to journals: the pid in the name is not
 * alive here, and the file is old (a process on another host sharing the directory has it for
 * microseconds).
 */
function removeOrphans(path: string): void {
  let names: string[];
  try {
    names = readdirSync(dirname(path));
  } catch {
    return;
  }
  for (const name of names) {
    const pid = Number(ASIDE.exec(name)?.[1]);
    if (!Number.isInteger(pid) || pid === process.pid || alive(pid)) continue;
    const file = join(dirname(path), name);
    try {
      if (Date.now() - statSync(file).mtimeMs > 10_000) unlinkSync(file);
    } catch {
      // Removed by another process meanwhile.
    }
  }
}
