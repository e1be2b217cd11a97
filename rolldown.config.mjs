// The CLI is shipped as one bundle (with a chunk per lazily loaded command): loading a few
// large files instead of hundreds of small ones is what lets `agentctl --version` and
// `validate` start almost as fast as `node -e 0`. The library keeps tsc's dist/ as it is.
import { rmSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { defineConfig } from "rolldown";

const out = fileURLToPath(new URL("dist/cli-bundle", import.meta.url));
// Chunk names carry content hashes: without this, every build would leave the last one's behind.
rmSync(out, { recursive: true, force: true });

export default defineConfig({
  input: "dist/cli/main.js",
  platform: "node",
  // etcd3 loads its .proto files relative to its own package: it must stay a real dependency.
  external: ["etcd3"],
  resolve: {
    // yaml's ES module build (the same code as its CommonJS one for Node) can be tree-shaken and
    // needs no CommonJS wrapper: less to compile at every start.
    alias: { yaml: fileURLToPath(new URL("node_modules/yaml/browser/index.js", import.meta.url)) },
  },
  output: { dir: out, format: "esm", chunkFileNames: "[name]-[hash].js" },
});
