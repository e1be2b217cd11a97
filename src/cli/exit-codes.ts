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
