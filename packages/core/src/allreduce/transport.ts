/**
 * The point-to-point channel the allreduce algorithms run over.
 *
 * Contract (what an implementation must guarantee, and what the algorithms rely on):
 *
 * - Ranks are 0..size-1; `send`/`recv` to or from your own rank, or an out-of-range rank,
 *   is a caller bug and throws a RangeError.
 * - Messages are matched by (from, tag): `recv(from, tag)` resolves with the next payload that
 *   `from` sent to this rank with exactly that tag. Payloads from one sender with one tag arrive
 *   in the order they were sent (FIFO); there is no ordering across different tags or senders.
 * - A payload that arrives before the matching `recv` is buffered, without limit, until it is
 *   asked for. Two `recv`s pending on the same (from, tag) are served in the order they were made.
 * - `send` resolves once the transport no longer needs the caller's buffer (it has copied it or
 *   handed it to the OS). The caller must not modify the buffer before that; after it, it may.
 *   Resolving does not mean the peer has received it.
 * - The payload delivered to `recv` never aliases the sender's memory, and it may start at any
 *   byteOffset (WebSocket frames often sit unaligned inside a pooled Buffer): decode it with
 *   codec.ts, which copies when the offset is not aligned.
 * - A failure never hangs, and it is a failure of the whole group: when a peer dies (or its link
 *   breaks) or a receive times out, every pending and later send/recv on every member rejects
 *   with a CollectiveError (collective-error.ts) whose `rank` names the peer at fault. So every
 *   rank of a collective fails, not only the neighbours of the dead one, and a ring can be
 *   re-formed from a clean slate. A member that learns of a failure first passes it on; the first
 *   failure a member learns of is the one its operations report.
 * - The receive-timeout rule: with a receive timeout set, a `recv` that has not matched within it
 *   rejects with 'RECV_TIMEOUT' whose `rank` is the rank it awaited, and the group fails with that
 *   same code and rank: every other pending and later operation, on this member and on the others,
 *   rejects with it. A timeout is never local to the one receive. (The silent rank is blamed even
 *   though it may be alive: it is the one the collective could not get past.)
 * - tag-mailbox.ts implements matching, buffering and the timeout rule once for every transport;
 *   transport-conformance.ts checks an implementation against this contract.
 *
 * Tags are plain strings chosen by the algorithms (`<opts.tag>/ring/rs/3`); a socket
 * implementation can send them in a small header in front of the binary payload.
 */
export interface Transport {
  /** This member's rank, 0..size-1. */
  readonly rank: number;
  /** Number of members in the group. */
  readonly size: number;
  send(to: number, tag: string, payload: Uint8Array): Promise<void>;
  recv(from: number, tag: string): Promise<Uint8Array>;
}
