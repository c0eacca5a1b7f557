/**
 * The core `Transport` (core/src/allreduce/transport.ts) over WebSocket links between worker
 * processes, so that the allreduce algorithms can run peer to peer (ring mode). It keeps that
 * contract to the letter; the points where sockets make it interesting:
 *
 * - Framing: each message is a small binary header (tag, size) and then its bytes, raw, cut into
 *   chunks of `chunkBytes` (peer-frame.ts). The receiver copies chunks into one buffer of the
 *   announced size; a message of one chunk is handed over as received, without a copy.
 * - `send` resolves when `ws` has handed every frame to the OS (its write callbacks), so the caller
 *   may reuse its buffer then. Client links use an all-zero mask, which `ws` skips, so payload
 *   bytes are never copied on the sending side (masking guards HTTP proxies, and none sit
 *   between two ddp workers).
 * - Any failure fails the whole group, never just one link: a link that drops, a receive that
 *   times out (the rule of transport.ts, kept by the shared TagMailbox), a malformed frame, a peer
 *   that closes while we wait for it, a missed heartbeat.
 *   The member that sees it first rejects every pending and later operation with one
 *   CollectiveError (code and the rank at fault), tells its other peers in a FAILURE frame, and
 *   closes its links; they do the same in turn. So a ring in which rank 2 dies rejects on all
 *   ranks, not only on ranks 1 and 3, and nobody waits forever.
 *
 * PeerEndpoint (peer-endpoint.ts) opens the links and hands the transport out once all are up.
 */
import { CollectiveError, TagMailbox, type CollectiveErrorCode, type Transport, type TransportFailure } from '@ddp/core';
import { WebSocket } from 'ws';
import { decodeHeaderFrame, encodeDataHeader, encodeFailureNotice, FRAME_KIND, MAX_HEADER_FRAME_BYTES, PeerFrameError } from './peer-frame.js';

export interface WsTransportOptions {
  /** A recv that has not matched within this many ms fails the group with 'RECV_TIMEOUT' (default 0: never). */
  recvTimeoutMs?: number;
  /** Payload bytes per WebSocket frame (default 1 MiB). */
  chunkBytes?: number;
  /** Largest message a peer may announce; a larger one fails the group with 'PAYLOAD_SIZE' (default 1 GiB). */
  maxMessageBytes?: number;
  /**
   * Ping every link this often (ms) and fail the group when a peer has shown no sign of life for
   * three periods (no frame, no pong, and none of our bytes for it accepted by the OS): catches a
   * peer host that vanished without closing its sockets (default 0: off; a dead process closes its
   * sockets and is noticed at once without it).
   */
  heartbeatMs?: number;
}

export const DEFAULT_CHUNK_BYTES = 1 << 20;
export const DEFAULT_MAX_MESSAGE_BYTES = 1 << 30;

export interface ResolvedTransportOptions {
  recvTimeoutMs: number;
  chunkBytes: number;
  maxMessageBytes: number;
  heartbeatMs: number;
}

/** Fills in defaults; a bad value throws a RangeError naming the option. */
export function resolveTransportOptions(caller: string, opts: WsTransportOptions): ResolvedTransportOptions {
  const pick = (name: keyof WsTransportOptions, dflt: number, min: number, max = Number.MAX_SAFE_INTEGER): number => {
    const v = opts[name];
    if (v === undefined) return dflt;
    if (typeof v !== 'number' || !Number.isInteger(v) || v < min || v > max) {
      throw new RangeError(`${caller}: ${name} must be an integer in [${min}, ${max}], got ${String(v)}`);
    }
    return v;
  };
  return {
    recvTimeoutMs: pick('recvTimeoutMs', 0, 0, 2 ** 31 - 1),
    chunkBytes: pick('chunkBytes', DEFAULT_CHUNK_BYTES, 1024, 1 << 30),
    maxMessageBytes: pick('maxMessageBytes', DEFAULT_MAX_MESSAGE_BYTES, 0, 0xffffffff),
    heartbeatMs: pick('heartbeatMs', 0, 0, 2 ** 31 - 1),
  };
}

/** The `ws` maxPayload of a link: one chunk or one header frame, whichever is larger. */
export const linkMaxPayload = (chunkBytes: number): number => Math.max(chunkBytes, MAX_HEADER_FRAME_BYTES);

/** Close codes a member uses on its links. */
export const PEER_CLOSE = { NORMAL: 1000, GROUP_FAILED: 4000 } as const;

/** A message whose header has arrived and whose payload frames are still coming. */
interface Incoming {
  tag: string;
  total: number;
  got: number;
  dest: Uint8Array | undefined;
}

interface Link {
  peer: number;
  ws: WebSocket;
  incoming: Incoming | undefined;
  /** performance.now() of the last frame, ping or pong from the peer, or of the OS taking more of our bytes for it. */
  lastHeard: number;
  /** The peer closed its transport normally: what it sent before still counts, nothing more will come. */
  peerClosed: boolean;
  lastError: string | undefined;
}

export class WsTransport implements Transport {
  readonly rank: number;
  readonly size: number;
  /** The ranks this member has a link to (the topology's neighbours), ascending. */
  readonly linkedPeers: readonly number[];
  private readonly opts: ResolvedTransportOptions;
  private readonly links = new Map<number, Link>();
  /** Receives and early arrivals; failed (with the group failure, or 'TRANSPORT_CLOSED') whenever this member is. */
  private readonly mailbox: TagMailbox;
  private failure: TransportFailure | undefined;
  private closedLocally = false;
  private readonly failureListeners: Array<(error: CollectiveError) => void> = [];
  private heartbeat: ReturnType<typeof setInterval> | undefined;

  /** Use PeerEndpoint (or createLocalPeerGroup) rather than this: it opens the links. */
  constructor(rank: number, size: number, linkedPeers: readonly number[], opts: WsTransportOptions = {}) {
    if (!Number.isInteger(size) || size < 1) throw new RangeError(`WsTransport: size must be an integer >= 1, got ${size}`);
    if (!Number.isInteger(rank) || rank < 0 || rank >= size) throw new RangeError(`WsTransport: rank must be an integer in [0, ${size - 1}], got ${rank}`);
    for (const p of linkedPeers) {
      if (!Number.isInteger(p) || p < 0 || p >= size || p === rank) throw new RangeError(`WsTransport rank ${rank}: linked peer ${p} is not another rank in [0, ${size - 1}]`);
    }
    this.rank = rank;
    this.size = size;
    this.linkedPeers = [...new Set(linkedPeers)].sort((a, b) => a - b);
    this.opts = resolveTransportOptions('WsTransport', opts);
    this.mailbox = new TagMailbox({
      rank,
      recvTimeoutMs: this.opts.recvTimeoutMs > 0 ? this.opts.recvTimeoutMs : undefined,
      failGroup: (f) => this.failGroup(f.code, f.rank, f.summary),
    });
    if (this.opts.heartbeatMs > 0) {
      this.heartbeat = setInterval(() => this.beat(), this.opts.heartbeatMs);
      this.heartbeat.unref();
    }
  }

  /** How many links are up. */
  get attachedCount(): number {
    return this.links.size;
  }

  isAttached(peer: number): boolean {
    return this.links.has(peer);
  }

  /** The group failure as this member saw it (the error its operations reject with), if any. */
  get failed(): CollectiveError | undefined {
    return this.failure ? this.errorFor('transport') : undefined;
  }

  /** Calls `listener` once when the group fails (at once if it already has). */
  onFailure(listener: (error: CollectiveError) => void): void {
    if (this.failure) listener(this.errorFor('transport'));
    else if (!this.closedLocally) this.failureListeners.push(listener);
  }

  /** Hands an open WebSocket to `peer` to the transport (PeerEndpoint does this for each link). */
  attach(peer: number, ws: WebSocket): void {
    if (!this.linkedPeers.includes(peer)) throw new RangeError(`WsTransport rank ${this.rank}: no link to rank ${peer} is expected (linked: ${this.linkedPeers.join(', ')})`);
    if (this.links.has(peer)) throw new Error(`WsTransport rank ${this.rank}: a link to rank ${peer} is already attached`);
    if (this.failure || this.closedLocally) {
      ws.close(PEER_CLOSE.GROUP_FAILED, 'group failed');
      return;
    }
    ws.binaryType = 'nodebuffer';
    const link: Link = { peer, ws, incoming: undefined, lastHeard: performance.now(), peerClosed: false, lastError: undefined };
    this.links.set(peer, link);
    ws.on('message', (data: Buffer, isBinary: boolean) => this.onFrame(link, data, isBinary));
    ws.on('ping', () => (link.lastHeard = performance.now()));
    ws.on('pong', () => (link.lastHeard = performance.now()));
    ws.on('error', (err: Error) => (link.lastError = err.message));
    ws.on('close', (code: number, reason: Buffer) => this.onLinkClosed(link, code, reason.toString('utf8')));
  }

  send(to: number, tag: string, payload: Uint8Array): Promise<void> {
    this.checkPeer('send', to);
    if (typeof tag !== 'string' || tag.length === 0) throw new TypeError(`WsTransport rank ${this.rank}: send tag must be a non-empty string, got ${JSON.stringify(tag)}`);
    if (!(payload instanceof Uint8Array)) {
      throw new TypeError(`WsTransport rank ${this.rank}: send payload must be a Uint8Array, got ${Object.prototype.toString.call(payload)}`);
    }
    const header = encodeDataHeader(tag, payload.byteLength); // a tag or size out of range throws now
    const op = `send(to ${to}, "${tag}")`;
    if (this.closedLocally || this.failure) return Promise.reject(this.errorFor(op));
    const link = this.links.get(to);
    if (!link) throw new Error(`WsTransport rank ${this.rank}: the link to rank ${to} is not open yet (use the transport PeerEndpoint.connect returns)`);
    if (link.peerClosed || link.ws.readyState !== WebSocket.OPEN) {
      this.failGroup('PEER_FAILED', to, `rank ${to} failed (its link to rank ${this.rank} is closed)`);
      return Promise.reject(this.errorFor(op));
    }
    return new Promise<void>((resolve, reject) => {
      const chunk = this.opts.chunkBytes;
      let pending = 1 + Math.ceil(payload.byteLength / chunk);
      let failed = false;
      const written = (err?: Error | null): void => {
        if (failed) return;
        if (err) {
          failed = true;
          // The link's close handler fails the group; report that failure if it has happened.
          reject(this.failure || this.closedLocally ? this.errorFor(op) : new CollectiveError('PEER_FAILED', to, `rank ${this.rank} ${op}: rank ${to} failed (${err.message})`));
          return;
        }
        // The OS took more of our bytes, so the peer is acknowledging them: it is alive, even
        // if its pong waits behind the rest of what we are sending it (heartbeats).
        link.lastHeard = performance.now();
        if (--pending === 0) resolve();
      };
      // All frames of one message are queued in one go, so messages never interleave on a link.
      link.ws.send(header, { binary: true }, written);
      for (let at = 0; at < payload.byteLength; at += chunk) {
        link.ws.send(payload.subarray(at, Math.min(at + chunk, payload.byteLength)), { binary: true }, written);
      }
    });
  }

  recv(from: number, tag: string): Promise<Uint8Array> {
    this.checkPeer('recv', from);
    if (!this.mailbox.failure && !this.mailbox.hasBuffered(from, tag) && this.links.get(from)?.peerClosed) {
      this.failGroup('PEER_FAILED', from, `rank ${from} failed (it closed its transport while rank ${this.rank} waited for "${tag}")`);
    }
    return this.mailbox.recv(from, tag);
  }

  /**
   * Closes every link normally. Pending and later operations here reject with 'TRANSPORT_CLOSED';
   * peers that still wait for this member fail their group. Resolves when the links are closed.
   */
  async close(): Promise<void> {
    if (this.closedLocally) return;
    this.closedLocally = true;
    this.stopHeartbeat();
    this.mailbox.fail(transportClosed(this.rank));
    const closing = [...this.links.values()].map((link) => closeLink(link.ws, PEER_CLOSE.NORMAL, 'closed'));
    await Promise.all(closing);
  }

  /** Drops every link at once with no goodbye, as a crashed process would (for tests and fatal exits). */
  destroy(): void {
    if (!this.closedLocally) {
      this.closedLocally = true;
      this.stopHeartbeat();
      this.mailbox.fail(transportClosed(this.rank));
    }
    for (const link of this.links.values()) link.ws.terminate();
  }

  private checkPeer(op: string, peer: number): void {
    if (!Number.isInteger(peer) || peer < 0 || peer >= this.size || peer === this.rank) {
      throw new RangeError(`WsTransport rank ${this.rank}: ${op} peer must be an integer in [0, ${this.size - 1}] other than ${this.rank}, got ${peer}`);
    }
    if (!this.linkedPeers.includes(peer)) {
      throw new RangeError(`WsTransport rank ${this.rank}: ${op} to rank ${peer}, but this group links rank ${this.rank} only to ${this.linkedPeers.join(', ') || 'nobody'} (choose a topology that covers the algorithm)`);
    }
  }

  /** The error of an operation on this member once it has failed or been closed. */
  private errorFor(op: string): CollectiveError {
    return this.mailbox.errorFor(op);
  }

  private onFrame(link: Link, data: Buffer, isBinary: boolean): void {
    if (this.failure || this.closedLocally) return;
    link.lastHeard = performance.now();
    const peer = link.peer;
    if (!isBinary) return this.violation(link, `a text frame of ${data.byteLength} bytes`);
    const incoming = link.incoming;
    if (incoming) {
      if (incoming.got + data.byteLength > incoming.total) {
        return this.violation(link, `${incoming.got + data.byteLength} payload bytes for "${incoming.tag}", more than the ${incoming.total} announced`);
      }
      if (incoming.got === 0 && data.byteLength === incoming.total) {
        link.incoming = undefined;
        // A plain Uint8Array view (not a Buffer, whose slice() would not copy).
        return this.mailbox.deliver(peer, incoming.tag, new Uint8Array(data.buffer, data.byteOffset, data.byteLength));
      }
      incoming.dest ??= new Uint8Array(incoming.total);
      incoming.dest.set(data, incoming.got);
      incoming.got += data.byteLength;
      if (incoming.got === incoming.total) {
        link.incoming = undefined;
        this.mailbox.deliver(peer, incoming.tag, incoming.dest);
      }
      return;
    }
    let frame;
    try {
      frame = decodeHeaderFrame(data);
    } catch (err) {
      if (err instanceof PeerFrameError) return this.violation(link, err.message);
      throw err;
    }
    if (frame.kind === FRAME_KIND.FAILURE) {
      const rank = Number.isInteger(frame.rank) && frame.rank >= 0 && frame.rank < this.size ? frame.rank : peer;
      return this.failGroup(frame.code, rank, frame.summary);
    }
    if (frame.bytes > this.opts.maxMessageBytes) {
      return this.failGroup(
        'PAYLOAD_SIZE',
        peer,
        `rank ${peer} announced a message "${frame.tag}" of ${frame.bytes} bytes to rank ${this.rank}, over the limit of ${this.opts.maxMessageBytes} (maxMessageBytes)`,
      );
    }
    if (frame.bytes === 0) return this.mailbox.deliver(peer, frame.tag, new Uint8Array(0));
    link.incoming = { tag: frame.tag, total: frame.bytes, got: 0, dest: undefined };
  }

  private violation(link: Link, what: string): void {
    this.failGroup('PEER_FAILED', link.peer, `rank ${link.peer} failed (it sent rank ${this.rank} a malformed frame: ${what})`);
  }

  private onLinkClosed(link: Link, code: number, reason: string): void {
    if (this.failure || this.closedLocally) return;
    const peer = link.peer;
    if (code === PEER_CLOSE.NORMAL && !link.incoming) {
      // A normal close: what it sent still counts; only a wait for more from it is a failure.
      link.peerClosed = true;
      const waitingFor = this.mailbox.pendingTagFrom(peer);
      if (waitingFor !== undefined) this.failGroup('PEER_FAILED', peer, `rank ${peer} failed (it closed its transport while rank ${this.rank} waited for "${waitingFor}")`);
      return;
    }
    const why = code === PEER_CLOSE.GROUP_FAILED ? 'it reported a group failure' : `its link to rank ${this.rank} was lost: close code ${code}${reason ? ` "${reason}"` : ''}${link.lastError ? `, ${link.lastError}` : ''}`;
    this.failGroup('PEER_FAILED', peer, `rank ${peer} failed (${why})`);
  }

  private beat(): void {
    const now = performance.now();
    for (const link of this.links.values()) {
      if (link.ws.readyState !== WebSocket.OPEN) continue;
      const silent = now - link.lastHeard;
      if (silent > 3 * this.opts.heartbeatMs) {
        this.failGroup('PEER_FAILED', link.peer, `rank ${link.peer} failed (silent for ${Math.round(silent)} ms on its link to rank ${this.rank}; heartbeat every ${this.opts.heartbeatMs} ms)`);
        return;
      }
      link.ws.ping();
    }
  }

  private stopHeartbeat(): void {
    if (this.heartbeat !== undefined) clearInterval(this.heartbeat);
    this.heartbeat = undefined;
  }

  /** The one way a group fails: record why, reject everything, tell the peers, close the links. */
  private failGroup(code: CollectiveErrorCode, rank: number, summary: string): void {
    if (this.failure || this.closedLocally) return; // the first failure is the one reported
    this.failure = { code, rank, summary };
    this.stopHeartbeat();
    this.mailbox.fail(this.failure); // a no-op when the mailbox itself failed first (a receive timed out)
    const notice = encodeFailureNotice(code, rank, summary);
    for (const link of this.links.values()) {
      if (link.ws.readyState !== WebSocket.OPEN) continue;
      link.ws.send(notice, { binary: true }, () => {}); // sent before the close frame that follows
      link.ws.close(PEER_CLOSE.GROUP_FAILED, 'group failed');
    }
    const error = this.errorFor('transport');
    for (const listener of this.failureListeners.splice(0)) listener(error);
  }
}

/** Closes a socket and resolves once it is closed (terminating it if the handshake stalls). */
function closeLink(ws: WebSocket, code: number, reason: string): Promise<void> {
  if (ws.readyState === WebSocket.CLOSED) return Promise.resolve();
  return new Promise((resolve) => {
    const timer = setTimeout(() => ws.terminate(), 2000);
    timer.unref();
    ws.once('close', () => {
      clearTimeout(timer);
      resolve();
    });
    if (ws.readyState === WebSocket.OPEN || ws.readyState === WebSocket.CONNECTING) ws.close(code, reason);
  });
}

const transportClosed = (rank: number): TransportFailure => ({ code: 'TRANSPORT_CLOSED', rank, summary: 'the transport was closed' });
