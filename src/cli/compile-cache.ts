import { lstatSync, readdirSync, readFileSync, renameSync, rmSync, statSync, writeFileSync } from "node:fs";
import Module, { createRequire } from "node:module";
import { tmpdir } from "node:os";
import { basename, dirname, join, sep } from "node:path";
import { Script } from "node:vm";
import { makeDirSync } from "../make-dir.js";

/**
 * A V8 code cache for the CLI bundle. Compiling commander and yaml from source at every start is
 * most of what `agentctl validate` costs over a bare `node`; with the bytecode V8 produced on an
 * earlier run it starts about 30 ms sooner. Node 22 has `module.enableCompileCache()` for this;
 * Node 20 does not, so the bin installs this hook, which compiles only the bundle's own files
 * (every other module loads as usual) and writes a file's cache at exit when it had none.
 *
 * Set AGENTCTL_COMPILE_CACHE to a directory to keep the cache there, or to `off` to disable it.
 * By default it lives in a directory of the user's own under the system temp directory.
 */
export function installCompileCache(bundleDir: string, cacheDir = compileCacheDir()): void {
  if (cacheDir === undefined || !privateDir(cacheDir)) return;
  const prefix = bundleDir.endsWith(sep) ? bundleDir : bundleDir + sep;
  const proto = Module.prototype as unknown as { _compile: Compile };
  const compile = proto._compile;
  const uncached: Written[] = [];

  proto._compile = function (this: Module, content, filename, ...rest) {
    if (!filename.startsWith(prefix)) return compile.call(this, content, filename, ...rest);
    const slot = slotOf(filename);
    const file = join(cacheDir, slot + identity(filename));
    const cachedData = readIfThere(file);
    // No import() in here (Node 20 has it in vm scripts only behind a flag or a warning): the
    // bundle loads everything with require, which rolldown.config.mjs checks.
    const script = new Script(Module.wrap(content), { filename, cachedData });
    if (cachedData === undefined || script.cachedDataRejected)
      uncached.push({ script, file, slot, source: filename });
    const wrapper = script.runInThisContext() as ModuleWrapper;
    return wrapper.call(
      this.exports,
      this.exports,
      createRequire(filename),
      this,
      filename,
      dirname(filename),
    );
  };

  // At exit, not at compile time: the cache then also holds every function this run compiled.
  process.once("exit", () => {
    // A process of a build replaced since it started (a long `serve`) writes nothing: its
    // files would only push the new build's out.
    const current = uncached.filter(({ file, source }) => file.endsWith(sameIdentity(source)));
    if (current.length === 0) return;
    for (const { script, file } of current) writeAtomically(file, script.createCachedData());
    prune(cacheDir, current);
  });
}

/** A cache file written by this run: `slot` + the identity of the build of `source` it is of. */
interface Written {
  script: Script;
  file: string;
  slot: string;
  source: string;
}

type Compile = (this: Module, content: string, filename: string, ...rest: unknown[]) => unknown;
type ModuleWrapper = (
  this: unknown,
  exports: unknown,
  require: NodeJS.Require,
  module: Module,
  filename: string,
  dirname: string,
) => unknown;

/** The configured cache directory, or undefined when caching is off. */
export function compileCacheDir(env: NodeJS.ProcessEnv = process.env): string | undefined {
  const setting = env.AGENTCTL_COMPILE_CACHE;
  if (setting === "off" || setting === "0") return undefined;
  // Per V8 version: another Node's cache would only be rejected, then overwritten back and forth.
  if (setting) return join(setting, process.versions.v8);
  const user = process.getuid?.() ?? "user";
  return join(tmpdir(), `agentctl-compile-cache-${user}`, process.versions.v8);
}

/**
 * Creates the directory if needed and says whether only this user can write to it and its
 * parent. Bytecode is executable: a cache another user can write to would run their code as us.
 */
function privateDir(dir: string): boolean {
  try {
    makeDirSync(dir, 0o700);
    const uid = process.getuid?.();
    if (uid === undefined) return true;
    return [dirname(dir), dir].every((d) => {
      const st = lstatSync(d);
      return st.isDirectory() && st.uid === uid && (st.mode & 0o022) === 0;
    });
  } catch {
    return false;
  }
}

/** A cache file's name ends with its file's identity: a rebuilt chunk (new inode, size, mtime) misses. */
function identity(filename: string): string {
  const st = statSync(filename, { bigint: true });
  return `${st.ino}-${st.size}-${st.mtimeNs}`;
}

/**
 * A cache file's name starts with `<hash of the directory>-<chunk name>~`: one file of one
 * checkout, whatever its build. The chunk name leaves out the content hash rolldown puts in
 * file names (`load-BJ5ymlhk.cjs` is `load`): the chunks that change in a rebuild are exactly the
 * ones whose names change.
 */
function slotOf(filename: string): string {
  // FNV-1a: a short stable tag for the directory, without loading node:crypto at every start.
  let h = 0x811c9dc5;
  const dir = dirname(filename);
  for (let i = 0; i < dir.length; i++) h = Math.imul(h ^ dir.charCodeAt(i), 0x01000193) >>> 0;
  const chunk = basename(filename).replace(/(-[\w-]{8})?\.cjs$/, "");
  // "~" ends the slot: no chunk name has one, so no slot starts another ("exit", "exit-codes").
  return `${h.toString(16).padStart(8, "0")}-${chunk}~`;
}

/** `~<identity>` of the file now, or a text no cache file name ends with if it is gone. */
function sameIdentity(filename: string): string {
  try {
    return `~${identity(filename)}`;
  } catch {
    return "/";
  }
}

function readIfThere(file: string): Buffer | undefined {
  try {
    return readFileSync(file);
  } catch {
    return undefined;
  }
}

/** Cache files kept at most: a few checkouts' worth (a build has about 30 chunks). */
const MAX_CACHE_FILES = 300;

/**
 * Each build's chunks get new cache files. Those just `written` replace their own file's earlier
 * builds, which go; past {@link MAX_CACHE_FILES} (checkouts long gone), the oldest go too.
 */
function prune(dir: string, written: readonly Written[]): void {
  try {
    const current = new Set(written.map(({ file }) => basename(file)));
    const kept: string[] = [];
    for (const name of readdirSync(dir)) {
      if (!current.has(name) && written.some(({ slot }) => name.startsWith(slot))) {
        rmSync(join(dir, name), { force: true });
      } else {
        kept.push(name);
      }
    }
    if (kept.length <= MAX_CACHE_FILES) return;
    const age = new Map(kept.map((name) => [name, statSync(join(dir, name)).mtimeMs]));
    kept.sort((a, b) => age.get(b)! - age.get(a)!);
    for (const name of kept.slice(MAX_CACHE_FILES)) rmSync(join(dir, name), { force: true });
  } catch {
    // Another run pruning at the same time, or an unreadable directory: nothing to do.
  }
}

/** Write-then-rename, so a concurrent run never reads half a cache; failures only cost speed. */
function writeAtomically(file: string, data: Buffer): void {
  const tmp = `${file}.${process.pid}.tmp`;
  try {
    writeFileSync(tmp, data);
    renameSync(tmp, file);
  } catch {
    // Read-only or full disk: the next run compiles from source, as without a cache.
    rmSync(tmp, { force: true });
  }
}
