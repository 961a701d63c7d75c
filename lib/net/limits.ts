// File-descriptor limits (RLIMIT_NOFILE) through the addon, and the socket budget derived from them.
import { invalidOption, UvfetchError } from '../core/errors.js';
import { binding } from '../native/binding.js';

/** RLIMIT_NOFILE of this process. `Infinity` means unlimited. */
export interface FdLimit {
  soft: number;
  hard: number;
}

// Used when the hard limit is "unlimited" and no target is given (Linux's default nr_open).
const UNLIMITED_TARGET = 1_048_576;

function checkTarget(n: unknown, name: string): number {
  if (typeof n !== 'number' || !Number.isInteger(n) || n < 1 || n > 2 ** 31 - 1) {
    throw invalidOption(name, `expected an integer from 1 to ${2 ** 31 - 1}`);
  }
  return n;
}

function wrap<T>(fn: () => T): T {
  try {
    return fn();
  } catch (err) {
    const e = err as Error & { code?: string; errno?: number };
    if (e.code === 'ERR_FD_LIMIT') {
      throw new UvfetchError('ERR_FD_LIMIT', e.message, { cause: err });
    }
    throw err;
  }
}

/** File-descriptor controls: read and raise RLIMIT_NOFILE, count open descriptors. */
export const limits = {
  /** The current soft and hard limits. */
  getFdLimit(): FdLimit {
    return wrap(() => binding.getFdLimit());
  },

  /**
   * Raises the soft limit to `n` (default: the hard limit) and returns the new soft limit. Never
   * lowers it: if `n` is at or below the current soft limit nothing changes. Going above the hard
   * limit needs privilege; when it is refused this throws ERR_FD_LIMIT.
   */
  raiseFdLimit(n?: number): number {
    const cur = this.getFdLimit();
    const target = n === undefined ? (Number.isFinite(cur.hard) ? cur.hard : UNLIMITED_TARGET) : checkTarget(n, 'n');
    if (target <= cur.soft) return cur.soft;
    return wrap(() => binding.setFdSoftLimit(target));
  },

  /** Sets the soft limit to exactly `n` (may lower it). Returns the new soft limit. */
  setFdLimit(n: number): number {
    return wrap(() => binding.setFdSoftLimit(checkTarget(n, 'n')));
  },

  /**
   * Descriptors this process has open now (all kinds, not only uvfetch's); null when they cannot
   * be counted (reading /proc/self/fd itself needs a descriptor, and none may be free).
   */
  openFds(): number | null {
    const n = binding.openFds();
    return n < 0 ? null : n;
  },
};

/**
 * The socket budget `connections: 'auto'` derives: the soft limit less a reserve for everything
 * else the process opens (`fdReserve`, default the larger of 64 and 10% of the limit).
 */
export function autoConnections(fdReserve?: number): number {
  const { soft } = limits.getFdLimit();
  const limit = Number.isFinite(soft) ? soft : UNLIMITED_TARGET;
  const reserve = fdReserve ?? Math.max(64, Math.ceil(limit * 0.1));
  return Math.max(1, Math.min(1_000_000, limit - reserve));
}
