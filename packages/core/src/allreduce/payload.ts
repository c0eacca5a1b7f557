/** A float32 vector as it travels in an allreduce: float32 bytes, or fp16 bytes when compressed. */
import type { Compression } from './allreduce-options.js';
import { bytesToFloat32, bytesToUint16, float32ToBytes, uint16ToBytes, type PayloadOrigin } from './codec.js';
import { addFp16Into, decodeFp16, encodeFp16 } from './fp16.js';

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

/**
 * target[i] += the i-th received value, in float32, checking the size as decodePayload does.
 * (Addition is commutative in IEEE arithmetic, so this equals incoming + target bit for bit.)
 */
export function addPayloadInto(target: Float32Array, bytes: Uint8Array, compress: Compression, origin: PayloadOrigin): void {
  if (compress === 'fp16') {
    addFp16Into(target, bytesToUint16(bytes, target.length, origin));
    return;
  }
  const x = bytesToFloat32(bytes, target.length, origin);
  for (let i = 0; i < target.length; i++) target[i] += x[i]!;
}
