/**
 * The receiving half of a Transport (transport.ts), written once for every implementation: the
 * payloads that reached one member, matched to its receives by (from, tag).
 *
 * - `deliver` hands a payload to the oldest receive pending on its (from, tag), or buffers it,
 *   without limit, until one asks; so payloads from one sender with one tag come out FIFO, and two
 *   receives pending on one (from, tag) are served in the order they were made.
 * - With `recvTimeoutMs`, a receive that has not matched in time fails the group, as transport.ts
 *   says: that receive rejects with 'RECV_TIMEOUT' naming the rank it awaited, the mailbox fails
 *   with the same code and rank (every other pending and later receive here rejects), and
 *   `failGroup` is called once so that the transport spreads the failure to the other members.
 * - `fail` ends the mailbox: every pending receive rejects, buffered payloads are dropped, later
 *   receives reject at once and later deliveries are ignored. The first failure is the one kept.
 *
 * The mailbox does not check ranks or copy payloads: the transport does that before calling it.
 */
import { CollectiveError, type CollectiveErrorCode } from './collective-error.js';

/** Why a member's transport stopped: what every operation on it rejects with from then on. */
export interface TransportFailure {
  code: CollectiveErrorCode;
  /** The rank at fault (the dead peer, the awaited peer, ...), as CollectiveError.rank. */
  rank: number;
  /** What happened, without the member and operation, e.g. `rank 2 failed (its link was lost)`. */
  summary: string;
}

export interface TagMailboxOptions {
  /** The rank of the member that owns the mailbox (it goes into error messages). */
  rank: number;
  /** A receive that has not matched within this many ms fails the group (default: never). */
  recvTimeoutMs?: number;
  /**
   * Called once, after the mailbox has failed itself, when one of its receives timed out: the
   * transport must fail its whole group with `failure` (the receive-timeout rule of transport.ts).
   */
  failGroup(failure: TransportFailure): void;
}

interface Waiter {
  readonly from: number;
  readonly tag: string;
  resolve(payload: Uint8Array): void;
  reject(error: Error): void;
  timer: ReturnType<typeof setTimeout> | undefined;
}

const key = (from: number, tag: string): string => `${from}\u0000${tag}`;

export class TagMailbox {
  readonly rank: number;
  private readonly recvTimeoutMs: number | undefined;
  private readonly failGroup: (failure: TransportFailure) => void;
  /** Payloads that arrived before their receive, by (from, tag), oldest first. */
  private readonly buffered = new Map<string, Uint8Array[]>();
  /** Receives waiting for a payload, by (from, tag), oldest first. */
  private readonly waiters = new Map<string, Waiter[]>();
  private failed: TransportFailure | undefined;

  constructor(opts: TagMailboxOptions) {
    const ms = opts.recvTimeoutMs;
    if (ms !== undefined && !(Number.isFinite(ms) && ms >= 0)) {
      throw new RangeError(`TagMailbox: recvTimeoutMs must be a finite number >= 0, got ${ms}`);
    }
    this.rank = opts.rank;
    this.recvTimeoutMs = ms;
    this.failGroup = opts.failGroup;
  }

  /** The failure this mailbox ended with, if it has. */
  get failure(): TransportFailure | undefined {
    return this.failed;
  }

  /** The error an operation `op` (e.g. `send(to 1, "t")`) on this member rejects with once it has failed. */
  errorFor(op: string): CollectiveError {
    const f = this.failed;
    if (!f) throw new Error(`TagMailbox rank ${this.rank}: errorFor(${op}) before any failure`);
    return new CollectiveError(f.code, f.rank, `rank ${this.rank} ${op}: ${f.summary}`);
  }

  /** Hands `payload` from `from` to the oldest receive waiting on (from, tag), or keeps it for a later one. */
  deliver(from: number, tag: string, payload: Uint8Array): void {
    if (this.failed) return; // the group is gone; in-flight messages are lost with it
    const k = key(from, tag);
    const waiting = this.waiters.get(k);
    const waiter = waiting?.shift();
    if (waiter) {
      if (waiting!.length === 0) this.waiters.delete(k);
      if (waiter.timer !== undefined) clearTimeout(waiter.timer);
      waiter.resolve(payload);
      return;
    }
    const queue = this.buffered.get(k);
    if (queue) queue.push(payload);
    else this.buffered.set(k, [payload]);
  }

  /** True when a payload from `from` with `tag` is waiting to be received. */
  hasBuffered(from: number, tag: string): boolean {
    return this.buffered.has(key(from, tag));
  }

  /** The tag of a receive pending on `from`, if there is one. */
  pendingTagFrom(from: number): string | undefined {
    for (const queue of this.waiters.values()) {
      if (queue[0]!.from === from) return queue[0]!.tag;
    }
    return undefined;
  }

  /** The next payload from `from` with `tag`: a buffered one at once, or the next to be delivered. */
  recv(from: number, tag: string): Promise<Uint8Array> {
    if (this.failed) return Promise.reject(this.errorFor(`recv(from ${from}, "${tag}")`));
    const k = key(from, tag);
    const queue = this.buffered.get(k);
    const early = queue?.shift();
    if (early) {
      if (queue!.length === 0) this.buffered.delete(k);
      return Promise.resolve(early);
    }
    return new Promise<Uint8Array>((resolve, reject) => {
      const waiter: Waiter = { from, tag, resolve, reject, timer: undefined };
      const ms = this.recvTimeoutMs;
      if (ms !== undefined) waiter.timer = setTimeout(() => this.timedOut(k, waiter, ms), ms);
      const waiting = this.waiters.get(k);
      if (waiting) waiting.push(waiter);
      else this.waiters.set(k, [waiter]);
    });
  }

  /**
   * Ends the mailbox with `failure` (the first call wins): rejects every pending receive, drops the
   * buffered payloads. Returns false when it had already failed.
   */
  fail(failure: TransportFailure): boolean {
    if (this.failed) return false;
    this.failed = failure;
    const pending = [...this.waiters.values()].flat();
    this.waiters.clear();
    this.buffered.clear();
    for (const w of pending) {
      if (w.timer !== undefined) clearTimeout(w.timer);
      w.reject(this.errorFor(`recv(from ${w.from}, "${w.tag}")`));
    }
    return true;
  }

  /** The receive-timeout rule: this receive, then this mailbox, then (through the transport) the group. */
  private timedOut(k: string, waiter: Waiter, ms: number): void {
    const waiting = this.waiters.get(k);
    const at = waiting ? waiting.indexOf(waiter) : -1;
    if (at < 0) return; // matched or failed meanwhile
    waiting!.splice(at, 1);
    if (waiting!.length === 0) this.waiters.delete(k);
    const failure: TransportFailure = {
      code: 'RECV_TIMEOUT',
      rank: waiter.from,
      summary: `no message "${waiter.tag}" from rank ${waiter.from} within ${ms} ms (waited at rank ${this.rank})`,
    };
    waiter.reject(new CollectiveError(failure.code, failure.rank, `rank ${this.rank}: ${failure.summary}`));
    this.fail(failure);
    this.failGroup(failure);
  }
}
