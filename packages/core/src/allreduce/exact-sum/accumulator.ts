/**
 * ExactAccumulator: per element, the exact real sum of every float32 value added to it, so its
 * value does not depend on the order or grouping of the additions, and toFloat32 rounds that
 * real sum once (to nearest, ties to even), as one float32 rounding of the true sum would.
 *
 * Representation. Element i holds a float64 head h[i] and, rarely, a bigint tail t[i]: its value
 * is h[i] + t[i] * 2^-149 exactly (every sum of float32 values is a multiple of 2^-149). Adding x
 * computes s = h + x in float64 and its exact rounding error e (Knuth's TwoSum, branch-free, six
 * flops); h becomes s, and only when e != 0, which needs the sum's bits to span more than 53
 * positions (e.g. 1e-3 plus 1e-13), e goes into the tail with bigint arithmetic. Gradient-like
 * data (values within a few binary orders of magnitude of each other) never leaves the float64
 * path, so adding costs about one float64 add-and-check per element and rounding to float32 is a
 * plain float64 -> float32 store; data that does (wide exponent spreads per element) costs
 * bigint arithmetic: about 0.2 us per inexact add and 0.45 us per such element read out.
 *
 * Special values follow IEEE addition, which is order-independent for them: any NaN gives NaN, +Inf
 * with -Inf gives NaN, otherwise an infinity wins over any finite sum. A finite sum of finite
 * float32 values that exceeds float32's range is kept exactly and rounds to ±Infinity only in
 * toFloat32 (it can come back into range if later addends cancel it). NaN is always read out
 * as the one quiet NaN (float32 0x7fc00000, float64 0x7ff8000000000000).
 *
 * Signed zero: an exact sum of zero is -0 when every addend is -0 (and when there is none: -0 is
 * IEEE's additive identity), else +0 (IEEE's rule for exact zero sums, applied to the whole set).
 *
 * Limits: none in practice on the number of addends; each float64 addition is checked, so no
 * count makes the head lose bits, and the tail is unbounded. A head beyond 2^1023 in magnitude
 * (more than 2^895 float32 additions) throws a RangeError rather than overflowing; encodings
 * carry heads below 2^201 only (see wire.ts), far beyond any real count of additions.
 */
import { ExactSumFormatError } from './format-error.js';
import { roundScaled, toScaled } from './float-bits.js';
import { decodeExactRange, encodeExactRange, type ExactSumLayout } from './wire.js';

const CANONICAL_NAN32 = 0x7fc00000;

/** Element index -> nonzero bigint number of 2^-149 units; only elements with a finite head have one. */
type Tails = Map<number, bigint>;

export class ExactAccumulator {
  readonly length: number;
  /** Heads: the float64 part of each element (the whole value unless the element has a tail). */
  private readonly heads: Float64Array;
  /** Tails: element index -> nonzero bigint number of 2^-149 units; only finite heads have one. */
  private readonly tails: Tails = new Map<number, bigint>();

  constructor(length: number) {
    if (!Number.isInteger(length) || length < 0 || length > 2 ** 32 - 1) {
      throw new RangeError(`ExactAccumulator: length must be an integer in [0, 2^32), got ${length}`);
    }
    this.length = length;
    this.heads = new Float64Array(length).fill(-0);
  }

  /** The exact sum of the encoded range in `bytes`, as a new accumulator of that range's length. */
  static fromEncoded(bytes: Uint8Array): ExactAccumulator {
    const d = decodeExactRange(bytes);
    const acc = new ExactAccumulator(d.count);
    acc.addDecoded(d.heads, 0, d.tails);
    return acc;
  }

  /** Adds values[j] to element offset + j, for every j, exactly. */
  add(values: Float32Array, offset = 0): this {
    this.checkSpan('add', offset, values.length);
    addFloat32(this.heads, this.tails, values, offset);
    return this;
  }

  /** Adds the exact value of each element of `other` to element offset + j (other may be this). */
  merge(other: ExactAccumulator, offset = 0): this {
    this.checkSpan('merge', offset, other.length);
    addFloat64(this.heads, this.tails, other.heads, offset);
    // (Merging into itself, offset 0: doubling a head is exact, so no tail appears during the
    // loop above, and adding to the tails visited below changes no key of the map.)
    for (const [j, t] of other.tails) addTail(this.heads, this.tails, offset + j, t);
    return this;
  }

  /**
   * The bytes of elements [start, end) (see wire.ts; a ring chunk passes its bounds). Normalises
   * those elements first (same values, canonical head/tail split), so the bytes depend on the
   * exact values and the layout only ('packed', the default: about 5.5 bytes an element for
   * gradient sums; 'raw': 8, faster to make and read). Returns a view of a buffer that may be larger.
   */
  encode(start = 0, end = this.length, layout: ExactSumLayout = 'packed'): Uint8Array {
    this.checkRange('encode', start, end);
    return encodeExactRange(this.heads, start, end, this.normalize(start, end), layout);
  }

  /**
   * Adds the range encoded in `bytes` (from encode, on any accumulator) at the elements it was
   * taken from (its start), or at `at` when given. Throws ExactSumFormatError for bytes that are
   * not an encoding or do not fit.
   */
  addEncoded(bytes: Uint8Array, at?: number): this {
    const d = decodeExactRange(bytes);
    const offset = at ?? d.start;
    if (!Number.isInteger(offset) || offset < 0 || offset + d.count > this.length) {
      throw new ExactSumFormatError(
        `exact-sum encoding of ${d.count} elements placed at ${offset} does not fit an accumulator of ${this.length}`,
      );
    }
    this.addDecoded(d.heads, offset, d.tails);
    return this;
  }

  /**
   * Elements [start, end) rounded once to float32 (nearest, ties to even; ±Infinity past the
   * float32 range), written to out[0 .. end-start) and returned (a new array by default).
   */
  toFloat32(out?: Float32Array, start = 0, end = this.length): Float32Array {
    this.checkRange('toFloat32', start, end);
    const n = end - start;
    const dst = out ?? new Float32Array(n);
    if (dst.length < n) throw new RangeError(`toFloat32: out has ${dst.length} elements, the range ${n}`);
    const heads = this.heads;
    let bits: Uint32Array | undefined;
    for (let j = 0; j < n; j++) {
      const v = heads[start + j]!;
      dst[j] = v; // float64 -> float32: IEEE round to nearest even, overflow to ±Infinity
      // NaN payloads: one canonical quiet NaN whatever came in.
      if (v !== v) (bits ??= new Uint32Array(dst.buffer, dst.byteOffset, n))[j] = CANONICAL_NAN32;
    }
    for (const [i, t] of this.tails) {
      if (i >= start && i < end) dst[i - start] = roundScaled(toScaled(heads[i]!) + t, 24);
    }
    return dst;
  }

  /** Elements [start, end) rounded once to float64 (nearest, ties to even). */
  toFloat64(out?: Float64Array, start = 0, end = this.length): Float64Array {
    this.checkRange('toFloat64', start, end);
    const n = end - start;
    const dst = out ?? new Float64Array(n);
    if (dst.length < n) throw new RangeError(`toFloat64: out has ${dst.length} elements, the range ${n}`);
    const heads = this.heads;
    for (let j = 0; j < n; j++) {
      const v = heads[start + j]!;
      dst[j] = v === v ? v : NaN;
    }
    for (const [i, t] of this.tails) {
      if (i >= start && i < end) dst[i - start] = roundScaled(toScaled(heads[i]!) + t, 53);
    }
    return dst;
  }

  /** Empties elements [start, end) (back to the empty sum). */
  reset(start = 0, end = this.length): this {
    this.checkRange('reset', start, end);
    this.heads.fill(-0, start, end);
    if (start === 0 && end === this.length) this.tails.clear();
    else for (const i of [...this.tails.keys()]) if (i >= start && i < end) this.tails.delete(i);
    return this;
  }

  /** How many elements hold a bigint tail now (their sums did not fit a float64): a diagnostic. */
  get wideElements(): number {
    return this.tails.size;
  }

  private addDecoded(heads: Float64Array, offset: number, tails: ReadonlyArray<readonly [number, bigint]>): void {
    addFloat64(this.heads, this.tails, heads, offset);
    for (const [j, t] of tails) if (t !== 0n) addTail(this.heads, this.tails, offset + j, t);
  }

  /**
   * Rewrites the elements with a tail in [start, end) so the head is the float64 nearest the
   * value and the tail what remains (dropped when zero); returns those tails, relative to
   * start, in increasing index order.
   */
  private normalize(start: number, end: number): Array<[number, bigint]> {
    const out: Array<[number, bigint]> = [];
    for (const [i, t] of this.tails) {
      if (i < start || i >= end) continue;
      const total = toScaled(this.heads[i]!) + t;
      const head = roundScaled(total, 53);
      const rest = total - toScaled(head);
      this.heads[i] = head;
      if (rest === 0n) this.tails.delete(i);
      else {
        this.tails.set(i, rest);
        out.push([i - start, rest]);
      }
    }
    return out.sort((x, y) => x[0] - y[0]);
  }

  private checkSpan(what: string, offset: number, n: number): void {
    if (!Number.isInteger(offset) || offset < 0 || offset + n > this.length) {
      throw new RangeError(`ExactAccumulator.${what}: ${n} values at offset ${offset} do not fit length ${this.length}`);
    }
  }

  private checkRange(what: string, start: number, end: number): void {
    if (!Number.isInteger(start) || !Number.isInteger(end) || start < 0 || end < start || end > this.length) {
      throw new RangeError(`ExactAccumulator.${what}: range [${start}, ${end}) is not within [0, ${this.length})`);
    }
  }
}

/**
 * heads[offset + j] += values[j] for every j, exactly: the hot loops (one per element type, so
 * each stays monomorphic). TwoSum gives the rounding error of each float64 sum; the rare inexact
 * (or non-finite) sums are settled below.
 */
function addFloat32(heads: Float64Array, tails: Tails, values: Float32Array, offset: number): void {
  const n = values.length;
  for (let j = 0; j < n; j++) {
    const i = offset + j;
    const a = heads[i]!;
    const b = values[j]!;
    const s = a + b;
    const bv = s - a;
    const err = a - (s - bv) + (b - bv);
    heads[i] = s;
    if (err !== 0) settle(heads, tails, i, a, b, s, err);
  }
}

function addFloat64(heads: Float64Array, tails: Tails, values: Float64Array, offset: number): void {
  const n = values.length;
  for (let j = 0; j < n; j++) {
    const i = offset + j;
    const a = heads[i]!;
    const b = values[j]!;
    const s = a + b;
    const bv = s - a;
    const err = a - (s - bv) + (b - bv);
    heads[i] = s;
    if (err !== 0) settle(heads, tails, i, a, b, s, err);
  }
}

/** Called by the add loops when float64 s = a + b, now heads[i], was inexact (err != 0) or is not finite. */
function settle(heads: Float64Array, tails: Tails, i: number, a: number, b: number, s: number, err: number): void {
  if (s - s === 0) {
    // Finite, so err is the exact, nonzero rounding error: a multiple of 2^-149 as a, b are.
    addTail(heads, tails, i, toScaled(err));
  } else if (a - a === 0 && b - b === 0) {
    throw new RangeError(`ExactAccumulator: element ${i} passed 2^1024 in magnitude (more than 2^895 float32 additions?)`);
  } else {
    tails.delete(i); // NaN or an infinity: it stays one whatever is added later
  }
}

/** Adds t units of 2^-149 to element i's tail (nothing once the head is NaN or infinite). */
function addTail(heads: Float64Array, tails: Tails, i: number, t: bigint): void {
  const h = heads[i]!;
  if (h - h !== 0) return; // NaN or infinite: finite parts no longer matter
  if (h === 0) heads[i] = 0; // a nonzero addend was involved: an exact zero is +0
  const sum = (tails.get(i) ?? 0n) + t;
  if (sum === 0n) tails.delete(i);
  else tails.set(i, sum);
}
