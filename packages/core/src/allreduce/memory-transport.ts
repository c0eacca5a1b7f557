/**
 * An in-process Transport group, for tests and single-process runs. It keeps the Transport
 * contract (transport.ts) to the letter, and adds ways to make things go wrong on purpose:
 * a delivery latency, unaligned payloads (as WebSocket frames arrive), receive timeouts, and
 * a rank that dies — after a given number of sends, or when `fail()` is called.
 *
 * A failure is a failure of the group, as when the coordinator tells every worker that one
 * was lost: every pending and later send/recv on every member rejects with a CollectiveError
 * 'PEER_FAILED' whose `rank` is the member that died, or, when a receive timed out,
 * 'RECV_TIMEOUT' whose `rank` is the member that was awaited (transport.ts). Without that, a ring
 * would hang at the ranks that do not neighbour the dead one. Matching, buffering and the
 * timeout rule are TagMailbox's (tag-mailbox.ts), shared with the WebSocket transport.
 */
import { TagMailbox, type TransportFailure } from './tag-mailbox.js';
import type { Transport } from './transport.js';

export interface MemoryTransportOptions {
  /** Delay before a sent payload reaches the receiver's mailbox (default 0: delivered at once). */
  latencyMs?: number;
  /** A recv that has not matched within this time fails the group with 'RECV_TIMEOUT' (default: never). */
  recvTimeoutMs?: number;
  /** Deliver payloads at byteOffset 1 of their buffer, as a pooled WebSocket Buffer may (default false). */
  unalignedPayloads?: boolean;
  /** Simulated crash: `rank` sends `afterSends` messages, then dies at its next send attempt. */
  failRank?: { rank: number; afterSends: number };
}

export interface MemoryTransport extends Transport {
  /** Simulates this rank dying now: the whole group fails with an error naming this rank. */
  fail(reason?: string): void;
}

const peerFailed = (rank: number, reason: string): TransportFailure => ({ code: 'PEER_FAILED', rank, summary: `rank ${rank} failed (${reason})` });

function checkNonNegative(name: string, value: number | undefined): void {
  if (value !== undefined && !(Number.isFinite(value) && value >= 0)) {
    throw new RangeError(`createMemoryTransports: ${name} must be a finite number >= 0, got ${value}`);
  }
}

/** Creates `size` connected transports; element i has rank i. */
export function createMemoryTransports(size: number, opts: MemoryTransportOptions = {}): MemoryTransport[] {
  if (!Number.isInteger(size) || size < 1) {
    throw new RangeError(`createMemoryTransports: size must be an integer >= 1, got ${size}`);
  }
  checkNonNegative('latencyMs', opts.latencyMs);
  checkNonNegative('recvTimeoutMs', opts.recvTimeoutMs);
  const failRank = opts.failRank;
  if (failRank !== undefined) {
    if (!Number.isInteger(failRank.rank) || failRank.rank < 0 || failRank.rank >= size) {
      throw new RangeError(`createMemoryTransports: failRank.rank must be an integer in [0, ${size - 1}], got ${failRank.rank}`);
    }
    if (!Number.isInteger(failRank.afterSends) || failRank.afterSends < 0) {
      throw new RangeError(`createMemoryTransports: failRank.afterSends must be an integer >= 0, got ${failRank.afterSends}`);
    }
  }
  const latencyMs = opts.latencyMs ?? 0;
  let failure: TransportFailure | undefined;
  const failGroup = (why: TransportFailure): void => {
    if (failure) return; // the first failure is the one reported
    failure = why;
    for (const member of members) member.mailbox.fail(why);
  };
  const members = Array.from({ length: size }, (_, rank) => ({
    mailbox: new TagMailbox({ rank, recvTimeoutMs: opts.recvTimeoutMs, failGroup }),
    sends: 0,
  }));
  const deliver = (to: number, from: number, tag: string, payload: Uint8Array): void => members[to]!.mailbox.deliver(from, tag, payload);

  const copyOf = (payload: Uint8Array): Uint8Array => {
    if (!opts.unalignedPayloads) return payload.slice();
    const padded = new Uint8Array(payload.byteLength + 1);
    padded.set(payload, 1);
    return padded.subarray(1);
  };

  const checkPeer = (self: number, op: string, peer: number): void => {
    if (!Number.isInteger(peer) || peer < 0 || peer >= size || peer === self) {
      throw new RangeError(`MemoryTransport rank ${self}: ${op} peer must be an integer in [0, ${size - 1}] other than ${self}, got ${peer}`);
    }
  };

  return members.map((member, self): MemoryTransport => ({
    rank: self,
    size,
    send(to: number, tag: string, payload: Uint8Array): Promise<void> {
      checkPeer(self, 'send', to);
      if (!(payload instanceof Uint8Array)) {
        throw new TypeError(`MemoryTransport rank ${self}: send payload must be a Uint8Array, got ${Object.prototype.toString.call(payload)}`);
      }
      if (failRank && failRank.rank === self && member.sends === failRank.afterSends) {
        failGroup(peerFailed(self, `simulated crash after ${failRank.afterSends} sends`));
      }
      if (failure) return Promise.reject(member.mailbox.errorFor(`send(to ${to}, "${tag}")`));
      member.sends++;
      const copy = copyOf(payload); // copied now: the caller may reuse its buffer once we resolve
      if (latencyMs > 0) setTimeout(() => deliver(to, self, tag, copy), latencyMs);
      else deliver(to, self, tag, copy);
      return Promise.resolve();
    },
    recv(from: number, tag: string): Promise<Uint8Array> {
      checkPeer(self, 'recv', from);
      return member.mailbox.recv(from, tag);
    },
    fail(reason = 'fail() called'): void {
      failGroup(peerFailed(self, reason));
    },
  }));
}
