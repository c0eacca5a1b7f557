import { describe, expect, it } from 'vitest';
import { createRng } from '../../data/random.js';
import { bitLength, isMultipleOfUnit, pow2, roundScaled, toScaled } from './float-bits.js';
import { exactSumReferenceBits, float32Bits } from './reference.js';
import { anyExponent } from './sample-data.js';

describe('float-bits', () => {
  it('pow2 is 2^k exactly, 0 below 2^-1074 and Infinity above 2^1023', () => {
    let p = 1;
    for (let k = 0; k <= 1023; k++, p *= 2) expect(pow2(k)).toBe(p);
    p = 1;
    for (let k = 0; k >= -1074; k--, p /= 2) expect(pow2(k)).toBe(p);
    expect(pow2(1024)).toBe(Infinity);
    expect(pow2(-1075)).toBe(0);
  });

  it('bitLength', () => {
    expect(bitLength(1n)).toBe(1);
    expect(bitLength(15n)).toBe(4);
    expect(bitLength(16n)).toBe(5);
    expect(bitLength((1n << 300n) - 1n)).toBe(300);
    expect(bitLength(1n << 300n)).toBe(301);
  });

  it('toScaled and roundScaled(·, 24) round-trip every kind of float32', () => {
    const rng = createRng(5);
    for (const x of [...anyExponent(rng, 20000), 0, 2 ** -149, 3.4028234663852886e38, -(2 ** -126)]) {
      const t = toScaled(x);
      expect(Math.fround(roundScaled(t, 24))).toBe(x === 0 ? 0 : x);
      expect(roundScaled(t, 53)).toBe(x === 0 ? 0 : x);
    }
    expect(toScaled(2 ** -149)).toBe(1n);
    expect(toScaled(-1)).toBe(-(1n << 149n));
    expect(toScaled(-0)).toBe(0n);
  });

  it('toScaled refuses values finer than 2^-149, and isMultipleOfUnit says which are', () => {
    for (const v of [2 ** -150, 3 * 2 ** -151, 2 ** -1074, 1e-300]) {
      expect(isMultipleOfUnit(v)).toBe(false);
      expect(() => toScaled(v)).toThrow(RangeError);
    }
    for (const v of [2 ** -149, 2 ** -97 + 2 ** -149, 1 + 2 ** -52, 2 ** 1000]) expect(isMultipleOfUnit(v)).toBe(true);
  });

  it('roundScaled(·, 24) is the IEEE float32 rounding (ties to even, overflow) of the bigint reference', () => {
    const rng = createRng(9);
    let overflows = 0;
    for (let trial = 0; trial < 3000; trial++) {
      // a random 24-bit q at a random position, plus a tie, a near-tie or random low bits
      // up to 2^128: every 50th trial at float32 max's binade, with its overflow tie
      const shift = trial % 50 === 0 ? 253 : 1 + rng.nextBelow(253);
      const q = trial % 50 === 0 ? 0xffffffn : BigInt(rng.nextBelow(1 << 24) | (1 << 23));
      const half = 1n << BigInt(shift - 1);
      const low = [half, half - 1n, half + 1n, 0n, BigInt(rng.nextUint32()) % (half * 2n)][trial % 5]!;
      const t = ((q << BigInt(shift)) + low) * (rng.nextFloat() < 0.5 ? -1n : 1n);
      // The same value as float32 addends: 24-bit limbs, each a float32 (limb * 2^(p - 149)).
      const addends: number[] = [];
      const a = t < 0n ? -t : t;
      for (let p = 0; (a >> BigInt(p)) !== 0n; p += 24) {
        const limb = Number((a >> BigInt(p)) & 0xffffffn);
        addends.push((t < 0n ? -limb : limb) * 2 ** (p - 149));
      }
      expect(addends.every((v) => Math.fround(v) === v)).toBe(true);
      const bits = float32Bits(Math.fround(roundScaled(t, 24)));
      expect(bits, `t = ${t}`).toBe(exactSumReferenceBits(addends));
      if ((bits & 0x7fffffff) === 0x7f800000) overflows++;
    }
    expect(overflows).toBeGreaterThan(0);
  });

  it('roundScaled(·, 53) is Number(bigint) (round to nearest even) times 2^-149', () => {
    const rng = createRng(10);
    for (let trial = 0; trial < 3000; trial++) {
      const shift = 1 + rng.nextBelow(600);
      const q = (BigInt(rng.nextUint32()) << 21n) | BigInt(rng.nextUint32() >>> 11) | (1n << 52n);
      const half = 1n << BigInt(shift - 1);
      const low = [half, half - 1n, half + 1n, 0n, BigInt(rng.nextUint32()) % (half * 2n)][trial % 5]!;
      const t = (q << BigInt(shift)) + low;
      expect(roundScaled(t, 53), `t = ${t}`).toBe(Number(t) * 2 ** -149);
      expect(roundScaled(-t, 53)).toBe(-Number(t) * 2 ** -149);
    }
    expect(roundScaled(0n, 53)).toBe(0);
    expect(Object.is(roundScaled(0n, 24), 0)).toBe(true);
  });
});
