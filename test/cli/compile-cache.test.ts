// The V8 code cache the bin installs for the CLI bundle (src/cli/compile-cache.ts): it must make
// starts cheaper and never change what the CLI does, whatever state the cache is in.
import {
  chmodSync,
  mkdirSync,
  readdirSync,
  readFileSync,
  rmSync,
  statSync,
  utimesSync,
  writeFileSync,
} from "node:fs";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { execa } from "execa";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { compileCacheDir } from "../../src/cli/compile-cache.js";
import { ROOT, runCli } from "../helpers/cli.js";

const HOOK = join(ROOT, "dist", "cli-bundle", "compile-cache.cjs");
const DEMO = join(ROOT, "pipelines", "demo.yaml");

let dir: string;
beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), "agentctl-cc-test-"));
});
afterEach(async () => {
  await rm(dir, { recursive: true, force: true });
});

/** The cache files (name → bytes) in the V8-version directory under `root`. */
function cacheFiles(root: string): Map<string, Buffer> {
  const d = join(root, process.versions.v8);
  let names: string[];
  try {
    names = readdirSync(d);
  } catch {
    return new Map();
  }
  return new Map(names.map((n) => [n, readFileSync(join(d, n))]));
}

describe("the CLI with a compile cache", () => {
  it("writes a cache on the first run, reuses it unchanged after, and prints the same", async () => {
    const env = { AGENTCTL_COMPILE_CACHE: dir };
    const first = await runCli(["validate", DEMO], { env });
    expect(first.exitCode).toBe(0);
    const written = cacheFiles(dir);
    const names = [...written.keys()];
    // The entry chunk and the chunk holding yaml and the loader.
    expect(names.some((n) => /^[0-9a-f]{8}-main~/.test(n))).toBe(true);
    expect(names.some((n) => /^[0-9a-f]{8}-load~/.test(n))).toBe(true);
    expect(names.some((n) => n.endsWith(".tmp"))).toBe(false);

    const second = await runCli(["validate", DEMO], { env });
    expect(second.exitCode).toBe(0);
    expect(second.stdout).toBe(first.stdout);
    // Accepted, so not rewritten.
    expect(cacheFiles(dir)).toEqual(written);
  });

  it("ignores a corrupt cache, still works, and replaces it", async () => {
    const env = { AGENTCTL_COMPILE_CACHE: dir };
    const clean = await runCli(["validate", DEMO], { env });
    const v8dir = join(dir, process.versions.v8);
    for (const name of readdirSync(v8dir)) writeFileSync(join(v8dir, name), "not a code cache");

    const again = await runCli(["validate", DEMO], { env });
    expect(again.exitCode).toBe(0);
    expect(again.stdout).toBe(clean.stdout);
    for (const [name, bytes] of cacheFiles(dir)) {
      expect(bytes.toString("latin1"), name).not.toBe("not a code cache");
    }
  });

  it("writes nothing to a directory others can write to, and still works", async () => {
    chmodSync(dir, 0o777);
    const r = await runCli(["validate", DEMO], { env: { AGENTCTL_COMPILE_CACHE: dir } });
    expect(r.exitCode).toBe(0);
    expect(cacheFiles(dir).size).toBe(0);
  });

  it("works when the cache directory cannot be created", async () => {
    const file = join(dir, "a-file");
    writeFileSync(file, "");
    const r = await runCli(["validate", DEMO], { env: { AGENTCTL_COMPILE_CACHE: file } });
    expect(r.exitCode).toBe(0);
    expect(r.stderr).toBe("");
  });
});

describe("installCompileCache on files of its own", () => {
  /** Requires `bundle/name` in a fresh Node with the hook installed; returns what it printed. */
  async function load(bundle: string, name: string): Promise<string> {
    const script = `require(${JSON.stringify(HOOK)}).installCompileCache(${JSON.stringify(bundle)}, ${JSON.stringify(join(dir, "cache"))});
      console.log(require(${JSON.stringify(join(bundle, name))}));`;
    const r = await execa(process.execPath, ["-e", script], { reject: false });
    expect(r.stderr).toBe("");
    return r.stdout;
  }

  it("misses after the source changes, and runs the new code", async () => {
    const bundle = join(dir, "bundle");
    mkdirSync(bundle);
    const file = join(bundle, "a.cjs");
    writeFileSync(file, "module.exports = 'one';");
    expect(await load(bundle, "a.cjs")).toBe("one");
    expect(await load(bundle, "a.cjs")).toBe("one");
    expect(readdirSync(join(dir, "cache"))).toHaveLength(1);

    // Same length, new content, and a new mtime.
    writeFileSync(file, "module.exports = 'two';");
    const later = new Date(statSync(file).mtimeMs + 5_000);
    utimesSync(file, later, later);
    const [before] = readdirSync(join(dir, "cache"));
    expect(await load(bundle, "a.cjs")).toBe("two");
    // The new build's cache replaces the old one's: rebuilds do not pile up.
    const after = readdirSync(join(dir, "cache"));
    expect(after).toHaveLength(1);
    expect(after[0]).not.toBe(before);
  });

  it("a chunk rebuilt under a new content-hashed name replaces its old cache too", async () => {
    const bundle = join(dir, "bundle");
    mkdirSync(bundle);
    writeFileSync(join(bundle, "load-AAAA1111.cjs"), "module.exports = 'one';");
    writeFileSync(join(bundle, "load-extra-CCCC3333.cjs"), "module.exports = 'extra';");
    expect(await load(bundle, "load-AAAA1111.cjs")).toBe("one");
    expect(await load(bundle, "load-extra-CCCC3333.cjs")).toBe("extra");
    rmSync(join(bundle, "load-AAAA1111.cjs"));
    writeFileSync(join(bundle, "load-BBBB2222.cjs"), "module.exports = 'two';");
    expect(await load(bundle, "load-BBBB2222.cjs")).toBe("two");
    // One file per chunk: load's new build, and load-extra untouched.
    const left = readdirSync(join(dir, "cache")).map((n) => n.slice(9, n.indexOf("~")));
    expect(left.sort()).toEqual(["load", "load-extra"]);
  });

  it("keeps other checkouts' caches, up to 300 files, the newest", async () => {
    const cache = join(dir, "cache");
    mkdirSync(cache);
    // Files of 310 other bundles, the first ones the oldest.
    for (let i = 0; i < 310; i++) {
      const name = join(cache, `0000abcd-other${i}.cjs-1-2-3`);
      writeFileSync(name, "");
      const t = new Date(Date.now() - (400 - i) * 60_000);
      utimesSync(name, t, t);
    }
    const bundle = join(dir, "bundle");
    mkdirSync(bundle);
    writeFileSync(join(bundle, "a.cjs"), "module.exports = 'one';");
    expect(await load(bundle, "a.cjs")).toBe("one");
    const left = readdirSync(cache);
    expect(left).toHaveLength(300);
    expect(left.some((n) => n.includes("-a~"))).toBe(true);
    expect(left).not.toContain("0000abcd-other0.cjs-1-2-3");
    expect(left).toContain("0000abcd-other309.cjs-1-2-3");
  });

  it("gives cached files require, module, __filename and __dirname", async () => {
    const bundle = join(dir, "bundle");
    mkdirSync(bundle);
    writeFileSync(join(bundle, "b.cjs"), "module.exports = 'b';");
    writeFileSync(
      join(bundle, "a.cjs"),
      `const p = require("node:path");
      module.exports = [require("./b.cjs"), p.basename(__filename), p.basename(__dirname), module.id === __filename].join(" ");`,
    );
    for (let i = 0; i < 2; i++) expect(await load(bundle, "a.cjs")).toBe("b a.cjs bundle true");
  });

  it("leaves files outside the bundle directory to Node", async () => {
    const bundle = join(dir, "bundle");
    mkdirSync(bundle);
    const outside = join(dir, "outside.cjs");
    writeFileSync(outside, "module.exports = 'outside';");
    writeFileSync(join(bundle, "a.cjs"), `module.exports = require(${JSON.stringify(outside)});`);
    expect(await load(bundle, "a.cjs")).toBe("outside");
    expect(readdirSync(join(dir, "cache"))).toEqual([expect.stringMatching(/^[0-9a-f]{8}-a~/)]);
  });
});

describe("compileCacheDir", () => {
  it("is off for off or 0, under the given directory, else private to the user in the temp dir", () => {
    expect(compileCacheDir({ AGENTCTL_COMPILE_CACHE: "off" })).toBeUndefined();
    expect(compileCacheDir({ AGENTCTL_COMPILE_CACHE: "0" })).toBeUndefined();
    expect(compileCacheDir({ AGENTCTL_COMPILE_CACHE: "/x" })).toBe(join("/x", process.versions.v8));
    expect(compileCacheDir({})).toBe(
      join(tmpdir(), `agentctl-compile-cache-${process.getuid?.()}`, process.versions.v8),
    );
  });
});
