import { monitorEventLoopDelay, type IntervalHistogram } from 'node:perf_hooks';

/**
 * Completions per 100 ms slot over the last 10 s, for requests/s over 1 s and 10 s windows.
 * Costs one array write per completion and nothing when idle.
 */
export class RateWindow {
  static readonly SLOT_MS = 100;
  static readonly SLOTS = 100;
  readonly #counts = new Float64Array(RateWindow.SLOTS);
  #slot = -1; // absolute slot index of #counts' newest entry

  #advance(now: number): void {
    const slot = Math.floor(now / RateWindow.SLOT_MS);
    if (this.#slot === -1) {
      this.#slot = slot;
      return;
    }
    const gap = Math.min(slot - this.#slot, RateWindow.SLOTS);
    for (let i = 1; i <= gap; i++) this.#counts[(this.#slot + i) % RateWindow.SLOTS] = 0;
    if (slot > this.#slot) this.#slot = slot;
  }

  add(now = Date.now()): void {
    this.#advance(now);
    this.#counts[this.#slot % RateWindow.SLOTS]! += 1;
  }

  /** Completions per second over the last `seconds` (1 to 10), not counting the current slot. */
  perSecond(seconds: number, now = Date.now()): number {
    this.#advance(now);
    if (this.#slot === -1) return 0;
    const slots = Math.min(RateWindow.SLOTS - 1, Math.round((seconds * 1000) / RateWindow.SLOT_MS));
    let sum = 0;
    for (let i = 1; i <= slots; i++) sum += this.#counts[(this.#slot - i + RateWindow.SLOTS) % RateWindow.SLOTS]!;
    return sum / seconds;
  }
}

let loopDelay: IntervalHistogram | undefined;
let loopDelayUsers = 0;

/** Shared event-loop delay monitor, started on first use and stopped when no session needs it. */
export function acquireLoopDelay(): IntervalHistogram {
  if (loopDelay === undefined) {
    loopDelay = monitorEventLoopDelay({ resolution: 10 });
    loopDelay.enable();
  }
  loopDelayUsers++;
  return loopDelay;
}

export function releaseLoopDelay(): void {
  if (--loopDelayUsers === 0 && loopDelay !== undefined) {
    loopDelay.disable();
    loopDelay = undefined;
  }
}
