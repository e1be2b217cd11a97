import { AgentctlError, isAgentctlError } from "../errors.js";

export type CircuitState = "closed" | "open" | "half-open";

export interface CircuitBreakerConfig {
  /** Consecutive failures that open the circuit; 0 or absent = 5. */
  maxFailures?: number;
  /** Milliseconds the circuit stays open before letting one probe through; 0 or absent = 30 s. */
  timeout?: number;
  onStateChange?: (from: CircuitState, to: CircuitState) => void;
  /** Which errors count as a failure of the protected thing. Default: see `countsAsFailure`. */
  isFailure?: (err: unknown) => boolean;
  /** Clock, for tests. */
  now?: () => number;
}

export const DEFAULT_MAX_FAILURES = 5;
export const DEFAULT_OPEN_MS = 30_000;

/**
 * Failures that say something about the instance: our own classified errors decide
 * (`countsAgainstInstance`); a caller's cancellation says nothing; anything else counts.
 */
export function countsAsFailure(err: unknown): boolean {
  if (isAgentctlError(err)) return err.countsAgainstInstance;
  return true;
}

/**
 * A call that never reached the instance, or whose end it did not decide: cancelled by the
 * caller, or refused before sending (`invalid`: a header undici rejects, a closed client).
 */
function saysNothing(err: unknown): boolean {
  return isAgentctlError(err) && (err.code === "cancelled" || err.code === "invalid");
}

/**
 * A consecutive-failure circuit breaker. Closed: calls pass, failures are counted. Open: calls
 * fail fast with `circuit_open`. Half-open (after `timeout`): exactly one probe passes; others
 * are rejected until the probe settles — its success closes the circuit, its failure reopens it.
 */
export class CircuitBreaker {
  readonly maxFailures: number;
  readonly openMs: number;
  private readonly onStateChange: ((from: CircuitState, to: CircuitState) => void) | undefined;
  private readonly isFailure: (err: unknown) => boolean;
  private readonly now: () => number;
  private current: CircuitState = "closed";
  private consecutiveFailures = 0;
  private openedAt = 0;
  private probeInFlight = false;

  constructor(config: CircuitBreakerConfig = {}) {
    this.maxFailures =
      config.maxFailures && config.maxFailures > 0 ? config.maxFailures : DEFAULT_MAX_FAILURES;
    this.openMs = config.timeout && config.timeout > 0 ? config.timeout : DEFAULT_OPEN_MS;
    this.onStateChange = config.onStateChange;
    this.isFailure = config.isFailure ?? countsAsFailure;
    this.now = config.now ?? Date.now;
  }

  /** The state now; an open circuit whose time is up reads as half-open. */
  get state(): CircuitState {
    if (this.current === "open" && this.now() - this.openedAt >= this.openMs) {
      this.transition("half-open");
    }
    return this.current;
  }

  get failures(): number {
    return this.consecutiveFailures;
  }

  /** Whether a call made now would be let through (closed, or half-open with no probe out). */
  get callable(): boolean {
    const s = this.state;
    return s === "closed" || (s === "half-open" && !this.probeInFlight);
  }

  async execute<T>(fn: () => Promise<T>): Promise<T> {
    const probe = this.admit();
    try {
      const value = await fn();
      this.recordSuccess(probe);
      return value;
    } catch (err) {
      this.recordFailure(probe, err);
      throw err;
    }
  }

  reset(): void {
    this.consecutiveFailures = 0;
    this.probeInFlight = false;
    this.transition("closed");
  }

  /**
   * The parts of {@link execute}, for a caller that cannot spare a closure per call: admits one
   * call, returning whether it is the half-open probe (throws `circuit_open` when not allowed).
   * Its end must then be reported, once, with {@link recordSuccess} or {@link recordFailure}.
   */
  admit(): boolean {
    const s = this.state;
    if (s === "closed") return false;
    if (s === "half-open" && !this.probeInFlight) {
      this.probeInFlight = true;
      return true;
    }
    throw new AgentctlError(
      "circuit_open",
      s === "open" ? "circuit breaker is open" : "circuit breaker is half-open and its probe is in flight",
    );
  }

  recordSuccess(probe: boolean): void {
    if (probe) this.probeInFlight = false;
    this.consecutiveFailures = 0;
    if (this.current !== "closed") this.transition("closed");
  }

  recordFailure(probe: boolean, err: unknown): void {
    if (saysNothing(err)) {
      // Neither a failure nor a success of the instance: the count stays, a probe's slot is
      // given back (a probe that was never sent must not close the circuit).
      if (probe) this.probeInFlight = false;
      return;
    }
    if (!this.isFailure(err)) {
      this.recordSuccess(probe);
      return;
    }
    if (probe) this.probeInFlight = false;
    this.consecutiveFailures++;
    if (probe || (this.current === "closed" && this.consecutiveFailures >= this.maxFailures)) {
      this.openedAt = this.now();
      this.transition("open");
    }
  }

  private transition(to: CircuitState): void {
    const from = this.current;
    if (from === to) return;
    this.current = to;
    this.onStateChange?.(from, to);
  }
}
