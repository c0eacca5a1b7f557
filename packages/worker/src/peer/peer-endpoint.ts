/**
 * Rendezvous for a peer group: each member listens, someone (the coordinator, or a benchmark's
 * parent process) collects every member's `url` and hands the list to all, and each member then
 * dials the peers its topology needs and waits for the others to dial it.
 *
 *   const ep = await PeerEndpoint.listen({ rank, size, token, group: 'job-7/gen-0', topology: 'ring' });
 *   report(ep.url);                                  // e.g. ws://127.0.0.1:40215
 *   const t = await ep.connect(urlsByRank);          // a WsTransport once every link is up
 *   const sum = await ringAllreduce(t, grad);
 *   await ep.close();
 *
 * Links: the union of the topologies' links (topology.ts), one WebSocket per pair, dialled by the
 * higher rank. Dialling retries refused connections with backoff until `connectTimeoutMs`; an
 * answer that refuses us (wrong token, other group) or names another rank fails at once. The
 * listener stops accepting once every link is up. Failures reject with a CollectiveError naming
 * the peer at fault: 'PEER_FAILED' (refused, unreachable, dropped) or 'RECV_TIMEOUT' (never dialled us).
 */
import type { IncomingMessage } from 'node:http';
import type { TLSSocket } from 'node:tls';
import type { Duplex } from 'node:stream';
import { CollectiveError, createPortServer, REFUSAL_HEADER, tlsFailure, type PortServer, type TlsMaterial } from '@ddp/core';
import { WebSocket, WebSocketServer } from 'ws';
import { checkPeerHello, helloHeaders, PEER_HEADER } from './peer-handshake.js';
import { dialsPeer, linkedPeers, type PeerTopology } from './topology.js';
import { linkMaxPayload, resolveTransportOptions, WsTransport, type WsTransportOptions } from './ws-transport.js';

export interface PeerEndpointOptions extends WsTransportOptions {
  rank: number;
  size: number;
  /** The shared secret every member presents (an empty token authenticates nothing). */
  token: string;
  /** Names this group instance, so a member of another job or an earlier ring cannot attach (default 'ddp'). */
  group?: string;
  /** Which links to open: the union over the list (default 'ring'). */
  topology?: PeerTopology | readonly PeerTopology[];
  /** Interface to listen on (default 127.0.0.1). */
  host?: string;
  /** Port to listen on (default 0: any free port). */
  port?: number;
  /** Host name or address peers should dial, when it differs from `host` (required for 0.0.0.0 or ::). */
  advertiseHost?: string;
  /** How long connect() may take, dialling and being dialled (default 30000 ms). */
  connectTimeoutMs?: number;
  /**
   * Links over TLS (mutual): listen with this certificate and ask every dialler for its own; dial
   * with it; both ends verify the other's against `ca`. The url becomes wss://.
   */
  tls?: TlsMaterial & { ca: Buffer };
}

const zeroMask = (mask: Buffer): void => {
  mask.fill(0);
};

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

/** A dial attempt that must not be retried (the peer answered, and said no). */
class FatalDial extends Error {}

export class PeerEndpoint {
  readonly rank: number;
  readonly size: number;
  /** What peers dial to reach this member: ws://HOST:PORT (wss:// with TLS). */
  readonly url: string;
  private readonly transport: WsTransport;
  private readonly server: PortServer;
  private readonly tls: (TlsMaterial & { ca: Buffer }) | undefined;
  private readonly wss: WebSocketServer;
  private readonly identity: { token: string; rank: number; size: number; group: string };
  private readonly linked: number[];
  private readonly maxPayload: number;
  private readonly connectTimeoutMs: number;
  private readonly refusals: string[] = [];
  private onAttach: () => void = () => {};
  /** Ends a pending connect() with an error (close() uses it). */
  private abortConnect: (err: Error) => void = () => {};
  private connecting = false;
  private stopped = false;
  private readonly dialling = new Set<WebSocket>();

  private constructor(opts: PeerEndpointOptions, server: PortServer, url: string) {
    this.tls = opts.tls;
    this.rank = opts.rank;
    this.size = opts.size;
    this.url = url;
    this.server = server;
    this.identity = { token: opts.token, rank: opts.rank, size: opts.size, group: opts.group ?? 'ddp' };
    this.linked = linkedPeers(opts.topology ?? 'ring', opts.rank, opts.size);
    const resolved = resolveTransportOptions('PeerEndpoint', opts);
    this.maxPayload = linkMaxPayload(resolved.chunkBytes);
    this.connectTimeoutMs = opts.connectTimeoutMs ?? 30_000;
    this.transport = new WsTransport(opts.rank, opts.size, this.linked, opts);
    this.wss = new WebSocketServer({ noServer: true, perMessageDeflate: false, maxPayload: this.maxPayload, clientTracking: false });
    this.wss.on('headers', (headers: string[]) => headers.push(`X-Ddp-Peer-Rank: ${this.rank}`));
    server.server.on('upgrade', (req: IncomingMessage, socket: Duplex, head: Buffer) => this.onUpgrade(req, socket, head));
  }

  /** Starts listening; bad options throw a TypeError/RangeError naming the option. */
  static async listen(opts: PeerEndpointOptions): Promise<PeerEndpoint> {
    if (typeof opts !== 'object' || opts === null) throw new TypeError('PeerEndpoint.listen: options are required');
    if (typeof opts.token !== 'string') throw new TypeError(`PeerEndpoint.listen: token must be a string, got ${typeof opts.token}`);
    if (opts.group !== undefined && (typeof opts.group !== 'string' || opts.group.length > 256)) {
      throw new TypeError('PeerEndpoint.listen: group must be a string of at most 256 characters');
    }
    linkedPeers(opts.topology ?? 'ring', opts.rank, opts.size); // checks rank, size and topology
    resolveTransportOptions('PeerEndpoint.listen', opts);
    const port = opts.port ?? 0;
    if (!Number.isInteger(port) || port < 0 || port > 65535) throw new RangeError(`PeerEndpoint.listen: port must be an integer in [0, 65535], got ${port}`);
    const timeout = opts.connectTimeoutMs ?? 30_000;
    if (!Number.isInteger(timeout) || timeout < 1) throw new RangeError(`PeerEndpoint.listen: connectTimeoutMs must be an integer >= 1, got ${timeout}`);
    const host = opts.host ?? '127.0.0.1';
    const wildcard = host === '0.0.0.0' || host === '::' || host === '';
    if (wildcard && !opts.advertiseHost) throw new RangeError(`PeerEndpoint.listen: listening on '${host}' needs advertiseHost (the address peers should dial)`);

    if (opts.tls && !opts.tls.ca) throw new TypeError('PeerEndpoint.listen: tls needs a ca to verify peers against');
    const server = createPortServer({
      tls: opts.tls ? { ...opts.tls, requestClientCert: true } : undefined,
      onRequest: (_req, res) => {
        res.writeHead(426, { 'content-type': 'text/plain' });
        res.end('ddp peer endpoint: WebSocket upgrades only\n');
      },
      plaintextRefusal: 'this ring member links over TLS only (give every worker --tls-cert, --tls-key and --tls-ca)',
    });
    let bound: number;
    try {
      bound = await server.listen(port, host);
    } catch (err) {
      throw new Error(`PeerEndpoint rank ${opts.rank}: cannot listen on ${host}:${port}: ${(err as Error).message}`);
    }
    const shown = opts.advertiseHost ?? host;
    const url = `${opts.tls ? 'wss' : 'ws'}://${shown.includes(':') ? `[${shown}]` : shown}:${bound}`;
    return new PeerEndpoint(opts, server, url);
  }

  /** The ranks this member links to. */
  get linkedPeers(): readonly number[] {
    return this.linked;
  }

  /**
   * Dials the peers this member must dial (`urls[r]` is rank r's url; its own entry is ignored),
   * waits to be dialled by the others, and resolves with the transport once all links are up.
   */
  connect(urls: readonly string[]): Promise<WsTransport> {
    if (!Array.isArray(urls) || urls.length !== this.size) {
      throw new RangeError(`PeerEndpoint rank ${this.rank}: connect needs one url per rank (${this.size}), got ${Array.isArray(urls) ? urls.length : typeof urls}`);
    }
    const targets = new Map<number, URL>();
    for (const peer of this.linked.filter((p) => dialsPeer(this.rank, p))) {
      let url: URL;
      try {
        url = new URL(String(urls[peer]));
      } catch {
        throw new RangeError(`PeerEndpoint rank ${this.rank}: url of rank ${peer} is not a URL: ${JSON.stringify(urls[peer])}`);
      }
      if (url.protocol !== 'ws:' && url.protocol !== 'wss:') throw new RangeError(`PeerEndpoint rank ${this.rank}: url of rank ${peer} must be ws:// or wss://, got ${url.href}`);
      targets.set(peer, url);
    }
    if (this.connecting) throw new Error(`PeerEndpoint rank ${this.rank}: connect() was already called`);
    if (this.stopped) throw new Error(`PeerEndpoint rank ${this.rank}: the endpoint is closed`);
    this.connecting = true;

    const deadline = performance.now() + this.connectTimeoutMs;
    return new Promise<WsTransport>((resolve, reject) => {
      let settled = false;
      const finish = (err?: Error): void => {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        this.onAttach = () => {};
        this.abortConnect = () => {};
        this.stopListening();
        if (err) {
          this.transport.destroy();
          reject(err);
        } else {
          resolve(this.transport);
        }
      };
      const check = (): void => {
        if (this.linked.every((p) => this.transport.isAttached(p))) finish();
      };
      const timer = setTimeout(() => {
        const missing = this.linked.filter((p) => !this.transport.isAttached(p));
        const refused = this.refusals.length ? `; refused meanwhile: ${this.refusals.slice(-3).join('; ')}` : '';
        finish(new CollectiveError('RECV_TIMEOUT', missing[0] ?? -1, `rank ${this.rank}: no link to rank(s) ${missing.join(', ')} within ${this.connectTimeoutMs} ms${refused}`));
      }, this.connectTimeoutMs);
      this.onAttach = check;
      this.abortConnect = finish;
      this.transport.onFailure((e) => finish(e));
      for (const [peer, url] of targets) {
        this.dial(peer, url, deadline, () => settled).then(check, (err: Error) => finish(err));
      }
      check();
    });
  }

  /** Stops listening and closes the links normally; a pending connect() rejects with 'TRANSPORT_CLOSED'. */
  async close(): Promise<void> {
    this.abortConnect(new CollectiveError('TRANSPORT_CLOSED', this.rank, `rank ${this.rank}: the endpoint was closed while linking up`));
    this.stopListening();
    for (const ws of this.dialling) ws.terminate();
    await this.transport.close();
  }

  private stopListening(): void {
    if (this.stopped) return;
    this.stopped = true;
    this.server.stopAccepting();
  }

  private onUpgrade(req: IncomingMessage, socket: Duplex, head: Buffer): void {
    socket.on('error', () => {}); // a dialler that vanishes mid-handshake is not our failure
    const tlsSocket = req.socket as TLSSocket;
    if (this.tls && !tlsSocket.authorized) {
      // Mutual TLS: the dialler's certificate must verify against our CA, like ours against theirs.
      const why = `DDP_TLS_UNVERIFIED: the certificate of rank ${req.headers[PEER_HEADER.RANK] ?? '?'} does not verify against this member's CA (${String(tlsSocket.authorizationError ?? 'no certificate')})`;
      this.refusals.push(`${req.socket.remoteAddress}:${req.socket.remotePort} (${why})`);
      socket.end(`HTTP/1.1 403 Forbidden\r\nConnection: close\r\n${PEER_HEADER.REFUSAL}: ${why}\r\nContent-Length: 0\r\n\r\n`);
      return;
    }
    const verdict = checkPeerHello(req.headers, {
      ...this.identity,
      acceptFrom: this.linked.filter((p) => dialsPeer(p, this.rank)),
      attached: (r) => this.transport.isAttached(r),
    });
    if (!verdict.ok || this.stopped) {
      const [status, reason] = verdict.ok ? [409, 'the group is already complete'] : [verdict.status, verdict.reason];
      this.refusals.push(`${req.socket.remoteAddress}:${req.socket.remotePort} (${reason})`);
      const text = status === 401 ? 'Unauthorized' : status === 400 ? 'Bad Request' : 'Conflict';
      socket.end(`HTTP/1.1 ${status} ${text}\r\nConnection: close\r\n${PEER_HEADER.REFUSAL}: ${reason.replace(/[\r\n]/g, ' ')}\r\nContent-Length: 0\r\n\r\n`);
      return;
    }
    this.wss.handleUpgrade(req, socket, head, (ws) => {
      if (this.transport.isAttached(verdict.rank)) {
        ws.close(1008, 'duplicate link');
        return;
      }
      this.transport.attach(verdict.rank, ws);
      this.onAttach();
    });
  }

  /** Dials one peer, retrying unanswered attempts until the deadline; the link is attached once open. */
  private async dial(peer: number, url: URL, deadline: number, cancelled: () => boolean): Promise<void> {
    let wait = 25;
    for (let attempt = 1; ; attempt++) {
      try {
        return await this.dialOnce(peer, url, Math.max(200, deadline - performance.now()), cancelled);
      } catch (err) {
        const why = (err as Error).message;
        if (err instanceof FatalDial) throw new CollectiveError('PEER_FAILED', peer, `rank ${this.rank}: rank ${peer} at ${url.href} refused the link: ${why}`);
        if (cancelled()) throw err;
        if (performance.now() + wait > deadline) {
          throw new CollectiveError('PEER_FAILED', peer, `rank ${this.rank}: could not reach rank ${peer} at ${url.href} within ${this.connectTimeoutMs} ms (${attempt} attempts; last: ${why})`);
        }
        await sleep(wait);
        if (cancelled()) throw err; // connect() ended meanwhile: no more attempts
        wait = Math.min(1000, wait * 2);
      }
    }
  }

  private dialOnce(peer: number, url: URL, handshakeTimeout: number, cancelled: () => boolean): Promise<void> {
    return new Promise((resolve, reject) => {
      const ws = new WebSocket(url, {
        headers: helloHeaders(this.identity),
        perMessageDeflate: false,
        maxPayload: this.maxPayload,
        handshakeTimeout,
        generateMask: zeroMask,
        ...(url.protocol === 'wss:' && this.tls ? { ca: this.tls.ca, cert: this.tls.cert, key: this.tls.key } : {}),
      });
      this.dialling.add(ws);
      let answeredRank: string | undefined;
      const fail = (err: Error): void => {
        this.dialling.delete(ws);
        ws.removeAllListeners();
        ws.on('error', () => {});
        ws.terminate();
        reject(err);
      };
      ws.once('upgrade', (res: IncomingMessage) => {
        const v = res.headers[PEER_HEADER.RANK];
        answeredRank = Array.isArray(v) ? v[0] : v;
      });
      ws.once('unexpected-response', (_req, res: IncomingMessage) => {
        const reason = res.headers[PEER_HEADER.REFUSAL] ?? res.headers[REFUSAL_HEADER];
        fail(new FatalDial(`HTTP ${res.statusCode}${reason ? `: ${reason}` : ''}`));
      });
      ws.once('error', (err: Error & { code?: string }) => {
        // A certificate that does not verify (either way) or TLS on one side only: retrying cannot help.
        const refusal = tlsFailure(err, url.href);
        fail(refusal ? new FatalDial(`${refusal.code}: ${refusal.message}`) : new Error(err.code ?? err.message));
      });
      ws.once('open', () => {
        if (answeredRank !== String(peer)) {
          fail(new FatalDial(`it answered as rank ${answeredRank ?? '(none)'}, not ${peer} (is the address list stale?)`));
          return;
        }
        this.dialling.delete(ws);
        ws.removeAllListeners();
        if (cancelled()) {
          ws.terminate();
          reject(new Error('connect() already ended'));
          return;
        }
        // Attach now, in this event: frames the peer sent right behind its upgrade answer are
        // emitted on the next tick, before any promise continuation would have added a listener.
        this.transport.attach(peer, ws);
        resolve();
      });
    });
  }
}
