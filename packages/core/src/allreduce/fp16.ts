/**
 * float32 <-> IEEE 754 binary16 ("half"), used to halve allreduce payloads.
 *
 * Encoding rounds to nearest, ties to even, on the float32 bit pattern with integer ops only
 * (no float arithmetic, so no double-rounding questions): normal halves by the add-and-shift
 * trick, subnormal halves (|x| < 2^-14) by an explicit shift with a sticky remainder.
 * |x| >= 65520 (which rounds past 65504, the largest half) becomes +-Infinity, as IEEE
 * rounding says; every NaN becomes the quiet NaN 0x7e00 with its sign (payloads are not kept:
 * a NaN whose payload sits in the low 13 bits would otherwise truncate to Infinity).
 * Decoding is exact and goes through a 65,536-entry table of float32 bit patterns (256 KB,
 * built on first use).
 */

const F32_SIGN_TO_F16 = 16; // float32 sign bit 31 -> half sign bit 15
const F32_ABS_MASK = 0x7fffffff;
const F32_INF_BITS = 0x7f800000;
/** 65536.0: from here on every finite float32 rounds to Infinity (RNE already overflows at 65520). */
const F32_HALF_OVERFLOW = 0x47800000;
/** 2^-14: the smallest normal half. */
const F32_HALF_MIN_NORMAL = 0x38800000;
/** 2^-25: half the smallest subnormal half; anything at or below it rounds (ties-to-even) to zero. */
const F32_HALF_SUBNORMAL_TIE = 0x33000000;
/** (127 - 15) << 23: moves a float32 exponent to the half bias. */
const EXPONENT_REBIAS = 0x38000000;
const HALF_INF = 0x7c00;
const HALF_QNAN = 0x7e00;

/** The half bit pattern nearest (ties to even) to the float32 with bit pattern `bits`. */
export function float32BitsToFp16(bits: number): number {
  const sign = (bits >>> F32_SIGN_TO_F16) & 0x8000;
  const abs = bits & F32_ABS_MASK;
  if (abs >= F32_HALF_OVERFLOW) return sign | (abs > F32_INF_BITS ? HALF_QNAN : HALF_INF);
  if (abs >= F32_HALF_MIN_NORMAL) {
    // Drop 13 mantissa bits: adding 0xfff plus the lowest kept bit rounds ties to even; a carry
    // out of the mantissa bumps the exponent, and out of exponent 30 it lands exactly on Infinity.
    const keptLsb = (abs >>> 13) & 1;
    return sign | ((abs - EXPONENT_REBIAS + 0xfff + keptLsb) >>> 13);
  }
  if (abs > F32_HALF_SUBNORMAL_TIE) {
    // Subnormal half: value = mantissa * 2^(e-150), in units of 2^-24 that is mantissa >> (126 - e).
    const exponent = abs >>> 23; // 102..112 here
    const mantissa = (abs & 0x7fffff) | 0x800000;
    const shift = 126 - exponent; // 14..24
    let q = mantissa >>> shift;
    const rest = mantissa & ((1 << shift) - 1);
    const halfway = 1 << (shift - 1);
    if (rest > halfway || (rest === halfway && (q & 1) === 1)) q++; // q may become 0x400, the smallest normal: right
    return sign | q;
  }
  return sign; // +-0, including every float32 subnormal
}

/**
 * Rounds each float32 to the nearest half (ties to even). Writes into `out` when given
 * (it must have the same length), else into a new array.
 */
export function encodeFp16(values: Float32Array, out?: Uint16Array): Uint16Array {
  const n = values.length;
  const dst = out ?? new Uint16Array(n);
  if (dst.length !== n) {
    throw new RangeError(`encodeFp16: out has length ${dst.length}, expected ${n} (the length of the input)`);
  }
  // A Float32Array's byteOffset is always a multiple of 4, so this view is always valid.
  const bits = new Uint32Array(values.buffer, values.byteOffset, n);
  for (let i = 0; i < n; i++) dst[i] = float32BitsToFp16(bits[i]!);
  return dst;
}

let halfToFloat32Bits: Uint32Array | undefined;

function decodeTable(): Uint32Array {
  if (halfToFloat32Bits) return halfToFloat32Bits;
  const table = new Uint32Array(65536);
  const scratch = new Float32Array(1);
  const scratchBits = new Uint32Array(scratch.buffer);
  for (let h = 0; h < 65536; h++) {
    const sign = (h & 0x8000) << 16;
    const exponent = (h >>> 10) & 0x1f;
    const mantissa = h & 0x3ff;
    if (exponent === 0x1f) {
      table[h] = (sign | F32_INF_BITS | (mantissa << 13)) >>> 0; // Infinity, or NaN keeping its payload
    } else if (exponent !== 0) {
      table[h] = (sign | ((exponent + 112) << 23) | (mantissa << 13)) >>> 0;
    } else {
      scratch[0] = mantissa * 2 ** -24; // exact: a subnormal half is a normal (or zero) float32
      table[h] = (sign | scratchBits[0]!) >>> 0;
    }
  }
  halfToFloat32Bits = table;
  return table;
}

/** The float32 value of half bit pattern `h` (exact). */
export function fp16ToFloat32(h: number): number {
  const f = new Float32Array(new Uint32Array([decodeTable()[h & 0xffff]!]).buffer);
  return f[0]!;
}

/** Widens halves to float32 (exact). Writes into `out` when given (same length), else a new array. */
export function decodeFp16(halves: Uint16Array, out?: Float32Array): Float32Array {
  const n = halves.length;
  const dst = out ?? new Float32Array(n);
  if (dst.length !== n) {
    throw new RangeError(`decodeFp16: out has length ${dst.length}, expected ${n} (the length of the input)`);
  }
  const table = decodeTable();
  // Copy bit patterns, not numbers: storing a NaN through a Float32Array may canonicalise it.
  const dstBits = new Uint32Array(dst.buffer, dst.byteOffset, n);
  for (let i = 0; i < n; i++) dstBits[i] = table[halves[i]!]!;
  return dst;
}

/**
 * target[i] += the float32 value of halves[i], in float32: decoding fused with the add, so a
 * reduction does not allocate a decoded copy of every incoming vector.
 */
export function addFp16Into(target: Float32Array, halves: Uint16Array): Float32Array {
  const n = target.length;
  if (halves.length !== n) {
    throw new RangeError(`addFp16Into: halves has length ${halves.length}, expected ${n} (the length of target)`);
  }
  const values = new Float32Array(decodeTable().buffer);
  for (let i = 0; i < n; i++) target[i] += values[halves[i]!]!;
  return target;
}

/** Replaces each value by its nearest half (what a receiver of the fp16 payload will see). */
export function roundToFp16InPlace(values: Float32Array): Float32Array {
  return decodeFp16(encodeFp16(values), values);
}
