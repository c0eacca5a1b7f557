import { describe, expect, it } from 'vitest';
import { createRng } from '../../data/random.js';
import { ExactAccumulator } from './accumulator.js';
import { ExactSumFormatError } from './format-error.js';
import { decodeExactRange, encodedRange, encodeExactRange } from './wire.js';
import { addends, SAMPLE_KINDS, withSpecials } from './sample-data.js';

/** Hand-made encodings (any head/tail split, even values no accumulator would send). */
const encodeHeads = (heads: number[], tails: Array<[number, bigint]> = []): Uint8Array =>
  encodeExactRange(Float64Array.from(heads), 0, heads.length, tails);

function expectFormatError(fn: () => unknown, pattern: RegExp): void {
  try {
    fn();
  } catch (err) {
    expect(err).toBeInstanceOf(ExactSumFormatError);
    expect((err as Error).message).toMatch(pattern);
    return;
  }
  expect.fail('no ExactSumFormatError');
}

describe('exact-sum wire format', () => {
  it('round-trips every kind of sum (heads, tails, specials), whole and by sub-range, in both layouts', () => {
    for (const kind of SAMPLE_KINDS) for (const layout of ['packed', 'raw'] as const) {
      const rng = createRng(3);
      const n = 257;
      const acc = new ExactAccumulator(n);
      for (const v of addends(rng, kind, n, 9)) acc.add(withSpecials(rng, v, 0.02));
      const want = acc.toFloat64();
      expect(ExactAccumulator.fromEncoded(acc.encode(0, n, layout)).toFloat64(), kind).toEqual(want);
      const rebuilt = new ExactAccumulator(n);
      for (const [s, e] of [[100, 257], [0, 0], [0, 100]] as const) {
        const bytes = acc.encode(s, e, layout);
        expect(encodedRange(bytes)).toEqual({ start: s, end: e });
        // at an odd byte offset too, as bytes may arrive inside a larger message
        const shifted = new Uint8Array(bytes.length + 1);
        shifted.set(bytes, 1);
        rebuilt.addEncoded(s === 0 ? bytes : shifted.subarray(1));
      }
      expect(rebuilt.toFloat64(), kind).toEqual(want);
      expect(rebuilt.encode(), kind).toEqual(acc.encode());
      expect(rebuilt.encode(0, n, 'raw'), kind).toEqual(acc.encode(0, n, 'raw'));
      const sizes = [acc.encode().length, acc.encode(0, n, 'raw').length];
      if (kind === 'gradient') expect(sizes[0]! / n).toBeLessThan(6.5);
      const tailBytes = sizes[1]! - 16 - 8 * n; // raw: 8 bytes a head, then the same tails
      expect(tailBytes === 0, kind).toBe(acc.wideElements === 0);
      expect(sizes[0]!).toBeLessThanOrEqual(16 + Math.ceil(n / 2) + 8 * n + tailBytes);
    }
  });

  it('keeps only the significant bytes of each float64 head', () => {
    // +0: none; -0: the sign byte; 1.0 = 0x3ff0000000000000: two; fround(0.1) = 0x3fb99999a0000000: five
    // and fround(0.1) + 2^-56, its float64 lsb: all eight
    const acc = new ExactAccumulator(5).add(Float32Array.of(0, -0, 1, 0.1, 0.1)).add(Float32Array.of(2 ** -56), 4);
    const bytes = acc.encode();
    const payload = [0, 1, 2, 5, 8];
    expect(bytes.length).toBe(16 + 3 + payload.reduce((a, b) => a + b, 0));
    expect(Array.from(bytes.subarray(16, 19))).toEqual([0x10, 0x52, 0x08]);
    expect(Array.from(new ExactAccumulator(5).addEncoded(bytes).toFloat32())).toEqual(Array.from(acc.toFloat32()));
  });

  it('sends every NaN as one pattern, so NaN sums encode alike whatever their payloads', () => {
    const a = new ExactAccumulator(1).add(new Float32Array(new Uint32Array([0x7f800001]).buffer));
    const b = new ExactAccumulator(1).add(new Float32Array(new Uint32Array([0xffc12345]).buffer));
    expect(a.encode()).toEqual(b.encode());
    expect(Array.from(a.encode().subarray(17))).toEqual([0xf8, 0x7f]);
    expect(a.encode(0, 1, 'raw')).toEqual(b.encode(0, 1, 'raw'));
    expect(Array.from(a.encode(0, 1, 'raw').subarray(16))).toEqual([0, 0, 0, 0, 0, 0, 0xf8, 0x7f]);
  });

  it('adds at the encoded start, or at `at`', () => {
    const part = new ExactAccumulator(4).add(Float32Array.of(1, 2, 3, 4));
    const acc = new ExactAccumulator(6).addEncoded(part.encode(1, 3)).addEncoded(part.encode(1, 3), 4);
    expect(Array.from(acc.toFloat32())).toEqual([-0, 2, 3, -0, 2, 3]);
    expectFormatError(() => acc.addEncoded(part.encode(0, 3), 4), /3 elements placed at 4 does not fit .* 6/);
    expectFormatError(() => new ExactAccumulator(2).addEncoded(part.encode(1, 3)), /placed at 1 does not fit/);
  });

  it('accepts any head/tail split, and an exact zero reached through a tail is +0', () => {
    // heads of -0 with tails that cancel: the addends were nonzero, so the sum is +0
    const acc = new ExactAccumulator(1).addEncoded(encodeHeads([-0], [[0, 5n]])).addEncoded(encodeHeads([-0], [[0, -5n]]));
    expect(Object.is(acc.toFloat32()[0], 0)).toBe(true);
    expect(Object.is(acc.toFloat64()[0], 0)).toBe(true);
    // 2^60 with a tail of 2^149 units (1.0) is 2^60 + 1
    const b = ExactAccumulator.fromEncoded(encodeHeads([2 ** 60], [[0, 1n << 149n]]));
    expect(b.toFloat64()[0]).toBe(2 ** 60);
    b.add(Float32Array.of(-(2 ** 60)));
    expect(b.toFloat32()[0]).toBe(1);
  });

  it('refuses bytes that are not a whole, valid encoding', () => {
    const good = new ExactAccumulator(3).add(Float32Array.of(1, 2 ** 100, 3)).add(Float32Array.of(0, 1, 0)).encode();
    expect(decodeExactRange(good).tails.length).toBe(1);
    const acc = new ExactAccumulator(3);
    const edit = (f: (b: Uint8Array, dv: DataView) => void): Uint8Array => {
      const b = good.slice();
      f(b, new DataView(b.buffer));
      return b;
    };
    expectFormatError(() => acc.addEncoded(new Uint8Array(10)), /not an exact-sum encoding/);
    expectFormatError(() => acc.addEncoded(edit((b) => (b[0] = 0))), /no 'XS' header/);
    expectFormatError(() => acc.addEncoded(edit((b) => (b[2] = 2))), /version 2/);
    expectFormatError(() => acc.addEncoded(edit((b) => (b[3] = 2))), /unknown layout 2/);
    const raw = new ExactAccumulator(2).add(Float32Array.of(1, 2)).encode(0, 2, 'raw');
    expectFormatError(() => acc.addEncoded(raw.subarray(0, 31)), /truncated in the values/);
    const rawEdit = raw.slice();
    new DataView(rawEdit.buffer).setFloat64(24, 2 ** -150, true);
    expectFormatError(() => acc.addEncoded(rawEdit), /element 1 .*not a multiple of 2\^-149/);
    expectFormatError(() => acc.addEncoded(good.subarray(0, 17)), /truncated in the lengths/);
    expectFormatError(() => acc.addEncoded(good.subarray(0, 20)), /truncated in the values/);
    expectFormatError(() => acc.addEncoded(edit((b) => (b[16] = 0x29))), /length over 8|truncated/);
    expectFormatError(() => acc.addEncoded(Uint8Array.from([...good, 0])), /1 bytes left over/);
    expectFormatError(() => acc.addEncoded(good.subarray(0, good.length - 1)), /truncated in the tails|bad tail/);
    const tailAt = good.length - 7 - decodeExactRange(good).tails[0]![1].toString(16).length / 2;
    expectFormatError(() => acc.addEncoded(edit((_, dv) => dv.setUint32(tailAt, 3, true))), /bad tail entry 0 \(index 3/);
    expectFormatError(() => acc.addEncoded(edit((b) => (b[tailAt + 4] = 2))), /sign 2/);
    expectFormatError(() => acc.addEncoded(encodeHeads([1, 2 ** -150])), /element 1 .*not a multiple of 2\^-149/);
    expectFormatError(() => acc.addEncoded(encodeHeads([2 ** -1074])), /not a multiple/);
    expectFormatError(() => acc.addEncoded(encodeHeads([1, 2 ** 201])), /element 1 .* or 2\^201 or more/);
    expect(() => new ExactAccumulator(1).addEncoded(encodeHeads([-(2 ** 200) * 1.5]))).not.toThrow();
    expectFormatError(() => acc.addEncoded(encodeHeads([1], [[0, 1n << 512n]])), /bad tail entry 0 .* 65 bytes/);
    expect(() => new ExactAccumulator(1).addEncoded(encodeHeads([1], [[0, (1n << 512n) - 1n]]))).not.toThrow();
    const infinite = ExactAccumulator.fromEncoded(encodeHeads([Infinity, -Infinity, NaN]));
    expect(Array.from(infinite.toFloat32())).toEqual([Infinity, -Infinity, NaN]);
    expect(Array.from(acc.toFloat32())).toEqual([-0, -0, -0]); // nothing was added by the refusals
  });
});
