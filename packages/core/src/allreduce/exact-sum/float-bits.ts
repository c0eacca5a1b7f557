/**
 * Bit-level helpers for exact summation: float64 words, powers of two, and the conversions
 * between float64 values and "scaled integers" (a multiple of 2^-149, the float32 subnormal
 * unit, written as the bigint it is a multiple of). Every sum of float32 values is such a
 * multiple, so a scaled integer holds any of them exactly.
 */

/** Every platform Node runs on today is little-endian; the word indices follow the host. */
const HOST_LITTLE_ENDIAN = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1;
/** Index of the low / high 32-bit word of a float64 in a Uint32Array view of it. */
export const LO = HOST_LITTLE_ENDIAN ? 0 : 1;
export const HI = HOST_LITTLE_ENDIAN ? 1 : 0;

const scratch = new Float64Array(1);
const words = new Uint32Array(scratch.buffer);

/** 2^149: scaled integer = value * SCALE for values that are multiples of 2^-149. */
export const SCALE_EXP = 149;

/** 2^k for an integer k, exactly (0 below 2^-1074, Infinity above 2^1023). */
export function pow2(k: number): number {
  if (k > 1023) return Infinity;
  if (k >= -1022) {
    words[HI] = (k + 1023) << 20;
    words[LO] = 0;
    return scratch[0]!;
  }
  if (k < -1074) return 0;
  return pow2(k + 64) * pow2(-64); // a subnormal: exact, one rounding-free product
}

/** 2^-149 and 2^149. */
export const POW2_M149 = pow2(-SCALE_EXP);
export const POW2_149 = pow2(SCALE_EXP);

/** True when finite `v` is an integer multiple of 2^-149 (so it is a possible exact float32 sum). */
export function isMultipleOfUnit(v: number): boolean {
  // |v| >= 2^-97 has its float64 lsb at 2^-149 or above; below, scaling by 2^149 is exact.
  return Math.abs(v) >= 2 ** -97 || Number.isInteger(v * POW2_149);
}

/**
 * The scaled integer of a finite float64 `v` (v * 2^149 as a bigint). `v` must be a multiple
 * of 2^-149 (callers check with isMultipleOfUnit); -0 gives 0n.
 */
export function toScaled(v: number): bigint {
  scratch[0] = v;
  const hi = words[HI]!;
  const lo = words[LO]!;
  const biased = (hi >>> 20) & 0x7ff;
  let mant = (hi & 0xfffff) * 4294967296 + lo; // < 2^52, exact
  let exp: number; // v = mant * 2^exp
  if (biased === 0) {
    exp = -1074;
  } else {
    mant += 4503599627370496; // 2^52, the implicit bit
    exp = biased - 1075;
  }
  if (mant === 0) return 0n;
  const shift = exp + SCALE_EXP;
  let m: bigint;
  if (shift >= 0) {
    m = BigInt(mant) << BigInt(shift);
  } else {
    const d = pow2(-shift);
    const q = mant / d; // exact: division by a power of two
    if (!Number.isInteger(q)) throw new RangeError(`toScaled: ${v} is not a multiple of 2^-149`);
    m = BigInt(q);
  }
  return hi >>> 31 ? -m : m;
}

/** The number of bits of a positive bigint. */
export function bitLength(a: bigint): number {
  const hex = a.toString(16);
  return (hex.length - 1) * 4 + (32 - Math.clz32(parseInt(hex[0]!, 16)));
}

/**
 * t * 2^-149 rounded once, to nearest with ties to even, to a binary float of `precision`
 * significant bits (24: float32, 53: float64) whose smallest unit is 2^-149 or finer (so
 * below 2^-126 a float32 result is subnormal and rounded at 2^-149, as IEEE does), with an
 * unbounded exponent; returned as a float64 number, which is exact whenever the rounded value
 * is below 2^1024 (Infinity otherwise). For float32, Math.fround of the result is the IEEE
 * float32 result: the value itself, or ±Infinity when it is 2^128 or more. Zero gives +0.
 */
export function roundScaled(t: bigint, precision: number): number {
  if (t === 0n) return 0;
  const neg = t < 0n;
  const a = neg ? -t : t;
  const shift = bitLength(a) - precision;
  let r: number;
  if (shift <= 0) {
    r = Number(a) * POW2_M149; // at most `precision` <= 53 bits: exact
  } else {
    const bs = BigInt(shift);
    let q = a >> bs;
    const rem = a - (q << bs);
    const half = 1n << (bs - 1n);
    if (rem > half || (rem === half && (q & 1n) === 1n)) q += 1n;
    // q <= 2^precision, so Number(q) is exact, and so is the product unless it overflows.
    r = Number(q) * pow2(shift - SCALE_EXP);
  }
  return neg ? -r : r;
}
