import { mkdirSync, statSync } from "node:fs";
import { dirname, resolve } from "node:path";

/**
 * `mkdir -p`, one level at a time. Node's own `mkdirSync(path, { recursive: true })` never
 * returns for a path under /proc (procfs answers ENOENT for a child of a directory that exists,
 * and Node's C++ loop goes back and forth between the two, deaf to signals); here that ENOENT
 * is the error, as `mkdir -p` reports it.
 */
export function makeDirSync(path: string, mode?: number): void {
  const missing: string[] = [];
  for (let dir = resolve(path); ; ) {
    try {
      // An existing file where a directory should be: mkdir says EEXIST, as Node's would.
      if (!statSync(dir).isDirectory()) mkdirSync(dir);
      break;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== "ENOENT") throw err;
    }
    missing.push(dir);
    const parent = dirname(dir);
    if (parent === dir) break;
    dir = parent;
  }
  for (const dir of missing.reverse()) {
    try {
      mkdirSync(dir, { mode });
    } catch (err) {
      // Made meanwhile by someone else (two runs starting at once): as good as made here.
      if ((err as NodeJS.ErrnoException).code !== "EEXIST" || !statSync(dir).isDirectory()) throw err;
    }
  }
}
