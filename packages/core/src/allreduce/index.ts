// The public surface of allreduce/: algorithms, the Transport they run over, and their helpers.
export type { Transport } from './transport.js';
export { COLLECTIVE_ERROR_CODES, CollectiveError, type CollectiveErrorCode } from './collective-error.js';
export { TagMailbox, type TagMailboxOptions, type TransportFailure } from './tag-mailbox.js';
export { createMemoryTransports, type MemoryTransport, type MemoryTransportOptions } from './memory-transport.js';
export type { AllreduceOptions, Compression } from './allreduce-options.js';
export { starAllreduce } from './star.js';
export { ringAllreduce, type RingOptions } from './ring.js';
export { ringAllreduceExact, type RingExactOptions } from './ring-exact.js';
export { chunkBounds } from './chunk-bounds.js';
export { encodeFp16, decodeFp16, addFp16Into, float32BitsToFp16, fp16ToFloat32, roundToFp16InPlace } from './fp16.js';
export { float32ToBytes, uint16ToBytes, bytesToFloat32, bytesToUint16, type PayloadOrigin } from './codec.js';
export { encodePayload, decodePayload, addPayloadInto } from './payload.js';
export { ExactAccumulator, ExactSumFormatError, encodedRange, maxEncodedBytes, type ExactSumLayout } from './exact-sum/index.js';
export {
  predictAllreduceSeconds,
  predictStep,
  algBandwidth,
  busBandwidth,
  type AllreduceAlgorithm,
  type NetworkModel,
  type StepModelInput,
  type StepPrediction,
} from './simulate.js';
