/**
 * Seeded float32 data for the exact-sum tests and benchmark: gradient-like vectors and
 * adversarial ones (every exponent, subnormals only, heavy cancellation, near the float32 max).
 */
import type { Rng } from '../../data/random.js';

const bits = new Uint32Array(1);
const asFloat = new Float32Array(bits.buffer);

/** The float32 with these bits. */
function fromBits(b: number): number {
  bits[0] = b;
  return asFloat[0]!;
}

/** A standard normal sample (Box-Muller). */
export function gaussian(rng: Rng): number {
  let u = 0;
  while (u === 0) u = rng.nextFloat();
  return Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * rng.nextFloat());
}

/** Values ~ N(0, sigma^2) rounded to float32, a fraction `zeros` of them exactly 0. */
export function gradientLike(rng: Rng, n: number, sigma = 1e-3, zeros = 0.1): Float32Array {
  const out = new Float32Array(n);
  for (let i = 0; i < n; i++) out[i] = rng.nextFloat() < zeros ? 0 : gaussian(rng) * sigma;
  return out;
}

/**
 * Finite float32 values with a biased exponent uniform in [minExp, maxExp] (0 is subnormal or
 * zero, 254 the top binade: 2^127 .. 3.4e38), random mantissa and sign.
 */
export function anyExponent(rng: Rng, n: number, minExp = 0, maxExp = 254): Float32Array {
  const out = new Float32Array(n);
  for (let i = 0; i < n; i++) {
    const e = minExp + rng.nextBelow(maxExp - minExp + 1);
    out[i] = fromBits(((rng.nextUint32() & 0x80000000) | (e << 23) | (rng.nextUint32() & 0x7fffff)) >>> 0);
  }
  return out;
}

/**
 * `k` addend vectors of length n with heavy cancellation: about a third are large values of any
 * exponent, a third their exact negations (in another order), the rest tiny remainders, so the
 * exact sums are small while partial sums are huge.
 */
export function cancelling(rng: Rng, n: number, k: number): Float32Array[] {
  const big = Math.max(1, Math.floor(k / 3));
  const out: Float32Array[] = [];
  for (let j = 0; j < big; j++) out.push(anyExponent(rng, n, 100, 254));
  for (let j = 0; j < big && out.length < k; j++) out.push(out[(j + 1) % big]!.map((v) => -v));
  while (out.length < k) out.push(anyExponent(rng, n, 0, 40));
  return out;
}

/** Kinds of addend vectors the property tests draw from. */
export const SAMPLE_KINDS = ['gradient', 'anyExponent', 'subnormal', 'nearMax', 'mixed', 'cancelling'] as const;
export type SampleKind = (typeof SAMPLE_KINDS)[number];

/** `k` addend vectors of length n of the given kind. */
export function addends(rng: Rng, kind: SampleKind, n: number, k: number): Float32Array[] {
  if (kind === 'cancelling') return cancelling(rng, n, k);
  const out: Float32Array[] = [];
  for (let j = 0; j < k; j++) {
    switch (kind) {
      case 'gradient':
        out.push(gradientLike(rng, n));
        break;
      case 'anyExponent':
        out.push(anyExponent(rng, n));
        break;
      case 'subnormal':
        out.push(anyExponent(rng, n, 0, 0));
        break;
      case 'nearMax':
        out.push(anyExponent(rng, n, 250, 254));
        break;
      case 'mixed': // a bit of everything per vector: gradients with wide outliers
        out.push(gradientLike(rng, n).map((v) => (rng.nextFloat() < 0.2 ? anyExponent(rng, 1)[0]! : v)));
        break;
    }
  }
  return out;
}

/** Sprinkles special values (NaN with payloads, ±Infinity, ±0) into `v` with probability p each. */
export function withSpecials(rng: Rng, v: Float32Array, p: number): Float32Array {
  const specials = [NaN, fromBits(0x7f800001), fromBits(0xffc12345), Infinity, -Infinity, 0, -0];
  const out = v.slice();
  for (let i = 0; i < out.length; i++) if (rng.nextFloat() < p) out[i] = specials[rng.nextBelow(specials.length)]!;
  return out;
}
