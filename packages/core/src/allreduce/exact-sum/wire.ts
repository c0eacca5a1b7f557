/**
 * The wire format of an exact partial sum over a range of elements, little-endian:
 *
 *   offset 0   4 bytes  magic 0x58 0x53 ('XS'), version 1, layout (0 packed, 1 raw)
 *          4   u32      start: index of the first element of the range
 *          8   u32      count: number of elements
 *         12   u32      wide: number of tail entries (see below)
 *   packed:
 *         16   ceil(count/2) bytes: for element j, len_j in 0..8 in the low (even j) or high
 *              (odd j) nibble of byte j>>1
 *          .   then, for each element in order, the len_j most significant bytes of its float64
 *              "head" (the 8-byte little-endian IEEE pattern with its len_j ... 7 bytes kept,
 *              the 8 - len_j low bytes being zero and dropped); +0 takes 0 bytes, -0 one
 *   raw:
 *         16   count float64 heads, 8 bytes each
 *   both:
 *          .   then `wide` tail entries: u32 element index relative to start, u8 sign (0 or 1),
 *              u16 n (at most 64), then n bytes: the magnitude, little-endian, of the tail, an
 *              integer number of units of 2^-149
 *
 * Finite heads must be multiples of 2^-149 below 2^201 in magnitude (2^73 additions of float32
 * max): the decoder refuses others, so adding decoded values can never overflow float64.
 *
 * Element j's exact value is head_j + tail_j * 2^-149 (tail 0 when it has no entry); a NaN or
 * infinite head is the value (NaN is sent as the one quiet NaN 0x7ff8000000000000). Exact sums of
 * float32 values have short float64 patterns (about 24 + log2(addends) + exponent spread
 * significant bits), so packed, typical gradient sums take about 5 bytes plus the half-byte
 * length. Raw costs 8 bytes an element but encodes and decodes about twice as fast (a copy and a
 * check), for links where CPU time matters more than bytes.
 * The encoder here writes the canonical form that ExactAccumulator keeps after normalising
 * (head = the float64 nearest the value, tail present only when it is non-zero, entries in
 * increasing index), so equal exact values encode to equal bytes; the decoder accepts any
 * head/tail split.
 */
import { ExactSumFormatError } from './format-error.js';
import { HI, LO, isMultipleOfUnit } from './float-bits.js';

const MAGIC0 = 0x58;
const MAGIC1 = 0x53;
const VERSION = 1;
const HEADER_BYTES = 16;
/** Finite heads are below 2^201; tails at most 64 bytes (2^512 units of 2^-149, 2^363). */
const MAX_HEAD_BIASED_EXPONENT = 1023 + 201;
const MAX_TAIL_BYTES = 64;
const HOST_LITTLE_ENDIAN = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1;

/** How heads travel: 'packed' (their significant bytes, ~5.5 B/element) or 'raw' (8 B/element, faster). */
export type ExactSumLayout = 'packed' | 'raw';

/**
 * The largest encoding of `count` elements that encode() can produce in either layout (every
 * element with a tail of the largest size the decoder accepts): a frame limit that no legitimate
 * encoding exceeds. Typical gradients take 8 B/element raw, about 5.5 packed.
 */
export function maxEncodedBytes(count: number): number {
  return HEADER_BYTES + ((count + 1) >>> 1) + count * (8 + 7 + MAX_TAIL_BYTES);
}

/** A decoded range: heads, and tails (index relative to start, nonzero integer of 2^-149 units). */
export interface DecodedExactRange {
  start: number;
  count: number;
  /** May be a view of the decoded bytes (raw layout). */
  heads: Float64Array;
  tails: Array<[number, bigint]>;
}

const ctz = (x: number): number => 31 - Math.clz32(x & -x);

/**
 * Encodes heads[start..end) with their tails (indices relative to start, increasing, values
 * nonzero). Returns a view of a buffer that may be larger than the view.
 */
export function encodeExactRange(
  heads: Float64Array,
  start: number,
  end: number,
  tails: ReadonlyArray<readonly [number, bigint]>,
  layout: ExactSumLayout = 'packed',
): Uint8Array {
  const count = end - start;
  const raw = layout === 'raw';
  const tailBytes: Uint8Array[] = tails.map(([, t]) => magnitudeBytes(t < 0n ? -t : t));
  let tailSize = 0;
  for (const b of tailBytes) tailSize += 7 + b.length;
  const headsAt = HEADER_BYTES + (raw ? 0 : (count + 1) >>> 1);
  const out = new Uint8Array(headsAt + 8 * count + tailSize);
  const dv = new DataView(out.buffer);
  out[0] = MAGIC0;
  out[1] = MAGIC1;
  out[2] = VERSION;
  out[3] = raw ? 1 : 0;
  dv.setUint32(4, start, true);
  dv.setUint32(8, count, true);
  dv.setUint32(12, tails.length, true);

  let pos = raw ? copyHeads(heads, start, count, out) : encodeHeads(heads, start, count, out, headsAt);
  for (let k = 0; k < tails.length; k++) {
    const [index, t] = tails[k]!;
    const mag = tailBytes[k]!;
    dv.setUint32(pos, index, true);
    out[pos + 4] = t < 0n ? 1 : 0;
    dv.setUint16(pos + 5, mag.length, true);
    out.set(mag, pos + 7);
    pos += 7 + mag.length;
  }
  return out.subarray(0, pos);
}

/** Raw layout: heads[start .. start+count) as float64 at HEADER_BYTES, NaN made canonical. */
function copyHeads(heads: Float64Array, start: number, count: number, out: Uint8Array): number {
  if (HOST_LITTLE_ENDIAN) {
    new Float64Array(out.buffer, HEADER_BYTES, count).set(heads.subarray(start, start + count));
    const w = new Uint32Array(out.buffer, HEADER_BYTES, 2 * count);
    for (let j = 0; j < count; j++) {
      const hi = w[2 * j + 1]!;
      if ((hi & 0x7ff00000) === 0x7ff00000 && ((hi & 0xfffff) | w[2 * j]!) !== 0) {
        w[2 * j + 1] = 0x7ff80000;
        w[2 * j] = 0;
      }
    }
  } else {
    const dv = new DataView(out.buffer);
    for (let j = 0; j < count; j++) {
      const v = heads[start + j]!;
      dv.setFloat64(HEADER_BYTES + 8 * j, v === v ? v : NaN, true);
    }
  }
  return HEADER_BYTES + 8 * count;
}

/** The hot loop of encoding: heads[start .. start+count) as lengths and bytes; returns the end. */
function encodeHeads(heads: Float64Array, start: number, count: number, out: Uint8Array, at: number): number {
  const w = new Uint32Array(heads.buffer, heads.byteOffset + 8 * start, 2 * count);
  let pos = at;
  let nibble = 0;
  for (let j = 0; j < count; j++) {
    let lo = w[2 * j + LO]!;
    let hi = w[2 * j + HI]!;
    if ((hi & 0x7ff00000) === 0x7ff00000 && ((hi & 0xfffff) | lo) !== 0) {
      hi = 0x7ff80000; // the one NaN
      lo = 0;
    }
    // len = the bytes from the lowest nonzero one up; written low to high, unrolled by len.
    const len = lo !== 0 ? 8 - (ctz(lo) >>> 3) : hi !== 0 ? 4 - (ctz(hi) >>> 3) : 0;
    if (len > 4) {
      if (len === 8) out[pos++] = lo;
      if (len >= 7) out[pos++] = lo >>> 8;
      if (len >= 6) out[pos++] = lo >>> 16;
      out[pos++] = lo >>> 24;
      out[pos++] = hi;
      out[pos++] = hi >>> 8;
      out[pos++] = hi >>> 16;
      out[pos++] = hi >>> 24;
    } else if (len > 0) {
      if (len === 4) out[pos++] = hi;
      if (len >= 3) out[pos++] = hi >>> 8;
      if (len >= 2) out[pos++] = hi >>> 16;
      out[pos++] = hi >>> 24;
    }
    if (j & 1) out[HEADER_BYTES + (j >>> 1)] = nibble | (len << 4);
    else nibble = len;
  }
  if (count & 1) out[HEADER_BYTES + (count >>> 1)] = nibble;
  return pos;
}

/** The range [start, end) that encoded bytes cover, from their header (checked). */
export function encodedRange(bytes: Uint8Array): { start: number; end: number } {
  const dv = checkHeader(bytes);
  const start = dv.getUint32(4, true);
  return { start, end: start + dv.getUint32(8, true) };
}

function checkHeader(bytes: Uint8Array): DataView {
  if (bytes.byteLength < HEADER_BYTES || bytes[0] !== MAGIC0 || bytes[1] !== MAGIC1) {
    throw new ExactSumFormatError(`not an exact-sum encoding (${bytes.byteLength} bytes, no 'XS' header)`);
  }
  if (bytes[2] !== VERSION) {
    throw new ExactSumFormatError(`exact-sum encoding version ${bytes[2]}, this build reads version ${VERSION}`);
  }
  return new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
}

/** Decodes bytes from encodeExactRange, checking every length and that values are exact sums. */
export function decodeExactRange(bytes: Uint8Array): DecodedExactRange {
  const dv = checkHeader(bytes);
  const start = dv.getUint32(4, true);
  const count = dv.getUint32(8, true);
  const nTails = dv.getUint32(12, true);
  const raw = bytes[3] === 1;
  const fail = (what: string): never => formatError(start, count, dv.byteLength, what);
  if (bytes[3]! > 1) fail(`unknown layout ${bytes[3]}`);
  let heads: Float64Array;
  let pos: number;
  if (raw) {
    pos = HEADER_BYTES + 8 * count;
    if (pos > bytes.byteLength) fail('truncated in the values');
    heads = rawHeads(bytes, count);
    const bad = checkUnits(heads);
    if (bad >= 0) fail(`element ${bad} (${heads[bad]}) is no exact float32 sum (not a multiple of 2^-149, or 2^201 or more)`);
  } else {
    const headsAt = HEADER_BYTES + ((count + 1) >>> 1);
    if (bytes.byteLength < headsAt) fail('truncated in the lengths');
    heads = new Float64Array(count);
    pos = headsAt + payloadLength(bytes, count);
    if (pos > bytes.byteLength) fail('truncated in the values');
    const bad = decodeHeads(bytes, headsAt, heads);
    if (bad >= 0) {
      fail(bad < count ? `element ${bad} (${heads[bad]}) is no exact float32 sum (not a multiple of 2^-149, or 2^201 or more)` : `element ${bad - count} has a length over 8`);
    }
  }
  const tails: Array<[number, bigint]> = [];
  for (let k = 0; k < nTails; k++) {
    if (pos + 7 > bytes.byteLength) fail('truncated in the tails');
    const index = dv.getUint32(pos, true);
    const sign = bytes[pos + 4]!;
    const n = dv.getUint16(pos + 5, true);
    pos += 7;
    if (index >= count || sign > 1 || n > MAX_TAIL_BYTES || pos + n > bytes.byteLength) fail(`bad tail entry ${k} (index ${index}, sign ${sign}, ${n} bytes)`);
    const mag = bytesToMagnitude(bytes, pos, n);
    pos += n;
    tails.push([index, sign ? -mag : mag]);
  }
  if (pos !== bytes.byteLength) fail(`${bytes.byteLength - pos} bytes left over`);
  return { start, count, heads, tails };
}

/** Raw layout: the heads as a view of `bytes` when aligned (and little-endian), else a copy. */
function rawHeads(bytes: Uint8Array, count: number): Float64Array {
  const at = bytes.byteOffset + HEADER_BYTES;
  if (HOST_LITTLE_ENDIAN && at % 8 === 0) return new Float64Array(bytes.buffer, at, count);
  const heads = new Float64Array(count);
  const dv = new DataView(bytes.buffer, at, 8 * count);
  for (let j = 0; j < count; j++) heads[j] = dv.getFloat64(8 * j, true);
  return heads;
}

/**
 * Whether a decoded head with this biased exponent can be an exact sum of float32 values: a
 * multiple of 2^-149 (only a head below 2^-97, biased exponent < 926, can hold finer bits) and,
 * if finite, below 2^201 (2^73 additions of float32 max), so that adding decoded heads can
 * never overflow float64.
 */
function possibleHead(biasedExponent: number, v: number): boolean {
  if (biasedExponent < 926) return isMultipleOfUnit(v);
  return biasedExponent < MAX_HEAD_BIASED_EXPONENT || biasedExponent === 0x7ff;
}

/** -1, or the first j whose heads[j] is not a possible head (see possibleHead). */
function checkUnits(heads: Float64Array): number {
  const w = new Uint32Array(heads.buffer, heads.byteOffset, 2 * heads.length);
  for (let j = 0; j < heads.length; j++) {
    if (!possibleHead((w[2 * j + HI]! >>> 20) & 0x7ff, heads[j]!)) return j;
  }
  return -1;
}

/** The sum of the lengths of `count` elements (each a nibble from HEADER_BYTES on). */
function payloadLength(bytes: Uint8Array, count: number): number {
  let sum = 0;
  for (let j = 0; j < count; j++) sum += (bytes[HEADER_BYTES + (j >>> 1)]! >>> ((j & 1) << 2)) & 15;
  return sum;
}

/**
 * The hot loop of decoding (its own function so that the JIT optimises it alone, not with the
 * cold code after it): fills `heads` from the lengths at HEADER_BYTES and the values at `pos`
 * (checked to be there). Returns -1, or j for element j not a multiple of 2^-149, or count + j
 * for element j with a length over 8.
 */
function decodeHeads(bytes: Uint8Array, pos: number, heads: Float64Array): number {
  const count = heads.length;
  const w = new Uint32Array(heads.buffer, heads.byteOffset, 2 * count);
  for (let j = 0; j < count; j++) {
    const len = (bytes[HEADER_BYTES + (j >>> 1)]! >>> ((j & 1) << 2)) & 15;
    // The len high bytes of the float64, low to high (unrolled; the rest stay zero).
    let lo = 0;
    let hi = 0;
    switch (len) {
      case 0:
        break;
      case 1:
        hi = bytes[pos]! << 24;
        break;
      case 2:
        hi = (bytes[pos]! << 16) | (bytes[pos + 1]! << 24);
        break;
      case 3:
        hi = (bytes[pos]! << 8) | (bytes[pos + 1]! << 16) | (bytes[pos + 2]! << 24);
        break;
      case 4:
        hi = bytes[pos]! | (bytes[pos + 1]! << 8) | (bytes[pos + 2]! << 16) | (bytes[pos + 3]! << 24);
        break;
      case 5:
        lo = bytes[pos]! << 24;
        hi = bytes[pos + 1]! | (bytes[pos + 2]! << 8) | (bytes[pos + 3]! << 16) | (bytes[pos + 4]! << 24);
        break;
      case 6:
        lo = (bytes[pos]! << 16) | (bytes[pos + 1]! << 24);
        hi = bytes[pos + 2]! | (bytes[pos + 3]! << 8) | (bytes[pos + 4]! << 16) | (bytes[pos + 5]! << 24);
        break;
      case 7:
        lo = (bytes[pos]! << 8) | (bytes[pos + 1]! << 16) | (bytes[pos + 2]! << 24);
        hi = bytes[pos + 3]! | (bytes[pos + 4]! << 8) | (bytes[pos + 5]! << 16) | (bytes[pos + 6]! << 24);
        break;
      case 8:
        lo = bytes[pos]! | (bytes[pos + 1]! << 8) | (bytes[pos + 2]! << 16) | (bytes[pos + 3]! << 24);
        hi = bytes[pos + 4]! | (bytes[pos + 5]! << 8) | (bytes[pos + 6]! << 16) | (bytes[pos + 7]! << 24);
        break;
      default:
        return count + j;
    }
    pos += len;
    w[2 * j + LO] = lo;
    w[2 * j + HI] = hi;
    if (!possibleHead((hi >>> 20) & 0x7ff, heads[j]!)) return j;
  }
  return -1;
}

function formatError(start: number, count: number, byteLength: number, what: string): never {
  throw new ExactSumFormatError(`exact-sum encoding of ${count} elements from ${start}, ${byteLength} bytes: ${what}`);
}

function magnitudeBytes(m: bigint): Uint8Array {
  let hex = m.toString(16);
  if (hex.length & 1) hex = '0' + hex;
  const n = hex.length >>> 1;
  const out = new Uint8Array(n);
  for (let i = 0; i < n; i++) out[i] = parseInt(hex.slice(hex.length - 2 * i - 2, hex.length - 2 * i), 16);
  return out;
}

function bytesToMagnitude(bytes: Uint8Array, at: number, n: number): bigint {
  if (n === 0) return 0n;
  let hex = '';
  for (let i = at + n - 1; i >= at; i--) hex += bytes[i]!.toString(16).padStart(2, '0');
  return BigInt('0x' + hex);
}
