import { describe, expect, it } from 'vitest';
import { addFp16Into, decodeFp16, encodeFp16, float32BitsToFp16, fp16ToFloat32, roundToFp16InPlace } from './fp16.js';

const f32 = (x: number): number => Math.fround(x);
const bitsOf = (x: number): number => new Uint32Array(new Float32Array([x]).buffer)[0]!;
const fromBits = (b: number): number => new Float32Array(new Uint32Array([b]).buffer)[0]!;

/**
 * An independent, slow reference: the nearest half to float32 `v`, ties to even, computed in
 * float64 arithmetic from the definition (every step is exact in float64 for float32 inputs).
 */
function referenceNearestHalf(v: number): number {
  if (Number.isNaN(v)) return NaN;
  const a = Math.abs(v);
  if (a >= 65520) return v > 0 ? Infinity : -Infinity; // 65520 is the tie between 65504 and 2^16
  const biased = (bitsOf(a) >>> 23) & 0xff;
  const exponent = Math.max(biased - 127, -14); // subnormal halves share the 2^-14 spacing rule
  const ulp = 2 ** (exponent - 10);
  const q = a / ulp;
  let k = Math.floor(q);
  const rest = q - k;
  if (rest > 0.5 || (rest === 0.5 && k % 2 === 1)) k++;
  const r = k * ulp;
  return v < 0 || Object.is(v, -0) ? -r : r;
}

/** The value of half bit pattern h, from the IEEE definition. */
function referenceHalfValue(h: number): number {
  const sign = h & 0x8000 ? -1 : 1;
  const e = (h >>> 10) & 0x1f;
  const m = h & 0x3ff;
  if (e === 0x1f) return m === 0 ? sign * Infinity : NaN;
  if (e === 0) return sign * m * 2 ** -24;
  return sign * 2 ** (e - 15) * (1 + m / 1024);
}

describe('fp16 encode: exact expectations on edge values', () => {
  const cases: Array<[string, number, number]> = [
    ['+0', 0, 0x0000],
    ['-0', -0, 0x8000],
    ['1', 1, 0x3c00],
    ['-2', -2, 0xc000],
    ['0.1 (rounds down)', f32(0.1), 0x2e66],
    ['1/3 (rounds up)', f32(1 / 3), 0x3555],
    ['65504 (max half)', 65504, 0x7bff],
    ['just below 65520 rounds to max', f32(65519.996), 0x7bff],
    ['65520 is a tie: rounds to even, i.e. overflows to inf', 65520, 0x7c00],
    ['1e6 overflows to inf', 1e6, 0x7c00],
    ['-1e6 overflows to -inf', -1e6, 0xfc00],
    ['float32 max overflows to inf', fromBits(0x7f7fffff), 0x7c00],
    ['+inf', Infinity, 0x7c00],
    ['-inf', -Infinity, 0xfc00],
    ['NaN becomes quiet NaN', NaN, 0x7e00],
    ['negative NaN keeps its sign', fromBits(0xffc00001), 0xfe00],
    ['NaN with payload only in low bits is still NaN', fromBits(0x7f800001), 0x7e00],
    ['2^-14 (min normal)', 2 ** -14, 0x0400],
    ['2^-24 (min subnormal)', 2 ** -24, 0x0001],
    ['-2^-24', -(2 ** -24), 0x8001],
    ['2^-25 is a tie: rounds to even zero', 2 ** -25, 0x0000],
    ['next float32 above 2^-25 rounds up', fromBits(bitsOf(2 ** -25) + 1), 0x0001],
    ['3 * 2^-25 ties to even (2)', 3 * 2 ** -25, 0x0002],
    ['5 * 2^-25 ties to even (2)', 5 * 2 ** -25, 0x0002],
    ['largest subnormal', 1023 * 2 ** -24, 0x03ff],
    ['tie between largest subnormal and min normal goes to normal', 1023.5 * 2 ** -24, 0x0400],
    ['float32 subnormal flushes to zero', fromBits(0x00000001), 0x0000],
    ['-float32 subnormal flushes to -0', fromBits(0x80000001), 0x8000],
    ['1 + 2^-11 ties to even (1)', 1 + 2 ** -11, 0x3c00],
    ['1 + 3*2^-11 ties to even (1 + 2^-9)', 1 + 3 * 2 ** -11, 0x3c02],
    ['1 + 2^-11 + 2^-23 rounds up', 1 + 2 ** -11 + 2 ** -23, 0x3c01],
    ['2047.5 ties to even (2048)', 2047.5, 0x6800],
  ];
  it.each(cases)('%s', (_name, value, expected) => {
    expect(float32BitsToFp16(bitsOf(value)).toString(16)).toBe(expected.toString(16));
    expect(encodeFp16(new Float32Array([value]))[0]!.toString(16)).toBe(expected.toString(16));
  });
});

describe('fp16 decode', () => {
  it('decodes all 65,536 patterns to their IEEE value, and re-encodes them to themselves', () => {
    const all = new Uint16Array(65536).map((_, i) => i);
    const decoded = decodeFp16(all);
    const back = encodeFp16(decoded);
    for (let h = 0; h < 65536; h++) {
      const want = referenceHalfValue(h);
      const got = decoded[h]!;
      if (Number.isNaN(want)) {
        if (!Number.isNaN(got)) expect.fail(`half 0x${h.toString(16)} should decode to NaN, got ${got}`);
        if (back[h] !== ((h & 0x8000) | 0x7e00)) expect.fail(`NaN 0x${h.toString(16)} re-encoded to 0x${back[h]!.toString(16)}`);
      } else {
        if (!Object.is(got, want)) expect.fail(`half 0x${h.toString(16)} decoded to ${got}, expected ${want}`);
        if (back[h] !== h) expect.fail(`half 0x${h.toString(16)} re-encoded to 0x${back[h]!.toString(16)}`);
      }
    }
    expect(fp16ToFloat32(0x3c00)).toBe(1);
    expect(fp16ToFloat32(0xfc00)).toBe(-Infinity);
  });

  it('keeps NaN payloads bit for bit when widening', () => {
    const out = decodeFp16(new Uint16Array([0x7c01, 0xfe00, 0x7fff]));
    const bits = new Uint32Array(out.buffer);
    expect([...bits].map((b) => b.toString(16))).toEqual(['7f802000', 'ffc00000', '7fffe000']);
  });

  it('adds decoded halves into a float32 target exactly as decode-then-add does', () => {
    const n = 10_000;
    const halves = Uint16Array.from({ length: n }, () => Math.floor(Math.random() * 0x7c00) | (Math.random() < 0.5 ? 0x8000 : 0));
    const target = Float32Array.from({ length: n }, () => (Math.random() - 0.5) * 100);
    const want = target.slice();
    const decoded = decodeFp16(halves);
    for (let i = 0; i < n; i++) want[i] = Math.fround(want[i]! + decoded[i]!);
    addFp16Into(target, halves);
    expect(new Uint32Array(target.buffer)).toEqual(new Uint32Array(want.buffer));
    expect(() => addFp16Into(new Float32Array(2), new Uint16Array(3))).toThrow(/addFp16Into: halves has length 3, expected 2/);
  });

  it('writes into a given output and rejects one of the wrong length', () => {
    const out = new Float32Array(2);
    expect(decodeFp16(new Uint16Array([0x3c00, 0x4000]), out)).toBe(out);
    expect([...out]).toEqual([1, 2]);
    expect(() => decodeFp16(new Uint16Array(3), out)).toThrow(/decodeFp16: out has length 2, expected 3/);
    expect(() => encodeFp16(new Float32Array(3), new Uint16Array(1))).toThrow(/encodeFp16: out has length 1, expected 3/);
  });
});

describe('fp16 on random inputs', () => {
  const seed = (Math.random() * 2 ** 32) >>> 0;
  // xorshift32: enough to spread bit patterns over every exponent and mantissa.
  let state = seed || 1;
  const nextU32 = (): number => {
    state ^= state << 13;
    state ^= state >>> 17;
    state ^= state << 5;
    return state >>> 0;
  };

  it(`matches the independent nearest-half reference on 300,000 random float32 bit patterns (seed ${seed})`, () => {
    const n = 300_000;
    const bits = new Uint32Array(n);
    for (let i = 0; i < n; i++) {
      // Half of them in and around the half range (exponents 97..145), where rounding is interesting.
      const u = nextU32();
      bits[i] = i % 2 === 0 ? u : ((u & 0x807fffff) | ((97 + (nextU32() % 49)) << 23)) >>> 0;
    }
    const values = new Float32Array(bits.buffer);
    const rounded = decodeFp16(encodeFp16(values));
    for (let i = 0; i < n; i++) {
      const want = referenceNearestHalf(values[i]!);
      const got = rounded[i]!;
      const same = Number.isNaN(want) ? Number.isNaN(got) : Object.is(got, want);
      if (!same) expect.fail(`seed ${seed}: float32 0x${bits[i]!.toString(16)} (${values[i]}) rounded to ${got}, expected ${want}`);
    }
  });

  it(`round-trips with relative error <= 2^-11 over the normal range (seed ${seed})`, () => {
    const n = 200_000;
    const values = new Float32Array(n);
    for (let i = 0; i < n; i++) {
      const magnitude = 2 ** (-14 + (nextU32() / 2 ** 32) * 29.99); // [2^-14, ~65500)
      values[i] = (nextU32() & 1 ? -1 : 1) * magnitude;
    }
    const back = roundToFp16InPlace(values.slice());
    let worst = 0;
    for (let i = 0; i < n; i++) worst = Math.max(worst, Math.abs(back[i]! - values[i]!) / Math.abs(values[i]!));
    expect(worst, `seed ${seed}`).toBeLessThanOrEqual(2 ** -11);
    expect(worst, `seed ${seed}: the bound should be nearly reached on this many inputs`).toBeGreaterThan(2 ** -12);
  });
});
