import { defineConfig } from "vitest/config";

export default defineConfig({
  test: {
    include: ["test/**/*.test.ts"],
    // Real servers and child processes: generous limits, and at most two files at once on 2 cores.
    testTimeout: 30_000,
    hookTimeout: 30_000,
    maxWorkers: 2,
    // The JSON report lets .ci/run print a plain "N passed, N failed" line.
    reporters: ["default", ["json", { outputFile: ".test-results.json" }]],
  },
});
