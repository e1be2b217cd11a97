import { InvalidArgumentError } from "commander";
import { parseDuration } from "../pipeline/duration.js";

/** Commander argument parsers: a bad value is a usage error (exit 2) naming the flag. */
export function durationArg(value: string): number {
  const ms = parseDuration(value);
  if (ms === undefined)
    throw new InvalidArgumentError(`expected a duration like 250ms, 30s, 5m, got "${value}"`);
  return ms;
}

export function positiveIntArg(value: string): number {
  const n = Number(value);
  if (!/^\d+$/.test(value) || n < 1)
    throw new InvalidArgumentError(`expected a positive integer, got "${value}"`);
  return n;
}

export function nonNegativeIntArg(value: string): number {
  const n = Number(value);
  if (!/^\d+$/.test(value)) throw new InvalidArgumentError(`expected an integer ≥ 0, got "${value}"`);
  return n;
}

export function fractionArg(value: string): number {
  const n = Number(value);
  // Decimal only: Number() would also take "0x1" or "0b1".
  if (!/^\s*(\d+\.?\d*|\.\d+)\s*$/.test(value) || n > 1) {
    throw new InvalidArgumentError(`expected a fraction from 0 to 1, got "${value}"`);
  }
  return n;
}

export function portArg(value: string): number {
  const n = Number(value);
  if (!/^\d+$/.test(value) || n > 65535)
    throw new InvalidArgumentError(`expected a port from 0 to 65535, got "${value}"`);
  return n;
}

export function outputArg(value: string): "table" | "json" {
  if (value !== "table" && value !== "json")
    throw new InvalidArgumentError(`expected table or json, got "${value}"`);
  return value;
}

/** Collects repeated `--var K=V` flags. */
export function varArg(value: string, previous: Record<string, string> = {}): Record<string, string> {
  const eq = value.indexOf("=");
  if (eq <= 0) throw new InvalidArgumentError(`expected K=V, got "${value}"`);
  return { ...previous, [value.slice(0, eq)]: value.slice(eq + 1) };
}
