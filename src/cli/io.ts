import { once } from "node:events";
import { Chalk, type ChalkInstance } from "chalk";

/** Where a command writes: stdout for results only, stderr for everything else. */
export interface Io {
  out(text: string): void;
  /** Writes pieces to stdout as the pipe takes them (backpressure), so memory stays flat. */
  outChunks(chunks: Iterable<string>): Promise<void>;
  err(text: string): void;
  color: ChalkInstance;
  /** Whether stderr is an interactive terminal (spinners only then). */
  interactive: boolean;
  columns: number;
}

const OUT_BATCH = 64 * 1024;

/**
 * Whether stderr can show a spinner. CI logs (`CI` set) and `TERM=dumb` keep every frame, so
 * they get none, as ora itself decides (ora would otherwise print "- starting" lines there).
 * A terminal 0 columns wide (a pty opened without a size, as `script` or `ssh -tt` may make)
 * gets none either: ora divides by the width and would loop forever.
 */
function spinnerTerminal(env: NodeJS.ProcessEnv): boolean {
  return (
    Boolean(process.stderr.isTTY) && process.stderr.columns > 0 && env.CI === undefined && env.TERM !== "dumb"
  );
}

/** Colours follow --no-color, then NO_COLOR, then FORCE_COLOR, then whether stdout is a TTY. */
export function createIo(noColor = false): Io {
  const env = process.env;
  let level: 0 | 1 | 2 | 3;
  if (noColor || (env.NO_COLOR !== undefined && env.NO_COLOR !== "")) level = 0;
  else if (env.FORCE_COLOR !== undefined)
    level = env.FORCE_COLOR === "0" || env.FORCE_COLOR === "false" ? 0 : 1;
  else level = process.stdout.isTTY ? 1 : 0;
  return {
    out: (text) => process.stdout.write(text.endsWith("\n") ? text : `${text}\n`),
    outChunks: async (chunks) => {
      // Pieces are joined up to 64 KiB per write: a pipe write is a system call, and a
      // 100,000-item fan-out would otherwise make 100,000 of them.
      let batch = "";
      for (const chunk of chunks) {
        batch += chunk;
        if (batch.length < OUT_BATCH) continue;
        const ok = process.stdout.write(batch);
        batch = "";
        if (!ok) await once(process.stdout, "drain");
      }
      if (batch !== "" && !process.stdout.write(batch)) await once(process.stdout, "drain");
    },
    err: (text) => process.stderr.write(text.endsWith("\n") ? text : `${text}\n`),
    color: new Chalk({ level }),
    interactive: spinnerTerminal(env),
    columns: process.stdout.columns || Number(env.COLUMNS) || 120,
  };
}
