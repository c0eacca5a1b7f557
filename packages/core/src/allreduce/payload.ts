/** A float32 vector as it travels in an allreduce: float32 bytes, or fp16 bytes when compressed. */
import type { Compression } from './allreduce-options.js';
import { bytesToFloat32, bytesToUint16, float32ToBytes, uint16ToBytes, type PayloadOrigin } from './codec.js';
import { decodeFp16, encodeFp16 } from './fp16.js';

/** The bytes to send for `values`. Uncompressed, this is a view of `values`' memory (no copy). */
export function encodePayload(values: Float32Array, compress: Compression): Uint8Array {
  return compress === 'fp16' ? uint16ToBytes(encodeFp16(values)) : float32ToBytes(values);
}

/**
 * The float32 values in received bytes, checked to hold exactly `length` elements (else a
 * CollectiveError 'PAYLOAD_SIZE' naming the sender). Uncompressed, this may be a view of `bytes`.
 */
export function decodePayload(bytes: Uint8Array, length: number, compress: Compression, origin: PayloadOrigin): Float32Array {
  return compress === 'fp16'
    ? decodeFp16(bytesToUint16(bytes, length, origin))
    : bytesToFloat32(bytes, length, origin);
}
