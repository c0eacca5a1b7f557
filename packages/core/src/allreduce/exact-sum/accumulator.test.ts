import { describe, expect, it } from 'vitest';
import { createRng, type Rng } from '../../data/random.js';
import { ExactAccumulator } from './accumulator.js';
import { exactSumReferenceBits, float32Bits, float32FromBits } from './reference.js';
import { addends, gradientLike, SAMPLE_KINDS, withSpecials, type SampleKind } from './sample-data.js';

const SEEDS = [1, 2, 3, 4, 5, 6, 0x5eed, 987654321];

const bitsOf = (v: Float32Array): Uint32Array => new Uint32Array(v.buffer, v.byteOffset, v.length);

/** The reference bits of the element-wise sums of `vectors`. */
function referenceBits(vectors: readonly Float32Array[], n: number): Uint32Array {
  const out = new Uint32Array(n);
  const column = new Array<number>(vectors.length);
  for (let i = 0; i < n; i++) {
    for (let k = 0; k < vectors.length; k++) column[k] = vectors[k]![i]!;
    out[i] = exactSumReferenceBits(column);
  }
  return out;
}

/** Index of the first element whose bits differ, with both patterns, for a readable failure. */
function firstDifference(got: Uint32Array, want: Uint32Array): string {
  for (let i = 0; i < want.length; i++) {
    if (got[i] !== want[i]) return `element ${i}: got 0x${got[i]!.toString(16)}, want 0x${want[i]!.toString(16)}`;
  }
  return got.length === want.length ? 'none' : `lengths ${got.length} vs ${want.length}`;
}

function expectBits(got: Float32Array, want: Uint32Array, context: string): void {
  const g = bitsOf(got);
  expect(firstDifference(g, want), context).toBe('none');
}

function shuffle<T>(rng: Rng, list: T[]): T[] {
  for (let i = list.length - 1; i > 0; i--) {
    const j = rng.nextBelow(i + 1);
    [list[i], list[j]] = [list[j]!, list[i]!];
  }
  return list;
}

/**
 * Sums `vectors` the way a distributed run might: split into random groups (ranks), each summed
 * in its own random order, some groups shipped as whole encodings, some as random sub-range
 * encodings (ring chunks), merged into the result in a random order.
 */
function sumDistributed(rng: Rng, vectors: readonly Float32Array[], n: number): ExactAccumulator {
  const order = shuffle(rng, [...vectors]);
  const groups: Float32Array[][] = [];
  for (const v of order) {
    if (groups.length === 0 || rng.nextFloat() < 0.4) groups.push([]);
    groups[rng.nextBelow(groups.length)]!.push(v);
  }
  const parts = groups.map((g) => {
    const acc = new ExactAccumulator(n);
    for (const v of g) {
      if (rng.nextFloat() < 0.3 && n > 1) {
        // add in two pieces through offsets
        const cut = 1 + rng.nextBelow(n - 1);
        acc.add(v.subarray(cut), cut).add(v.subarray(0, cut));
      } else {
        acc.add(v);
      }
    }
    return acc;
  });
  const result = new ExactAccumulator(n);
  for (const part of shuffle(rng, parts)) {
    switch (rng.nextBelow(4)) {
      case 0:
        result.merge(part);
        break;
      case 1:
        result.addEncoded(part.encode(0, n, rng.nextFloat() < 0.5 ? 'raw' : 'packed'));
        break;
      case 2:
        result.merge(ExactAccumulator.fromEncoded(part.encode()));
        break;
      default: {
        // ring-like: random chunk bounds, each chunk encoded alone, chunks added in random order
        const cuts = [0, n];
        for (let c = rng.nextBelow(4); c > 0; c--) cuts.push(rng.nextBelow(n + 1));
        cuts.sort((a, b) => a - b);
        const chunks: Uint8Array[] = [];
        for (let c = 0; c + 1 < cuts.length; c++) chunks.push(part.encode(cuts[c], cuts[c + 1], rng.nextFloat() < 0.5 ? 'raw' : 'packed'));
        for (const bytes of shuffle(rng, chunks)) result.addEncoded(bytes);
      }
    }
  }
  return result;
}

describe('ExactAccumulator: the correctly rounded exact sum, whatever the order or grouping', () => {
  for (const kind of SAMPLE_KINDS) {
    it(`${kind}: equals the bigint reference in sequential, permuted and distributed sums, with equal encodings`, () => {
      for (const seed of SEEDS) {
        const rng = createRng(seed);
        const n = 1 + rng.nextBelow(300);
        const k = 1 + rng.nextBelow(kind === 'cancelling' ? 24 : 12);
        const vectors = addends(rng, kind, n, k);
        const want = referenceBits(vectors, n);
        const context = `${kind}, seed ${seed}, n ${n}, k ${k}`;

        const sequential = new ExactAccumulator(n);
        for (const v of vectors) sequential.add(v);
        expectBits(sequential.toFloat32(), want, `${context}: sequential`);
        const canonical = sequential.encode();

        for (let trial = 0; trial < 4; trial++) {
          const acc = sumDistributed(rng, vectors, n);
          expectBits(acc.toFloat32(), want, `${context}: distributed trial ${trial}`);
          expect(Buffer.from(acc.encode()).equals(Buffer.from(canonical)), `${context}: encoding, trial ${trial}`).toBe(true);
        }
      }
    });
  }

  it('the adversarial data really is order-dependent for plain float32 summation (so the tests above can fail)', () => {
    // A control: if the generators produced easy data, a naive float32 loop would pass too.
    for (const kind of ['anyExponent', 'cancelling', 'mixed', 'subnormal', 'nearMax'] as SampleKind[]) {
      const rng = createRng(42);
      const n = 200;
      const vectors = addends(rng, kind, n, 12);
      const want = referenceBits(vectors, n);
      const naive = (vs: Float32Array[]): Float32Array => {
        const s = new Float32Array(n);
        for (const v of vs) for (let i = 0; i < n; i++) s[i] += v[i]!;
        return s;
      };
      const forward = bitsOf(naive(vectors));
      const backward = bitsOf(naive([...vectors].reverse()));
      let wrong = 0;
      let orderDependent = 0;
      for (let i = 0; i < n; i++) {
        if (forward[i] !== want[i]) wrong++;
        if (forward[i] !== backward[i]) orderDependent++;
      }
      // (Subnormals too: twelve of them sum past 2^-126, where float32 keeps 24 bits, not 28.)
      expect(wrong, `${kind}: naive float32 sums that differ from the exact one`).toBeGreaterThan(n / 20);
      expect(orderDependent, `${kind}: naive sums that change with the order`).toBeGreaterThan(n / 20);
    }
  });

  it('gradient-like sums stay on the float64 path and equal Math.fround of the float64 sum', () => {
    for (const seed of SEEDS) {
      const rng = createRng(seed);
      const n = 2000;
      const vectors = Array.from({ length: 16 }, () => gradientLike(rng, n));
      const acc = new ExactAccumulator(n);
      const f64 = new Float64Array(n);
      for (const v of vectors) {
        acc.add(v);
        for (let i = 0; i < n; i++) f64[i] += v[i]!;
      }
      expect(acc.wideElements).toBe(0);
      const out = acc.toFloat32();
      for (let i = 0; i < n; i++) {
        // 16 values of similar magnitude: the float64 sum is exact, so one fround is the answer.
        if (!Object.is(out[i], Math.fround(f64[i]!))) expect.fail(`seed ${seed} element ${i}: ${out[i]} vs ${Math.fround(f64[i]!)}`);
      }
      expect(Array.from(acc.toFloat64())).toEqual(Array.from(f64).map((v) => (v === 0 ? 0 : v)));
      // and the reference agrees with that fround (a check of the reference on easy data)
      const column = vectors.map(() => 0);
      for (let i = 0; i < 50; i++) {
        vectors.forEach((v, k) => (column[k] = v[i]!));
        expect(exactSumReferenceBits(column)).toBe(float32Bits(Math.fround(f64[i]!)));
      }
    }
  });

  it('equals the float32 loop where float32 arithmetic is exact (small integers)', () => {
    const rng = createRng(7);
    const n = 500;
    const vectors = Array.from({ length: 20 }, () => Float32Array.from({ length: n }, () => rng.nextBelow(1 << 18) - (1 << 17)));
    const acc = new ExactAccumulator(n);
    const plain = new Float32Array(n);
    for (const v of vectors) {
      acc.add(v);
      for (let i = 0; i < n; i++) plain[i] += v[i]!;
    }
    expect(Array.from(acc.toFloat32())).toEqual(Array.from(plain));
  });

  it('handles special values in any order: NaN wins, +Inf with -Inf is NaN, one NaN bit pattern', () => {
    for (const seed of SEEDS) {
      const rng = createRng(seed);
      const n = 64;
      const vectors = addends(rng, 'mixed', n, 8).map((v) => withSpecials(rng, v, 0.15));
      const want = referenceBits(vectors, n);
      expect(want.some((b) => b === 0x7fc00000) && want.some((b) => (b & 0x7fffffff) === 0x7f800000)).toBe(true);
      for (let trial = 0; trial < 4; trial++) {
        expectBits(sumDistributed(rng, vectors, n).toFloat32(), want, `specials, seed ${seed}, trial ${trial}`);
      }
    }
  });

  const cases: Array<[string, number[], number]> = [
    ['nothing added: -0, the additive identity', [], 0x80000000],
    ['-0 alone', [-0], 0x80000000],
    ['-0 twice', [-0, -0], 0x80000000],
    ['-0 and +0', [-0, 0], 0],
    ['+0 and -0', [0, -0], 0],
    ['x and -x', [1.5, -1.5], 0],
    ['-0, x, -x', [-0, -3, 3], 0],
    ['a cancelling sum that needed the tail', [1, 2 ** -149, -1, -(2 ** -149)], 0],
    ['-0 after a cancelling wide sum', [2 ** 100, 2 ** -149, -0, -(2 ** 100), -(2 ** -149)], 0],
    ['NaN', [1, NaN, 2], 0x7fc00000],
    ['a signalling NaN pattern', [float32FromBits(0x7f800001)], 0x7fc00000],
    ['a negative NaN pattern', [float32FromBits(0xffc12345), 1], 0x7fc00000],
    ['+Inf and -Inf', [Infinity, 1, -Infinity], 0x7fc00000],
    ['+Inf', [3, Infinity, -1e38], 0x7f800000],
    ['-Inf', [-Infinity, 3.4e38, 2 ** -149], 0xff800000],
    ['float32 max twice: overflows to +Inf', [3.4028234663852886e38, 3.4028234663852886e38], 0x7f800000],
    ['max twice then -max: back in range', [3.4028234663852886e38, 3.4028234663852886e38, -3.4028234663852886e38], 0x7f7fffff],
    ['max + half an ulp: a tie, to even (2^128, so +Inf)', [3.4028234663852886e38, 2 ** 103], 0x7f800000],
    ['max + just under half an ulp: max', [3.4028234663852886e38, 2 ** 103, -(2 ** -149)], 0x7f7fffff],
    ['-max - half an ulp: -Inf', [-3.4028234663852886e38, -(2 ** 103)], 0xff800000],
    ['1 + 2^-24: a tie, to even (1)', [1, 2 ** -24], 0x3f800000],
    ['1 + 3 * 2^-24: a tie, to even (1 + 2^-22)', [1, 2 ** -24, 2 ** -23], 0x3f800002],
    ['1 + 2^-24 + 2^-149: above the tie', [1, 2 ** -24, 2 ** -149], 0x3f800001],
    ['1 + 2^-24 - 2^-149 ... as separate addends in any order', [2 ** -24, -(2 ** -149), 1], 0x3f800000],
    ['smallest subnormals', [2 ** -149, 2 ** -149, 2 ** -149], 3],
    ['subnormals into the normal range', [float32FromBits(0x007fffff), 2 ** -149], 0x00800000],
    ['2^127 + 2^-149 - 2^127', [2 ** 127, 2 ** -149, -(2 ** 127)], 1],
  ];
  for (const [name, values, want] of cases) {
    it(`special case: ${name}`, () => {
      const f = Float32Array.from(values);
      expect(float32Bits(f.length ? f[0]! : 0) >= 0).toBe(true);
      expect(exactSumReferenceBits(f), 'the reference').toBe(want);
      // every order, one value per add, and pairwise grouping through encodings
      for (const perm of permutations(Array.from(f))) {
        const acc = new ExactAccumulator(1);
        for (const v of perm) acc.add(Float32Array.of(v));
        expect(bitsOf(acc.toFloat32())[0], `order ${perm.join(', ')}`).toBe(want);
        const paired = new ExactAccumulator(1);
        for (let i = 0; i < perm.length; i += 2) {
          const part = new ExactAccumulator(1).add(Float32Array.of(perm[i]!));
          if (i + 1 < perm.length) part.add(Float32Array.of(perm[i + 1]!));
          paired.addEncoded(part.encode());
        }
        expect(bitsOf(paired.toFloat32())[0], `pairs of ${perm.join(', ')}`).toBe(want);
      }
    });
  }

  it('is exact over 2^20 additions into one accumulator (float64 path and tail path)', () => {
    const rounds = 2 ** 20;
    const max = 3.4028234663852886e38;
    const acc = new ExactAccumulator(3);
    const v = new Float32Array(3);
    const rng = createRng(11);
    const tiny: number[] = [];
    for (let r = 0; r < rounds; r++) {
      v[0] = r < rounds / 2 ? max : -max; // climbs to 2^19 * max, far past float32, then back
      v[1] = r % 2 === 0 ? 2 ** 60 : -(2 ** 60); // keeps a huge head while ...
      v[2] = float32FromBits(1 + rng.nextBelow(1 << 22)); // ... the third sums subnormals
      if (r % 2 === 1) v[1] = -(2 ** 60);
      tiny.push(v[2]!);
      acc.add(v);
      if (r === rounds / 2 - 1) expect(bitsOf(acc.toFloat32(undefined, 0, 1))[0]).toBe(0x7f800000);
      if (r % 4 === 1) acc.add(Float32Array.of(2 ** -149), 1); // the tail gets a unit ...
      if (r % 4 === 3) acc.add(Float32Array.of(-(2 ** -149)), 1); // ... and gives it back
    }
    const out = bitsOf(acc.toFloat32());
    expect(out[0]).toBe(0); // exactly cancelled
    expect(out[1]).toBe(0);
    expect(out[2]).toBe(exactSumReferenceBits(tiny));
    expect(acc.wideElements).toBe(1); // element 1's value is 0 as a head of -2^-149 and a tail of 1 unit
    acc.encode(); // normalises: the head becomes the value, the tail goes
    expect(acc.wideElements).toBe(0);
    expect(out[1]).toBe(bitsOf(acc.toFloat32())[1]);
  });

  it('toFloat64 is the float64 nearest the exact sum', () => {
    // 2^60 + 1 + 2^-60: the float64 nearest is 2^60 (the 1 is below half its ulp of 256)
    const acc = new ExactAccumulator(4);
    acc.add(Float32Array.of(2 ** 60, 2 ** 53, 1, 2 ** 53));
    acc.add(Float32Array.of(1, 1, 2 ** -100, 1));
    acc.add(Float32Array.of(2 ** -60, 1, 0, 0));
    // 2^53 + 2 exactly; 1 + 2^-100 -> 1; 2^53 + 1, a tie -> 2^53 (even)
    expect(Array.from(acc.toFloat64())).toEqual([2 ** 60, 2 ** 53 + 2, 1, 2 ** 53]);
    expect(acc.wideElements).toBe(4);
    acc.add(Float32Array.of(2 ** 9, 0, 0, 0)); // 2^60 + 2^9 + 1 + 2^-60 -> 2^60 + 2^9 (ulp 256)
    expect(acc.toFloat64()[0]).toBe(2 ** 60 + 2 ** 9);
    acc.add(Float32Array.of(-(2 ** 9)), 0).add(Float32Array.of(128)); // 2^60 + 129 + 2^-60
    expect(acc.toFloat64()[0]).toBe(2 ** 60 + 256); // above half an ulp
  });

  it('reset empties a range, and ranges are checked', () => {
    const acc = new ExactAccumulator(4).add(Float32Array.of(1, 2 ** 100, 3, 4)).add(Float32Array.of(1, 2 ** -100, 3, 4));
    expect(acc.wideElements).toBe(1);
    acc.reset(1, 3);
    expect(acc.wideElements).toBe(0);
    expect(Array.from(acc.toFloat32())).toEqual([2, -0, -0, 8]);
    expect(() => acc.add(new Float32Array(4), 1)).toThrow(RangeError);
    expect(() => acc.add(new Float32Array(1), -1)).toThrow(RangeError);
    expect(() => acc.merge(new ExactAccumulator(5))).toThrow(RangeError);
    expect(() => acc.toFloat32(new Float32Array(3))).toThrow(RangeError);
    expect(() => acc.encode(3, 2)).toThrow(RangeError);
    expect(() => new ExactAccumulator(-1)).toThrow(RangeError);
    expect(() => new ExactAccumulator(1.5)).toThrow(RangeError);
    acc.merge(new ExactAccumulator(2).add(Float32Array.of(5, 6)), 2);
    expect(Array.from(acc.toFloat32(undefined, 1))).toEqual([-0, 5, 14]);
  });

  it('merging an accumulator into itself doubles it exactly', () => {
    const acc = new ExactAccumulator(2).add(Float32Array.of(2 ** 100, 3)).add(Float32Array.of(2 ** -100, 2 ** -149));
    expect(acc.wideElements).toBe(2);
    acc.merge(acc);
    const ref = [
      exactSumReferenceBits([2 ** 100, 2 ** -100, 2 ** 100, 2 ** -100]),
      exactSumReferenceBits([3, 2 ** -149, 3, 2 ** -149]),
    ];
    expect(Array.from(bitsOf(acc.toFloat32()))).toEqual(ref);
    acc.add(Float32Array.of(-(2 ** 101), -6));
    expect(Array.from(acc.toFloat64())).toEqual([2 ** -99, 2 ** -148]);
  });
});

function* permutations<T>(list: T[]): Generator<T[]> {
  if (list.length <= 1) {
    yield list;
    return;
  }
  for (let i = 0; i < list.length; i++) {
    const rest = [...list.slice(0, i), ...list.slice(i + 1)];
    for (const p of permutations(rest)) yield [list[i]!, ...p];
  }
}
