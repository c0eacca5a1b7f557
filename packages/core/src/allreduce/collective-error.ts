/**
 * The one error type for a failed collective operation (a fault of a peer or of the link,
 * as opposed to a bad argument, which throws a TypeError/RangeError at once). Tests and
 * callers branch on the stable `code`, never on the message text.
 */
export const COLLECTIVE_ERROR_CODES = [
  /** A member of the group died or was disconnected; `rank` is that member. */
  'PEER_FAILED',
  /** No matching message arrived in time; `rank` is the peer that was awaited. */
  'RECV_TIMEOUT',
  /** A payload had the wrong size (ranks disagree on the vector length); `rank` is its sender. */
  'PAYLOAD_SIZE',
  /** The local transport was closed. */
  'TRANSPORT_CLOSED',
] as const;
export type CollectiveErrorCode = (typeof COLLECTIVE_ERROR_CODES)[number];

export class CollectiveError extends Error {
  readonly code: CollectiveErrorCode;
  /** The rank at fault (the failed peer, the silent peer, or the sender of a bad payload). */
  readonly rank: number;

  constructor(code: CollectiveErrorCode, rank: number, message: string) {
    super(message);
    this.name = 'CollectiveError';
    this.code = code;
    this.rank = rank;
  }
}
