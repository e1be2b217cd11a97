import { EXIT } from "./exit-codes.js";

type SignalHandler = (signal: NodeJS.Signals) => void;

const SIGNALS = ["SIGINT", "SIGTERM"] as const;

/**
 * What SIGINT and SIGTERM do while no command has taken them over: exit 130 at once (SPEC §6).
 * Without a handler, Node dies by the signal: a parent sees no exit code at all, and a shell
 * sees 143 for SIGTERM.
 */
const exitAtOnce: SignalHandler = () => process.exit(EXIT.interrupted);

let current: SignalHandler = exitAtOnce;
let listening = false;

/**
 * Makes `handler` the one answer to SIGINT and SIGTERM; without one, they exit 130 at once.
 * The process listens once and for good: removing the last listener drops a signal that has
 * arrived but not yet been handled (one sent while a command loads its files, say).
 */
export function onSignals(handler: SignalHandler = exitAtOnce): void {
  current = handler;
  if (listening) return;
  listening = true;
  for (const s of SIGNALS) process.on(s, (signal) => current(signal));
}
