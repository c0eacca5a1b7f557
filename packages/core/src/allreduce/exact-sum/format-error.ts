/**
 * Thrown when bytes given to ExactAccumulator.addEncoded (or decodeExactRange) are not an
 * exact-sum encoding this version understands, or do not fit the accumulator. The integration
 * that knows the sender wraps it (e.g. as a CollectiveError 'PAYLOAD_SIZE' naming the rank).
 */
export class ExactSumFormatError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'ExactSumFormatError';
  }
}
