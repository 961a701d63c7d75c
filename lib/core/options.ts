// Option validation helpers shared by every layer (pure). Each throws ERR_INVALID_OPTION naming
// the option, so a caller can tell which of its options was wrong.
import { invalidOption } from './errors.js';

/** Largest delay a Node timer takes (ms); every timeout option is capped by it. */
export const MAX_TIMER = 2 ** 31 - 1;

/** Throws for the first key of `obj` not in `allowed` (named `prefix + key`). */
export function checkKeys(obj: object, allowed: ReadonlySet<string>, prefix = ''): void {
  for (const k of Object.keys(obj)) {
    if (!allowed.has(k)) throw invalidOption(prefix + k, 'unknown option');
  }
}

/** An integer from `min` to `max`; `def` when undefined. */
export function intOpt(v: unknown, name: string, def: number, min: number, max: number): number {
  if (v === undefined) return def;
  return intIn(v, name, min, max);
}

/** An integer from `min` to `max` (required). */
export function intIn(v: unknown, name: string, min: number, max: number): number {
  if (typeof v !== 'number' || !Number.isInteger(v) || v < min || v > max) {
    throw invalidOption(name, `expected an integer from ${min} to ${max}, got ${String(v)}`);
  }
  return v;
}

/** A boolean; `def` when undefined. */
export function boolOpt(v: unknown, name: string, def: boolean): boolean {
  if (v === undefined) return def;
  if (typeof v !== 'boolean') throw invalidOption(name, 'expected a boolean');
  return v;
}

/** An object (not null, not an array is not checked): the usual first test of an options bag. */
export function objectOpt(v: unknown, name: string): void {
  if (v === null || typeof v !== 'object') throw invalidOption(name, 'expected an object');
}
