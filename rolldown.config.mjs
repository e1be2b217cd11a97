// The CLI is shipped as one bundle (with a chunk per lazily loaded command): loading a few
// large files instead of hundreds of small ones is what lets `agentctl --version` and
// `validate` start almost as fast as `node -e 0`. It is CommonJS because only CommonJS can be
// compiled with a V8 code cache on Node 20 (src/cli/compile-cache.ts). The library keeps tsc's
// dist/ as it is.
import { rmSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { defineConfig } from "rolldown";

const out = fileURLToPath(new URL("dist/cli-bundle", import.meta.url));
// Chunk names carry content hashes: without this, every build would leave the last one's behind.
rmSync(out, { recursive: true, force: true });

/**
 * commander requires node:child_process at load time (5 ms: it pulls in net and dgram) only to
 * spawn executable subcommands, which agentctl has none of: require it when first used instead.
 */
const lazyChildProcess = {
  name: "lazy-child-process",
  transform(code, id) {
    if (!id.endsWith("/commander/lib/command.js")) return null;
    const eager = "const childProcess = require('node:child_process');";
    if (!code.includes(eager))
      throw new Error("commander changed: update lazy-child-process in rolldown.config.mjs");
    return code.replace(
      eager,
      "const childProcess = { spawn: (...a) => require('node:child_process').spawn(...a) };",
    );
  },
};

/** The bundle runs where import() throws (src/cli/compile-cache.ts): fail the build instead. */
const noDynamicImport = {
  name: "no-dynamic-import",
  renderChunk(code, chunk) {
    if (/\bimport\(/.test(code)) throw new Error(`${chunk.fileName} has an import(): use require`);
    return null;
  },
};

export default defineConfig({
  input: {
    main: "dist/cli/main.js",
    "compile-cache": "dist/cli/compile-cache.js",
    // Its own entry: the bin takes signals over before it loads anything else.
    signals: "dist/cli/signals.js",
  },
  platform: "node",
  // etcd3 loads its .proto files relative to its own package: it must stay a real dependency.
  external: ["etcd3"],
  resolve: {
    // yaml's ES module build (the same code as its CommonJS one for Node) can be tree-shaken and
    // needs no CommonJS wrapper: less to compile at every start.
    alias: { yaml: fileURLToPath(new URL("node_modules/yaml/browser/index.js", import.meta.url)) },
  },
  plugins: [lazyChildProcess, noDynamicImport],
  output: {
    dir: out,
    // Fewer bytes to read and hash at every start; the commented source is in dist/ and src/.
    comments: { legal: true, annotation: false, jsdoc: false },
    format: "cjs",
    entryFileNames: "[name].cjs",
    chunkFileNames: "[name]-[hash].cjs",
  },
});
