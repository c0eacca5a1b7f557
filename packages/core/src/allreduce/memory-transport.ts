/**
 * An in-process Transport group, for tests and single-process runs. It keeps the Transport
 * contract (transport.ts) to the letter, and adds ways to make things go wrong on purpose:
 * a delivery latency, unaligned payloads (as WebSocket frames arrive), receive timeouts, and
 * a rank that dies — after a given number of sends, or when `fail()` is called.
 *
 * A failure is a failure of the group, as when the coordinator tells every worker that one
 * was lost: every pending and later send/recv on every member rejects with a CollectiveError
 * 'PEER_FAILED' whose `rank` is the member that died. Without that, a ring would hang at the
 * ranks that do not neighbour the dead one.
 */
import { CollectiveError } from './collective-error.js';
import type { Transport } from './transport.js';

export interface MemoryTransportOptions {
  /** Delay before a sent payload reaches the receiver's mailbox (default 0: delivered at once). */
  latencyMs?: number;
  /** A recv that has not matched within this time rejects with 'RECV_TIMEOUT' (default: never). */
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

interface Waiter {
  resolve(payload: Uint8Array): void;
  reject(error: Error): void;
  timer: ReturnType<typeof setTimeout> | undefined;
  from: number;
  tag: string;
}

/** The state of one member: its mailbox of early arrivals and its pending receives. */
interface Member {
  readonly mailbox: Map<string, Uint8Array[]>;
  readonly waiters: Map<string, Waiter[]>;
  sends: number;
}

const key = (from: number, tag: string): string => `${from}\u0000${tag}`;

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
  const members: Member[] = Array.from({ length: size }, () => ({ mailbox: new Map(), waiters: new Map(), sends: 0 }));
  let failure: { rank: number; reason: string } | undefined;

  const failedError = (self: number, op: string): CollectiveError =>
    new CollectiveError('PEER_FAILED', failure!.rank, `rank ${self} ${op}: rank ${failure!.rank} failed (${failure!.reason})`);

  const failGroup = (rank: number, reason: string): void => {
    if (failure) return; // the first failure is the one reported
    failure = { rank, reason };
    members.forEach((member, self) => {
      for (const queue of member.waiters.values()) {
        for (const w of queue) {
          if (w.timer !== undefined) clearTimeout(w.timer);
          w.reject(failedError(self, `recv(from ${w.from}, "${w.tag}")`));
        }
      }
      member.waiters.clear();
      member.mailbox.clear();
    });
  };

  const deliver = (to: number, from: number, tag: string, payload: Uint8Array): void => {
    if (failure) return; // the group is gone; in-flight messages are lost with it
    const member = members[to]!;
    const k = key(from, tag);
    const waiting = member.waiters.get(k);
    const waiter = waiting?.shift();
    if (waiter) {
      if (waiting!.length === 0) member.waiters.delete(k);
      if (waiter.timer !== undefined) clearTimeout(waiter.timer);
      waiter.resolve(payload);
      return;
    }
    const queue = member.mailbox.get(k);
    if (queue) queue.push(payload);
    else member.mailbox.set(k, [payload]);
  };

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
        failGroup(self, `simulated crash after ${failRank.afterSends} sends`);
      }
      if (failure) return Promise.reject(failedError(self, `send(to ${to}, "${tag}")`));
      member.sends++;
      const copy = copyOf(payload); // copied now: the caller may reuse its buffer once we resolve
      if (latencyMs > 0) setTimeout(() => deliver(to, self, tag, copy), latencyMs);
      else deliver(to, self, tag, copy);
      return Promise.resolve();
    },
    recv(from: number, tag: string): Promise<Uint8Array> {
      checkPeer(self, 'recv', from);
      if (failure) return Promise.reject(failedError(self, `recv(from ${from}, "${tag}")`));
      const k = key(from, tag);
      const queue = member.mailbox.get(k);
      const early = queue?.shift();
      if (early) {
        if (queue!.length === 0) member.mailbox.delete(k);
        return Promise.resolve(early);
      }
      return new Promise<Uint8Array>((resolve, reject) => {
        const waiter: Waiter = { resolve, reject, timer: undefined, from, tag };
        if (opts.recvTimeoutMs !== undefined) {
          const ms = opts.recvTimeoutMs;
          waiter.timer = setTimeout(() => {
            const waiting = member.waiters.get(k);
            const at = waiting ? waiting.indexOf(waiter) : -1;
            if (at >= 0) waiting!.splice(at, 1);
            if (waiting && waiting.length === 0) member.waiters.delete(k);
            reject(new CollectiveError('RECV_TIMEOUT', from, `rank ${self}: no message "${tag}" from rank ${from} within ${ms} ms`));
          }, ms);
        }
        const waiting = member.waiters.get(k);
        if (waiting) waiting.push(waiter);
        else member.waiters.set(k, [waiter]);
      });
    },
    fail(reason = 'fail() called'): void {
      failGroup(self, reason);
    },
  }));
}
