/**
 * A table of in-flight entries keyed by positive 31-bit integer ids (request ids, which are
 * handed out in sequence), for the per-request hot path.
 *
 * Why not a Map: a Map with constant insert/delete churn rehashes into a new backing table every
 * few dozen requests, and V8 leaves a link from each obsolete table to its successor (for live
 * iterators) together with its old entries. Once one such table is promoted to the old
 * generation and dies there, every younger table, and each request object it still lists (with
 * its promise and Response), is reachable from it until the next full collection: a chain of
 * garbage that each young-generation collection copies and promotes ("nepotism"). Measured on
 * small-c50: 0.5-2 MB surviving each scavenge instead of ~30 KB, and 15% fewer requests/s.
 *
 * This table is open addressing with linear probing and backward-shift deletion: it allocates
 * only when it grows (to twice the peak number of entries, rounded up to a power of two), never
 * on set or delete, and a deleted slot holds nothing.
 */
export class IdTable<T> {
  #keys: Int32Array;
  #values: (T | undefined)[];
  #mask: number;
  #size = 0;

  constructor(capacity = 64) {
    let cap = 16;
    while (cap < capacity) cap *= 2;
    this.#keys = new Int32Array(cap);
    this.#values = new Array<T | undefined>(cap).fill(undefined);
    this.#mask = cap - 1;
  }

  get size(): number {
    return this.#size;
  }

  /** Slots allocated (a power of two; it only grows). */
  get capacity(): number {
    return this.#mask + 1;
  }

  get(id: number): T | undefined {
    const keys = this.#keys;
    const mask = this.#mask;
    for (let i = id & mask; ; i = (i + 1) & mask) {
      const k = keys[i]!;
      if (k === id) return this.#values[i];
      if (k === 0) return undefined;
    }
  }

  /** Adds or replaces; `id` must be an integer from 1 to 2^31 - 1. */
  set(id: number, value: T): void {
    if (!(id > 0 && id <= 0x7fffffff && Number.isInteger(id))) throw new RangeError(`IdTable: id out of range: ${id}`);
    if ((this.#size + 1) * 2 > this.#mask + 1) this.#grow();
    const keys = this.#keys;
    const mask = this.#mask;
    for (let i = id & mask; ; i = (i + 1) & mask) {
      const k = keys[i]!;
      if (k === id) {
        this.#values[i] = value;
        return;
      }
      if (k === 0) {
        keys[i] = id;
        this.#values[i] = value;
        this.#size++;
        return;
      }
    }
  }

  delete(id: number): boolean {
    const keys = this.#keys;
    const values = this.#values;
    const mask = this.#mask;
    let i = id & mask;
    for (; ; i = (i + 1) & mask) {
      const k = keys[i]!;
      if (k === id) break;
      if (k === 0) return false;
    }
    // Backward shift: move later members of the probe run into the hole when their home slot
    // does not lie (cyclically) after the hole, so every lookup still finds them.
    let hole = i;
    for (let j = (hole + 1) & mask; ; j = (j + 1) & mask) {
      const k = keys[j]!;
      if (k === 0) break;
      const home = k & mask;
      const distHole = (hole - home) & mask;
      const distJ = (j - home) & mask;
      if (distHole < distJ) {
        keys[hole] = k;
        values[hole] = values[j];
        hole = j;
      }
    }
    keys[hole] = 0;
    values[hole] = undefined;
    this.#size--;
    return true;
  }

  /** Calls `fn` for every entry (order unspecified); `fn` must not add entries. */
  forEach(fn: (value: T, id: number) => void): void {
    const keys = this.#keys;
    const values = this.#values;
    const snapshot: [number, T][] = [];
    for (let i = 0; i < keys.length; i++) if (keys[i] !== 0) snapshot.push([keys[i]!, values[i]!]);
    for (const [id, v] of snapshot) fn(v, id);
  }

  #grow(): void {
    const oldKeys = this.#keys;
    const oldValues = this.#values;
    const cap = (this.#mask + 1) * 2;
    this.#keys = new Int32Array(cap);
    this.#values = new Array<T | undefined>(cap).fill(undefined);
    this.#mask = cap - 1;
    this.#size = 0;
    for (let i = 0; i < oldKeys.length; i++) if (oldKeys[i] !== 0) this.set(oldKeys[i]!, oldValues[i]!);
  }
}
