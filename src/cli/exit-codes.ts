import { AgentctlError } from "../errors.js";

/** Exit codes of SPEC §6, named. */
export const EXIT = {
  ok: 0,
  failed: 1,
  usage: 2,
  interrupted: 130,
} as const;

/** A usage, file or validation problem found before anything was called: exit 2. */
export class UsageError extends Error {
  override readonly name = "UsageError";
}

/**
 * Runs `work`, turning a configuration problem it finds before any call (an unresolvable
 * expression or an invalid setting: codes `template` and `invalid`) into a UsageError.
 */
export async function usageOnConfigError<T>(work: () => T | Promise<T>): Promise<T> {
  try {
    return await work();
  } catch (err) {
    if (err instanceof AgentctlError && (err.code === "template" || err.code === "invalid")) {
      throw new UsageError(err.message);
    }
    throw err;
  }
}
