import { cp, mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { execa } from "execa";
import { describe, expect, it } from "vitest";
import { ROOT } from "./helpers/cli.js";

/** The package as another project sees it: its exports, what importing it loads, the bin unbuilt. */

describe("the package", () => {
  it("is importable from ES modules and CommonJS, without loading etcd's gRPC until fleet mode is used", async () => {
    const esm = await execa(
      process.execPath,
      [
        "--input-type=module",
        "-e",
        `import { Coordinator, watchEtcdRegistry } from "agentctl";
         import { createRequire } from "node:module";
         const loaded = Object.keys(createRequire(import.meta.url).cache);
         console.log(typeof Coordinator, typeof watchEtcdRegistry, loaded.some((m) => m.includes("@grpc")));`,
      ],
      { cwd: ROOT },
    );
    expect(esm.stdout).toBe("function function false");
    const cjs = await execa(
      process.execPath,
      [
        "-e",
        `const { Client } = require("agentctl"); console.log(typeof Client, require.resolve("agentctl/schema.json"));`,
      ],
      { cwd: ROOT },
    );
    expect(cjs.stdout).toBe(`function ${join(ROOT, "schema", "pipeline.schema.json")}`);
  });

  it("ships the bin, the CLI bundle, the library with its types, the schema, examples and sources; not the unbundled CLI", async () => {
    // --ignore-scripts: packing would otherwise rebuild dist/ under the other tests' feet.
    const r = await execa("npm", ["pack", "--dry-run", "--json", "--ignore-scripts"], { cwd: ROOT });
    const files = new Set(
      (JSON.parse(r.stdout) as { files: { path: string }[] }[])[0]!.files.map((f) => f.path),
    );
    for (const needed of [
      "bin/agentctl.js",
      "bin/package.json",
      "dist/cli-bundle/main.cjs",
      "dist/index.js",
      "dist/index.d.ts",
      "dist/registry/etcd-source.js",
      "schema/pipeline.schema.json",
      "pipelines/demo.yaml",
      "src/index.ts",
    ]) {
      expect(files.has(needed), needed).toBe(true);
    }
    expect([...files].filter((f) => /^dist\/(cli|pipeline|run|server)\//.test(f))).toEqual([]);
  });

  it("the bin says so when the package was installed without its build", async () => {
    const dir = await mkdtemp(join(tmpdir(), "agentctl-unbuilt-"));
    try {
      await cp(join(ROOT, "bin"), join(dir, "bin"), { recursive: true });
      await cp(join(ROOT, "package.json"), join(dir, "package.json"));
      const r = await execa(process.execPath, [join(dir, "bin", "agentctl.js"), "run", "p.yaml"], {
        reject: false,
      });
      expect(r.exitCode).toBe(1);
      expect(r.stderr).toMatch(/^agentctl: not built \(.*cli-bundle is missing\): run `npm run build` in /);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});
