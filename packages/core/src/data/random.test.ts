import { randomInt } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { createRng, deriveSeed, mix32 } from './random.js';

// An independent reference: the same algorithms written with BigInt and explicit masks, so that a
// slip in the int32 tricks (| 0, >>> 0, Math.imul) of the fast version shows up as a mismatch.
const M32 = 0xffffffffn;
function refMix32(x: bigint): bigint {
  let z = x & M32;
  z ^= z >> 16n;
  z = (z * 0x21f0aaadn) & M32;
  z ^= z >> 15n;
  z = (z * 0x735a2d97n) & M32;
  z ^= z >> 15n;
  return z;
}
function refSfc32Stream(seed: number, count: number): number[] {
  let sm = BigInt(seed) & M32;
  const splitmix = (): bigint => {
    sm = (sm + 0x9e3779b9n) & M32;
    return refMix32(sm);
  };
  let a = splitmix();
  let b = splitmix();
  let c = splitmix();
  let d = 1n;
  const next = (): bigint => {
    const t = (a + b + d) & M32;
    d = (d + 1n) & M32;
    a = b ^ (b >> 9n);
    b = (c + (c << 3n)) & M32;
    c = ((c << 21n) | (c >> 11n)) & M32;
    c = (c + t) & M32;
    return t;
  };
  for (let i = 0; i < 12; i++) next();
  return Array.from({ length: count }, () => Number(next()));
}

const freshSeed = (): number => randomInt(0, 2 ** 32 - 1);

describe('createRng', () => {
  it('matches a BigInt reference of splitmix32-seeded sfc32 on fresh seeds', () => {
    for (const seed of [0, 1, 0xffffffff, freshSeed(), freshSeed(), freshSeed()]) {
      const rng = createRng(seed);
      const got = Array.from({ length: 200 }, () => rng.nextUint32());
      expect(got).toEqual(refSfc32Stream(seed, 200));
    }
  });

  it('matches the reference mix32 on fresh inputs', () => {
    for (let i = 0; i < 200; i++) {
      const x = freshSeed();
      expect(mix32(x)).toBe(Number(refMix32(BigInt(x))));
    }
  });

  it('is deterministic per seed and differs between neighbouring seeds', () => {
    const seed = freshSeed() - 1;
    const a = createRng(seed);
    const b = createRng(seed);
    const c = createRng(seed + 1);
    const sa = Array.from({ length: 50 }, () => a.nextUint32());
    expect(Array.from({ length: 50 }, () => b.nextUint32())).toEqual(sa);
    const sc = Array.from({ length: 50 }, () => c.nextUint32());
    expect(sc.filter((v, i) => v === sa[i]).length).toBeLessThan(2);
  });

  it('takes negative seeds mod 2^32', () => {
    const a = createRng(-1);
    const b = createRng(0xffffffff);
    for (let i = 0; i < 20; i++) expect(a.nextUint32()).toBe(b.nextUint32());
  });

  it.each([1.5, 2 ** 32, -(2 ** 31) - 1, Number.NaN, Number.POSITIVE_INFINITY])('rejects seed %s', (seed) => {
    expect(() => createRng(seed)).toThrow(RangeError);
  });

  it('gives floats in [0, 1) with mean 1/2 and variance 1/12', () => {
    const rng = createRng(freshSeed());
    const n = 200_000;
    let sum = 0;
    let sumSq = 0;
    let outside = 0;
    for (let i = 0; i < n; i++) {
      const x = rng.nextFloat();
      if (!(x >= 0 && x < 1)) outside++;
      sum += x;
      sumSq += x * x;
    }
    expect(outside).toBe(0);
    const mean = sum / n;
    const variance = sumSq / n - mean * mean;
    // Standard error of the mean is 0.29/sqrt(n) = 0.00065; 0.005 is over 7 of them.
    expect(Math.abs(mean - 0.5)).toBeLessThan(0.005);
    expect(Math.abs(variance - 1 / 12)).toBeLessThan(0.003);
  });

  it('gives nextBelow values uniform over [0, bound) (chi-square)', () => {
    const rng = createRng(freshSeed());
    const bound = 7;
    const draws = 70_000;
    const counts = new Array<number>(bound).fill(0);
    for (let i = 0; i < draws; i++) counts[rng.nextBelow(bound)]++;
    // Any value outside [0, bound) would have grown the array.
    expect(counts.length).toBe(bound);
    expect(counts.reduce((a, b) => a + b, 0)).toBe(draws);
    const expected = draws / bound;
    const chi2 = counts.reduce((s, c) => s + (c - expected) ** 2 / expected, 0);
    // 6 degrees of freedom: P(chi2 > 40) is about 5e-7.
    expect(chi2).toBeLessThan(40);
  });

  it('handles the extreme bounds of nextBelow and rejects bad ones', () => {
    const seed = freshSeed();
    const a = createRng(seed);
    const b = createRng(seed);
    for (let i = 0; i < 20; i++) expect(a.nextBelow(2 ** 32)).toBe(b.nextUint32());
    for (let i = 0; i < 20; i++) expect(a.nextBelow(1)).toBe(0);
    for (let i = 0; i < 200; i++) expect(a.nextBelow(2 ** 31 + 1)).toBeLessThan(2 ** 31 + 1);
    for (const bad of [0, -1, 2.5, 2 ** 32 + 1, Number.NaN]) expect(() => a.nextBelow(bad)).toThrow(RangeError);
  });
});

describe('deriveSeed', () => {
  it('gives every stream of a seed its own 32-bit seed', () => {
    const seed = freshSeed();
    const derived = Array.from({ length: 5000 }, (_, e) => deriveSeed(seed, e));
    expect(new Set(derived).size).toBe(5000);
    for (const d of derived) expect(Number.isInteger(d) && d >= 0 && d <= 0xffffffff).toBe(true);
    expect(deriveSeed(seed, 3)).toBe(derived[3]);
  });

  it('differs between seeds for the same stream', () => {
    const seed = freshSeed() - 1;
    expect(deriveSeed(seed, 0)).not.toBe(deriveSeed(seed + 1, 0));
  });

  it('rejects non-32-bit arguments', () => {
    expect(() => deriveSeed(0.5, 0)).toThrow(RangeError);
    expect(() => deriveSeed(0, 2 ** 32)).toThrow(/stream must be a 32-bit integer/);
  });
});
