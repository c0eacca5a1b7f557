/**
 * The wire format of an exact partial sum over a range of elements, little-endian:
 *
 *   offset 0   4 bytes  magic 0x58 0x53 ('XS'), version 1, 0
 *          4   u32      start: index of the first element of the range
 *          8   u32      count: number of elements
 *         12   u32      wide: number of wide entries (see below)
 *         16   ceil(count/2) bytes: for element j, len_j in 0..8 in the low (even j) or high
 *              (odd j) nibble of byte j>>1
 *          .   then, for each element in order, the len_j most significant bytes of its float64
 *              "head" (the 8-byte little-endian IEEE pattern with its len_j ... 7 bytes kept,
 *              the 8 - len_j low bytes being zero and dropped); +0 takes 0 bytes, -0 one
 *          .   then `wide` entries: u32 element index relative to start, u8 sign (0 or 1), u16
 *              n, then n bytes: the magnitude, little-endian, of the "tail", an integer number
 *              of units of 2^-149
 *
 * Element j's exact value is head_j + tail_j * 2^-149 (tail 0 when it has no entry); a NaN or
 * infinite head is the value (NaN is sent as the one quiet NaN 0x7ff8000000000000). Exact sums of
 * float32 values have short float64 patterns (about 24 + log2(addends) + exponent spread
 * significant bits), so typical gradient sums take about 5 bytes plus the half-byte length.
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

/** A decoded range: heads, and tails (index relative to start, nonzero integer of 2^-149 units). */
export interface DecodedExactRange {
  start: number;
  count: number;
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
): Uint8Array {
  const count = end - start;
  const tailBytes: Uint8Array[] = tails.map(([, t]) => magnitudeBytes(t < 0n ? -t : t));
  let tailSize = 0;
  for (const b of tailBytes) tailSize += 7 + b.length;
  const nibbles = (count + 1) >>> 1;
  const headsAt = HEADER_BYTES + nibbles;
  const out = new Uint8Array(headsAt + 8 * count + tailSize);
  const dv = new DataView(out.buffer);
  out[0] = MAGIC0;
  out[1] = MAGIC1;
  out[2] = VERSION;
  dv.setUint32(4, start, true);
  dv.setUint32(8, count, true);
  dv.setUint32(12, tails.length, true);

  const w = new Uint32Array(heads.buffer, heads.byteOffset + 8 * start, 2 * count);
  let pos = headsAt;
  for (let j = 0; j < count; j++) {
    let lo = w[2 * j + LO]!;
    let hi = w[2 * j + HI]!;
    if ((hi & 0x7ff00000) === 0x7ff00000 && ((hi & 0xfffff) | lo) !== 0) {
      hi = 0x7ff80000; // the one NaN
      lo = 0;
    }
    let len: number;
    if (lo !== 0) {
      const b0 = ctz(lo) >>> 3; // low bytes that are zero
      len = 8 - b0;
      for (let b = b0; b < 4; b++) out[pos++] = lo >>> (8 * b);
      out[pos++] = hi;
      out[pos++] = hi >>> 8;
      out[pos++] = hi >>> 16;
      out[pos++] = hi >>> 24;
    } else if (hi !== 0) {
      const b0 = ctz(hi) >>> 3;
      len = 4 - b0;
      for (let b = b0; b < 4; b++) out[pos++] = hi >>> (8 * b);
    } else {
      len = 0;
    }
    out[HEADER_BYTES + (j >>> 1)] |= len << ((j & 1) << 2);
  }
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
  const headsAt = HEADER_BYTES + ((count + 1) >>> 1);
  const fail = (what: string): never => {
    throw new ExactSumFormatError(`exact-sum encoding of ${count} elements from ${start}, ${bytes.byteLength} bytes: ${what}`);
  };
  if (bytes.byteLength < headsAt) fail('truncated in the lengths');
  const heads = new Float64Array(count);
  const w = new Uint32Array(heads.buffer);
  let pos = headsAt;
  let need = headsAt;
  for (let j = 0; j < count; j++) need += (bytes[HEADER_BYTES + (j >>> 1)]! >>> ((j & 1) << 2)) & 15;
  if (need > bytes.byteLength) fail('truncated in the values');
  for (let j = 0; j < count; j++) {
    const len = (bytes[HEADER_BYTES + (j >>> 1)]! >>> ((j & 1) << 2)) & 15;
    let lo = 0;
    let hi = 0;
    if (len > 4) {
      if (len > 8) fail(`element ${j} has length ${len}`);
      for (let b = 8 - len; b < 4; b++) lo |= bytes[pos++]! << (8 * b);
      hi = bytes[pos]! | (bytes[pos + 1]! << 8) | (bytes[pos + 2]! << 16) | (bytes[pos + 3]! << 24);
      pos += 4;
    } else {
      for (let b = 4 - len; b < 4; b++) hi |= bytes[pos++]! << (8 * b);
    }
    w[2 * j + LO] = lo;
    w[2 * j + HI] = hi;
    // Below 2^-97 (biased exponent < 926) a float64 can hold bits finer than 2^-149.
    if (((hi >>> 20) & 0x7ff) < 926 && !isMultipleOfUnit(heads[j]!)) fail(`element ${j} (${heads[j]}) is not a multiple of 2^-149`);
  }
  const tails: Array<[number, bigint]> = [];
  for (let k = 0; k < nTails; k++) {
    if (pos + 7 > bytes.byteLength) fail('truncated in the tails');
    const index = dv.getUint32(pos, true);
    const sign = bytes[pos + 4]!;
    const n = dv.getUint16(pos + 5, true);
    pos += 7;
    if (index >= count || sign > 1 || pos + n > bytes.byteLength) fail(`bad tail entry ${k} (index ${index}, sign ${sign}, ${n} bytes)`);
    const mag = bytesToMagnitude(bytes, pos, n);
    pos += n;
    tails.push([index, sign ? -mag : mag]);
  }
  if (pos !== bytes.byteLength) fail(`${bytes.byteLength - pos} bytes left over`);
  return { start, count, heads, tails };
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
