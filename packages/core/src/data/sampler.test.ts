import { randomInt } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { epochPermutation, globalBatch, stepsPerEpoch } from './sampler.js';

const freshSeed = (): number => randomInt(0, 2 ** 32 - 1);

function isPermutation(perm: Uint32Array, n: number): boolean {
  if (perm.length !== n) return false;
  const seen = new Uint8Array(n);
  for (const v of perm) {
    if (v >= n || seen[v]) return false;
    seen[v] = 1;
  }
  return true;
}

describe('epochPermutation', () => {
  it('is the same for the same seed and epoch', () => {
    const seed = freshSeed();
    expect(epochPermutation(seed, 3, 1000)).toEqual(epochPermutation(seed, 3, 1000));
  });

  it('differs between epochs and between seeds', () => {
    const seed = freshSeed() - 1;
    const p0 = epochPermutation(seed, 0, 1000);
    const p1 = epochPermutation(seed, 1, 1000);
    const q0 = epochPermutation(seed + 1, 0, 1000);
    // Two independent permutations of 1000 agree in about one place on average.
    const agree = (a: Uint32Array, b: Uint32Array): number => a.filter((v, i) => v === b[i]).length;
    expect(agree(p0, p1)).toBeLessThan(20);
    expect(agree(p0, q0)).toBeLessThan(20);
  });

  it('visits every index exactly once per epoch', () => {
    const seed = freshSeed();
    for (const n of [0, 1, 2, 17, 60000]) {
      for (const epoch of [0, 1, 4]) expect(isPermutation(epochPermutation(seed, epoch, n), n)).toBe(true);
    }
  });

  it('shuffles: each position is uniform over the indices (chi-square over many seeds)', () => {
    const n = 5;
    const trials = 20_000;
    const counts = Array.from({ length: n }, () => new Array<number>(n).fill(0));
    const base = freshSeed() >>> 1;
    for (let t = 0; t < trials; t++) {
      const perm = epochPermutation(base, t, n);
      for (let pos = 0; pos < n; pos++) counts[pos][perm[pos]]++;
    }
    const expected = trials / n;
    for (let pos = 0; pos < n; pos++) {
      const chi2 = counts[pos].reduce((s, c) => s + (c - expected) ** 2 / expected, 0);
      // 4 degrees of freedom: P(chi2 > 35) is about 5e-7.
      expect(chi2).toBeLessThan(35);
    }
  });

  it('rejects bad arguments', () => {
    expect(() => epochPermutation(1, -1, 10)).toThrow(/epoch must be an integer/);
    expect(() => epochPermutation(1, 0, 2.5)).toThrow(/n must be an integer/);
    expect(() => epochPermutation(0.5, 0, 10)).toThrow(RangeError);
  });
});

describe('stepsPerEpoch and globalBatch', () => {
  it('counts the last partial batch', () => {
    expect(stepsPerEpoch(60000, 64)).toBe(938);
    expect(stepsPerEpoch(128, 64)).toBe(2);
    expect(stepsPerEpoch(0, 64)).toBe(0);
    expect(stepsPerEpoch(5, 64)).toBe(1);
  });

  it('cuts the permutation into consecutive batches, the last one partial', () => {
    const n = 1000 + randomInt(0, 1000);
    const batchSize = 1 + randomInt(0, 100);
    const perm = epochPermutation(freshSeed(), 0, n);
    const steps = stepsPerEpoch(n, batchSize);
    expect(steps).toBe(Math.ceil(n / batchSize));
    const joined: number[] = [];
    for (let s = 0; s < steps; s++) {
      const batch = globalBatch(perm, s, batchSize);
      expect(batch.length).toBe(s < steps - 1 ? batchSize : n - (steps - 1) * batchSize);
      joined.push(...batch);
    }
    expect(Uint32Array.from(joined)).toEqual(perm);
  });

  it('returns a view into the permutation', () => {
    const perm = epochPermutation(7, 0, 10);
    const batch = globalBatch(perm, 1, 4);
    expect(batch.buffer).toBe(perm.buffer);
    expect([...batch]).toEqual([...perm.subarray(4, 8)]);
    expect([...globalBatch(perm, 2, 4)]).toEqual([...perm.subarray(8, 10)]);
  });

  it('rejects steps outside the epoch and bad batch sizes', () => {
    const perm = epochPermutation(7, 0, 10);
    expect(() => globalBatch(perm, 3, 4)).toThrow(/stepInEpoch must be an integer in \[0, 2\].*got 3/);
    expect(() => globalBatch(perm, -1, 4)).toThrow(RangeError);
    expect(() => globalBatch(perm, 0, 0)).toThrow(/batchSize/);
    expect(() => stepsPerEpoch(10, 0)).toThrow(/batchSize/);
    expect(() => stepsPerEpoch(-1, 4)).toThrow(/n must be/);
  });
});
