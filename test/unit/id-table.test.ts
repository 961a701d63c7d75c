import { describe, expect, it } from 'vitest';
import { IdTable } from '../../lib/core/id-table.js';

// A seeded generator, so a failure reproduces.
function rng(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (s * 1664525 + 1013904223) >>> 0;
    return s / 2 ** 32;
  };
}

describe('IdTable', () => {
  it('agrees with a Map under random set/get/delete, across growth and wrap-around probe runs', () => {
    for (const seed of [1, 2, 3, 42, 1234]) {
      const r = rng(seed);
      const t = new IdTable<number>(16);
      const m = new Map<number, number>();
      // Ids clustered in a small range (collisions and long runs), plus sequential ones as the
      // dispatcher hands out, plus ids near the top of the range.
      const pick = (): number => {
        const x = r();
        if (x < 0.4) return 1 + Math.floor(r() * 200);
        if (x < 0.8) return 1 + ((Math.floor(r() * 64) * 16) % 0x7fffffff); // same low bits
        return 0x7fffffff - Math.floor(r() * 50);
      };
      for (let i = 0; i < 20_000; i++) {
        const id = pick();
        const op = r();
        if (op < 0.45) {
          t.set(id, i);
          m.set(id, i);
        } else if (op < 0.9) {
          expect(t.delete(id)).toBe(m.delete(id));
        } else {
          expect(t.get(id)).toBe(m.get(id));
        }
        expect(t.size).toBe(m.size);
      }
      for (const [id, v] of m) expect(t.get(id)).toBe(v);
      let n = 0;
      t.forEach((v, id) => {
        expect(m.get(id)).toBe(v);
        n++;
      });
      expect(n).toBe(m.size);
      for (const id of [...m.keys()]) expect(t.delete(id)).toBe(true);
      expect(t.size).toBe(0);
      for (let id = 1; id <= 300; id++) expect(t.get(id)).toBeUndefined();
    }
  });

  it('holds nothing in a deleted slot and does not grow under churn at a steady count', () => {
    const t = new IdTable<object>(64);
    for (let id = 1; id <= 50; id++) t.set(id, {});
    for (let id = 51; id <= 200_000; id++) {
      t.set(id, {});
      t.delete(id - 50);
    }
    expect(t.size).toBe(50);
    expect(t.capacity).toBe(128);
  });

  it('grows to hold many entries and rejects ids outside 1..2^31-1', () => {
    const t = new IdTable<number>();
    for (let id = 1; id <= 5000; id++) t.set(id, id * 2);
    expect(t.size).toBe(5000);
    expect(t.capacity).toBeGreaterThanOrEqual(10_000);
    for (let id = 1; id <= 5000; id++) expect(t.get(id)).toBe(id * 2);
    expect(() => t.set(0, 1)).toThrow(RangeError);
    expect(() => t.set(-1, 1)).toThrow(RangeError);
    expect(() => t.set(2 ** 31, 1)).toThrow(RangeError);
    expect(() => t.set(1.5, 1)).toThrow(RangeError);
  });
});
