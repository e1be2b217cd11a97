#!/usr/bin/env node
// CommonJS (bin/package.json says so), like the bundle it loads: Node's ES module loader alone
// adds ~10 ms to every start.
"use strict";
const args = process.argv.slice(2);
// `--version` answers without loading the CLI: scripts call it often and it must start fast.
if (args.length === 1 && (args[0] === "--version" || args[0] === "-V")) {
  process.stdout.write(`${require("../package.json").version}\n`);
} else {
  const path = require("node:path");
  const bundle = path.join(__dirname, "..", "dist", "cli-bundle");
  if (!require("node:fs").existsSync(`${bundle}/main.cjs`)) {
    // Installed without its build (`--ignore-scripts`, a clone before `npm ci`): say so.
    const root = path.join(__dirname, "..");
    process.stderr.write(`agentctl: not built (${bundle} is missing): run \`npm run build\` in ${root}\n`);
    process.exit(1);
  }
  // First: a signal while the rest loads exits 130 too, not by the signal (SPEC §6).
  require(`${bundle}/signals.cjs`).onSignals();
  require(`${bundle}/compile-cache.cjs`).installCompileCache(bundle);
  require(`${bundle}/main.cjs`)
    .main(args)
    .then(
      (code) => {
        process.exitCode = code;
      },
      (err) => {
        process.stderr.write(`agentctl: internal error: ${err?.stack ?? err}\n`);
        process.exitCode = 1;
      },
    );
}
