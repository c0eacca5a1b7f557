/**
 * How typed arrays travel as bytes: little-endian, no header. Sending is free (a Uint8Array
 * view of the same memory); receiving is a view too unless the payload sits at a byteOffset
 * the element type cannot start at, in which case it is copied into a fresh aligned buffer.
 *
 * (No msgpackr here: with a default Packr it silently corrupts Float32Array — see DESIGN.md.)
 */
import { CollectiveError } from './collective-error.js';

/** Every platform Node runs on today is little-endian; the byte-swapping paths keep us honest. */
const HOST_LITTLE_ENDIAN = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1;

/** The bytes of `values` as a view of the same memory (little-endian on the wire). */
export function float32ToBytes(values: Float32Array): Uint8Array {
  if (HOST_LITTLE_ENDIAN) return new Uint8Array(values.buffer, values.byteOffset, values.byteLength);
  const out = new Uint8Array(values.byteLength);
  const dv = new DataView(out.buffer);
  for (let i = 0; i < values.length; i++) dv.setFloat32(i * 4, values[i]!, true);
  return out;
}

/** The bytes of `values` as a view of the same memory (little-endian on the wire). */
export function uint16ToBytes(values: Uint16Array): Uint8Array {
  if (HOST_LITTLE_ENDIAN) return new Uint8Array(values.buffer, values.byteOffset, values.byteLength);
  const out = new Uint8Array(values.byteLength);
  const dv = new DataView(out.buffer);
  for (let i = 0; i < values.length; i++) dv.setUint16(i * 2, values[i]!, true);
  return out;
}

/** Where a payload came from, for error messages. */
export interface PayloadOrigin {
  /** The rank that sent it. */
  from: number;
  /** What it was, e.g. `ringAllreduce: chunk 2 (tag "allreduce/ring/rs/1")`. */
  what: string;
}

function checkLength(bytes: Uint8Array, width: number, expected: number | undefined, origin?: PayloadOrigin): void {
  const count = bytes.byteLength / width;
  const ok = bytes.byteLength % width === 0 && (expected === undefined || count === expected);
  if (ok) return;
  const where = origin ? `${origin.what} from rank ${origin.from}` : 'payload';
  const want = expected === undefined ? `a multiple of ${width}` : `${expected * width} (${expected} elements of ${width} bytes)`;
  throw new CollectiveError(
    'PAYLOAD_SIZE',
    origin?.from ?? -1,
    `${where}: got ${bytes.byteLength} bytes, expected ${want}; do all ranks reduce vectors of the same length?`,
  );
}

/**
 * Reads float32 values from received bytes: a view when the offset is 4-aligned, else a copy.
 * With `expectedLength`, a size mismatch throws a CollectiveError 'PAYLOAD_SIZE' naming the sender.
 */
export function bytesToFloat32(bytes: Uint8Array, expectedLength?: number, origin?: PayloadOrigin): Float32Array {
  checkLength(bytes, 4, expectedLength, origin);
  const n = bytes.byteLength / 4;
  if (!HOST_LITTLE_ENDIAN) {
    const out = new Float32Array(n);
    const dv = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    for (let i = 0; i < n; i++) out[i] = dv.getFloat32(i * 4, true);
    return out;
  }
  if (bytes.byteOffset % 4 === 0) return new Float32Array(bytes.buffer, bytes.byteOffset, n);
  const aligned = new Uint8Array(bytes.byteLength);
  aligned.set(bytes);
  return new Float32Array(aligned.buffer, 0, n);
}

/** Reads uint16 values (e.g. fp16 bits) from received bytes: a view when 2-aligned, else a copy. */
export function bytesToUint16(bytes: Uint8Array, expectedLength?: number, origin?: PayloadOrigin): Uint16Array {
  checkLength(bytes, 2, expectedLength, origin);
  const n = bytes.byteLength / 2;
  if (!HOST_LITTLE_ENDIAN) {
    const out = new Uint16Array(n);
    const dv = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    for (let i = 0; i < n; i++) out[i] = dv.getUint16(i * 2, true);
    return out;
  }
  if (bytes.byteOffset % 2 === 0) return new Uint16Array(bytes.buffer, bytes.byteOffset, n);
  const aligned = new Uint8Array(bytes.byteLength);
  aligned.set(bytes);
  return new Uint16Array(aligned.buffer, 0, n);
}
