import { EXIT } from "./exit-codes.js";

type SignalHandler = (signal: NodeJS.Signals) => void;

const SIGNALS = ["SIGINT", "SIGTERM"] as const;

/**
 * What SIGINT and SIGTERM do while no command has taken them over: exit 130 at once (SPEC §6).
 * Without a handler, Node dies by the signal: a parent sees no exit code at all, and a shell
 * sees 143 for SIGTERM.
 */
const exitAtOnce: SignalHandler = () => process.exit(EXIT.interrupted);

let current: SignalHandler | undefined;

/** Makes `handler` the one answer to SIGINT and SIGTERM; without one, they exit 130 at once. */
export function onSignals(handler: SignalHandler = exitAtOnce): void {
  if (current) for (const s of SIGNALS) process.off(s, current);
  current = handler;
  for (const s of SIGNALS) process.on(s, handler);
}
