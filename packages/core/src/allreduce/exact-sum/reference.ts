/**
 * A slow, independent oracle for tests: the exact sum of float32 values with bigint integers and
 * its IEEE float32 rounding done on bit fields (no float arithmetic, nothing shared with the
 * accumulator's code), returned as the float32 bit pattern.
 */

const f32 = new Float32Array(1);
const u32 = new Uint32Array(f32.buffer);

/** The float32 bits of x (x must be a float32 value; NaN gives its bits as stored). */
export function float32Bits(x: number): number {
  f32[0] = x;
  return u32[0]!;
}

/** The float32 whose bits are `bits`. */
export function float32FromBits(bits: number): number {
  u32[0] = bits;
  return f32[0]!;
}

/**
 * The float32 bits of the correctly rounded (nearest, ties to even) exact sum of `addends`
 * (float32 values), with the accumulator's rules for special values and zero signs: any NaN or
 * both infinities give 0x7fc00000, one infinity gives it; an exact zero is -0 iff every addend is -0.
 */
export function exactSumReferenceBits(addends: ArrayLike<number>): number {
  let total = 0n;
  let allNegZero = true;
  let nan = false;
  let posInf = false;
  let negInf = false;
  for (let k = 0; k < addends.length; k++) {
    const b = float32Bits(addends[k]!);
    const sign = b >>> 31;
    const e = (b >>> 23) & 0xff;
    const m = b & 0x7fffff;
    if (b !== 0x80000000) allNegZero = false;
    if (e === 0xff) {
      if (m !== 0) nan = true;
      else if (sign) negInf = true;
      else posInf = true;
      continue;
    }
    // value = mag * 2^-149
    const mag = e === 0 ? BigInt(m) : BigInt(m | 0x800000) << BigInt(e - 1);
    total += sign ? -mag : mag;
  }
  if (nan || (posInf && negInf)) return 0x7fc00000;
  if (posInf) return 0x7f800000;
  if (negInf) return 0xff800000;
  if (total === 0n) return allNegZero ? 0x80000000 : 0;
  const signBit = total < 0n ? 0x80000000 : 0;
  const a = total < 0n ? -total : total;
  const len = a.toString(2).length;
  if (len <= 24) return (signBit | Number(a)) >>> 0; // subnormal (e = 0) or e = 1: the bits are a
  let shift = len - 24;
  const bs = BigInt(shift);
  let q = a >> bs;
  const rem = a - (q << bs);
  const half = 1n << (bs - 1n);
  if (rem > half || (rem === half && (q & 1n) === 1n)) q += 1n;
  if (q === 1n << 24n) {
    q >>= 1n;
    shift += 1;
  }
  const e = shift + 1; // biased exponent
  if (e >= 0xff) return (signBit | 0x7f800000) >>> 0;
  return (signBit | (e << 23) | (Number(q) - 0x800000)) >>> 0;
}
