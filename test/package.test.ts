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
