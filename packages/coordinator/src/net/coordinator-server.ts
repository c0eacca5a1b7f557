/**
 * The coordinator's port: HTTP (/healthz, /readyz, /metrics: http-endpoints.ts) and, on the same
 * port, the WebSocket side, which accepts connections, runs the handshake (version, token, a free
 * rank), keeps the membership, pings members and drops the silent ones. It knows nothing of steps:
 * it hands validated gradients to its listeners and tells them when a member is lost.
 *
 * Faults from a worker never throw here. Each becomes one ProtocolError with a stable code: the worker
 * gets an `error` message and a close status, the listeners get `refused` (not yet a member) or
 * `lost` (a member), and every other connection carries on.
 */
import { randomBytes } from 'node:crypto';
import {
  CLOSE_DONE,
  MSG,
  PROTOCOL_VERSION,
  ProtocolError,
  coordinatorMaxPayload,
  decodeFrame,
  describeJob,
  encodeMessage,
  parseWorkerMessage,
  sameJob,
  tokensMatch,
  createPortServer,
  type PortServer,
  type TlsMaterial,
  TRAIN_DATA_CHUNK,
  type CoordinatorToWorker,
  type DataSpec,
  type EvaluationMessage,
  type GradientMessage,
  type JobIdentity,
  type PlanMessageSpec,
  type RankHint,
  type ProtocolErrorCode,
  type RingWorkerMessage,
  type Split,
  type WireConfig,
} from '@ddp/core';
import { WebSocketServer, type RawData, type WebSocket } from 'ws';
import { serveHttp, type HttpEndpoints } from './http-endpoints.js';

export interface CoordinatorServerOptions {
  /** Interface to bind (default 127.0.0.1: reachable from this machine only). */
  host?: string;
  /** TCP port (default 7070; 0 picks a free one). */
  port?: number;
  /** Shared token workers must present; empty or absent accepts any worker. */
  token?: string;
  /** How many members the job takes; later arrivals are refused (DDP_FULL) until one is lost. */
  maxWorkers: number;
  paramCount: number;
  /** Sent to every worker in the welcome: what to load, and how to check it. */
  data: DataSpec;
  /** Ping period (default 1000 ms). */
  heartbeatMs?: number;
  /**
   * A member silent for this long is dropped with DDP_TIMEOUT (default 10000 ms). A worker cannot
   * answer pings while it computes, so its allowance grows by twice its last reported busy time.
   */
  heartbeatTimeoutMs?: number;
  /** A connection that sends no hello within this is dropped (default 10000 ms). */
  helloTimeoutMs?: number;
  /** Largest frame accepted (default: one gradient, or a replica's state in ring mode; see coordinatorMaxPayload). */
  maxPayload?: number;
  /** Told to every worker in the welcome: the wire settings (allreduce, compress, reduction, ...). */
  config: WireConfig;
  /** Told to every worker in the welcome: what every step's batch follows from. */
  plan: PlanMessageSpec;
  /**
   * Told to every worker in the welcome: which job this is (default: a random id, fingerprint
   * 'unspecified'). A coordinator restarted to continue a job must give the same id and fingerprint,
   * or the workers that rejoin it leave (DDP_JOB_CHANGED).
   */
  job?: JobIdentity;
  /** --serve-data: the training split, sent to every worker in train_data chunks after its welcome. */
  serveSplit?: Split;
  /**
   * The HTTP endpoints on the same port. /healthz is always there; /readyz defaults to "every seat
   * taken" (maxWorkers members); /metrics is there when given, and /, /events, /assets/* when `events`
   * is. All but /healthz need the token (or `viewToken`, which never lets a worker join) when one is set.
   */
  http?: HttpEndpoints;
  /** Serve wss:// and https:// with this certificate; a plaintext client is refused (DDP_TLS_REQUIRED). */
  tls?: TlsMaterial;
}

export interface WorkerInfo {
  rank: number;
  backend: string;
  /** host:pid as the worker reported it, and the socket's remote address. */
  name: string;
  remote: string;
  /** The worker's index from its scheduler, as its hello reported it. */
  rankHint?: RankHint;
}

/** Why a connection ended: a protocol code, or DDP_CLOSED when the peer just went away. */
export type LossCode = ProtocolErrorCode | 'DDP_CLOSED';

/** The messages of a mode's protocol (star: gradient; ring: the ring messages; both: evaluation). */
export type ModeMessage = GradientMessage | EvaluationMessage | RingWorkerMessage;

export interface ServerListener {
  joined?(info: WorkerInfo): void;
  /** A validated message of the mode's step protocol; `frameBytes` is the size of the frame it came in. */
  message?(rank: number, msg: ModeMessage, frameBytes: number): void;
  lost?(info: WorkerInfo, reason: string, code: LossCode): void;
  /** A connection refused before it became a member (bad token, wrong version, malformed hello...). */
  refused?(remote: string, err: ProtocolError): void;
}

interface Connection {
  ws: WebSocket;
  remote: string;
  info: WorkerInfo | null;
  lastSeen: number;
  helloTimer: NodeJS.Timeout | null;
  /** Set once we decided to end it, so that it ends once. */
  ending: ProtocolError | null;
  /** Set when ws reported a frame-level fault (too large, bad framing). */
  wsFault: ProtocolError | null;
  /** The worker's busy time for its last answer (ms): it may be that long without answering pings. */
  lastBusyMs: number;
}

/** Time given to the close handshake before the socket is destroyed (a stopped peer never answers). */
const CLOSE_GRACE_MS = 1000;

export class CoordinatorServer {
  private wss: WebSocketServer | null = null;
  private portServer: PortServer | null = null;
  private readonly members = new Map<number, Connection>();
  private readonly connections = new Set<Connection>();
  private readonly listeners: ServerListener[] = [];
  private heartbeat: NodeJS.Timeout | null = null;
  private nonce = 0;
  private lastBeat = 0;
  private closed = false;
  readonly host: string;
  private boundPort = -1;
  readonly maxPayload: number;
  /** The job this server serves (in every welcome). */
  readonly job: JobIdentity;

  constructor(private readonly opts: CoordinatorServerOptions) {
    if (!Number.isInteger(opts.maxWorkers) || opts.maxWorkers < 1) throw new RangeError(`maxWorkers must be an integer >= 1, got ${opts.maxWorkers}`);
    if (opts.job) {
      const { id, fingerprint } = opts.job;
      if (typeof id !== 'string' || id.length < 1 || id.length > 64) throw new RangeError(`job.id must be a string of 1 to 64 characters, got ${JSON.stringify(id)}`);
      if (typeof fingerprint !== 'string' || fingerprint.length < 1 || fingerprint.length > 128) {
        throw new RangeError(`job.fingerprint must be a string of 1 to 128 characters, got ${JSON.stringify(fingerprint)}`);
      }
    }
    // Without a job given: a random id (no worker of another run can pass for this one's).
    this.job = opts.job ? { id: opts.job.id, fingerprint: opts.job.fingerprint } : { id: randomBytes(8).toString('hex'), fingerprint: 'unspecified' };
    this.host = opts.host ?? '127.0.0.1';
    this.maxPayload = opts.maxPayload ?? coordinatorMaxPayload(opts.paramCount, opts.config);
  }

  addListener(l: ServerListener): void {
    this.listeners.push(l);
  }

  get port(): number {
    return this.boundPort;
  }

  /** Live ranks, ascending. */
  ranks(): number[] {
    return [...this.members.keys()].sort((a, b) => a - b);
  }

  info(rank: number): WorkerInfo | undefined {
    return this.members.get(rank)?.info ?? undefined;
  }

  /** Binds the port (HTTP and WebSocket, or HTTPS and secure WebSocket with `tls`). Rejects with a readable message (e.g. the port is taken). */
  async listen(): Promise<number> {
    const port = this.opts.port ?? 7070;
    const wss = new WebSocketServer({ noServer: true, maxPayload: this.maxPayload, perMessageDeflate: false, clientTracking: false });
    const portServer = createPortServer({
      tls: this.opts.tls,
      onRequest: (req, res) =>
        serveHttp(req, res, {
          token: this.opts.token ?? '',
          ...this.opts.http,
          defaultReadiness: () => (this.members.size >= this.opts.maxWorkers ? null : `not ready: waiting for workers (${this.members.size}/${this.opts.maxWorkers} joined)`),
        }),
      plaintextRefusal: 'this coordinator serves TLS only: connect with wss:// (and --tls-ca)',
      onPlaintextRefused: (remote) => this.emit('refused', remote, new ProtocolError('DDP_TLS_REQUIRED', 'a plaintext connection on the TLS port')),
      onTlsError: (remote, err) => this.emit('refused', remote, new ProtocolError('DDP_TLS_UNVERIFIED', `TLS handshake failed (${(err as Error & { code?: string }).code ?? err.message}; a worker that does not trust this certificate hangs up)`)),
    });
    portServer.server.on('upgrade', (req, socket, head) => {
      if (this.closed) return socket.destroy();
      wss.handleUpgrade(req, socket, head, (ws) => wss.emit('connection', ws, req));
    });
    try {
      this.boundPort = await portServer.listen(port, this.host);
    } catch (err) {
      wss.close();
      void portServer.close();
      const e = err as NodeJS.ErrnoException;
      const why = e.code === 'EADDRINUSE' ? 'address already in use (pick another --port)' : e.code === 'EADDRNOTAVAIL' ? 'no such local address (check --host)' : e.message;
      throw new Error(`cannot listen on ${this.host}:${port}: ${why}`);
    }
    wss.on('error', () => {});
    this.wss = wss;
    this.portServer = portServer;
    wss.on('connection', (ws, req) => this.accept(ws, `${req.socket.remoteAddress}:${req.socket.remotePort}`));
    const every = this.opts.heartbeatMs ?? 1000;
    this.heartbeat = setInterval(() => this.beat(), every);
    return this.boundPort;
  }

  /** Whether the port serves TLS (wss://, https://). */
  get tls(): boolean {
    return this.opts.tls !== undefined;
  }

  /** Sends a message to a member; false when it is not (or no longer) connected. */
  send(rank: number, msg: CoordinatorToWorker): boolean {
    const conn = this.members.get(rank);
    if (!conn || conn.ending || conn.ws.readyState !== conn.ws.OPEN) return false;
    conn.ws.send(encodeMessage(msg), { binary: true });
    return true;
  }

  /** Ends a member's connection for a fault of its own (it gets the error, listeners get `lost`). */
  drop(rank: number, err: ProtocolError): void {
    const conn = this.members.get(rank);
    if (conn) this.end(conn, err);
  }

  /** Tells every member the job is over, closes every connection and the port. */
  async close(reason = 'the job is done'): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    if (this.heartbeat) clearInterval(this.heartbeat);
    const waits: Promise<void>[] = [];
    for (const conn of this.connections) {
      if (conn.helloTimer) clearTimeout(conn.helloTimer);
      waits.push(
        new Promise<void>((resolve) => {
          if (conn.ws.readyState === conn.ws.CLOSED) return resolve();
          conn.ws.once('close', () => resolve());
          const timer = setTimeout(() => conn.ws.terminate(), CLOSE_GRACE_MS);
          timer.unref();
          if (conn.info && conn.ws.readyState === conn.ws.OPEN) conn.ws.send(encodeMessage({ type: MSG.DONE, reason }), { binary: true });
          conn.ws.close(CLOSE_DONE, 'done');
        }),
      );
    }
    this.members.clear(); // a finished job loses no one: no `lost` events from here on
    await Promise.all(waits);
    await new Promise<void>((resolve) => (this.wss ? this.wss.close(() => resolve()) : resolve()));
    await this.portServer?.close();
  }

  private emit<K extends keyof ServerListener>(name: K, ...args: Parameters<NonNullable<ServerListener[K]>>): void {
    for (const l of this.listeners) (l[name] as ((...a: unknown[]) => void) | undefined)?.(...args);
  }

  private accept(ws: WebSocket, remote: string): void {
    const conn: Connection = { ws, remote, info: null, lastSeen: performance.now(), helloTimer: null, ending: null, wsFault: null, lastBusyMs: 0 };
    if (this.closed) {
      ws.terminate();
      return;
    }
    this.connections.add(conn);
    conn.helloTimer = setTimeout(() => {
      this.end(conn, new ProtocolError('DDP_TIMEOUT', `no hello within ${(this.opts.helloTimeoutMs ?? 10000) / 1000} s of connecting`));
    }, this.opts.helloTimeoutMs ?? 10000);
    ws.on('message', (data, isBinary) => this.receive(conn, data, isBinary));
    ws.on('error', (err: Error & { code?: string }) => {
      // ws closes the socket itself after a frame-level error (1009 for an oversized frame).
      conn.wsFault =
        err.code === 'WS_ERR_UNSUPPORTED_MESSAGE_LENGTH'
          ? new ProtocolError('DDP_TOO_LARGE', `frame larger than maxPayload (${this.maxPayload} bytes, sized to ${this.opts.config.allreduce === 'ring' ? 'a replica of 3 x' : 'one gradient of'} ${this.opts.paramCount} float32)`)
          : err.code?.startsWith('WS_ERR_')
            ? new ProtocolError('DDP_BAD_MESSAGE', `bad WebSocket frame: ${err.message}`)
            : null;
    });
    ws.on('close', (code, reasonBuf) => this.closedByPeer(conn, code, reasonBuf.toString()));
  }

  private receive(conn: Connection, data: RawData, isBinary: boolean): void {
    if (conn.ending || this.closed) return;
    conn.lastSeen = performance.now();
    try {
      if (!isBinary) throw new ProtocolError('DDP_BAD_MESSAGE', 'text frame: ddp speaks binary msgpack frames only');
      const bytes = Array.isArray(data) ? Buffer.concat(data) : data instanceof ArrayBuffer ? new Uint8Array(data) : data;
      const msg = parseWorkerMessage(decodeFrame(bytes), { paramCount: this.opts.paramCount, config: this.opts.config });
      if (!conn.info) {
        if (msg.type !== MSG.HELLO) throw new ProtocolError('DDP_BAD_MESSAGE', `expected hello as the first message, got '${msg.type}'`);
        this.handshake(conn, msg.token, msg.backend, `${msg.host}:${msg.pid}`, msg.job, msg.rankHint);
        return;
      }
      switch (msg.type) {
        case MSG.HELLO:
          throw new ProtocolError('DDP_BAD_MESSAGE', 'hello: a second hello on the same connection');
        case MSG.PONG:
          return;
        case MSG.ERROR:
          // The worker reports its own failure; it closes after this.
          this.end(conn, new ProtocolError(msg.code, `the worker reported ${msg.code}: ${msg.message}`), false);
          return;
        default:
          // A worker answers pings only between computations: allow it its last busy time.
          if (msg.type === MSG.GRADIENT) conn.lastBusyMs = msg.busyMs;
          else if (msg.type === MSG.RING_PROGRESS) conn.lastBusyMs = msg.prepareMs + msg.computeMs;
          this.emit('message', conn.info.rank, msg, bytes.byteLength);
          return;
      }
    } catch (err) {
      this.end(conn, err instanceof ProtocolError ? err : new ProtocolError('DDP_BAD_MESSAGE', String(err)));
    }
  }

  private handshake(conn: Connection, token: string, backend: string, name: string, job: JobIdentity | undefined, rankHint: RankHint | undefined): void {
    const expected = this.opts.token ?? '';
    if (expected !== '' && !tokensMatch(expected, token)) {
      throw new ProtocolError('DDP_AUTH', token === '' ? 'this coordinator requires a token (--token or DDP_TOKEN)' : 'wrong token');
    }
    // A worker that lost its coordinator and reconnected here: only to continue its own job.
    if (job && !sameJob(job, this.job)) {
      throw new ProtocolError('DDP_JOB_CHANGED', `this coordinator serves another job (${describeJob(this.job)}) than the worker's (${describeJob(job)}); the worker does not join it`);
    }
    let rank = 0;
    while (this.members.has(rank)) rank++;
    if (rank >= this.opts.maxWorkers) {
      throw new ProtocolError('DDP_FULL', `the job already has its ${this.opts.maxWorkers} worker(s)`);
    }
    if (conn.helloTimer) clearTimeout(conn.helloTimer);
    conn.helloTimer = null;
    conn.info = { rank, backend, name, remote: conn.remote, ...(rankHint ? { rankHint } : {}) };
    this.members.set(rank, conn);
    conn.ws.send(
      encodeMessage({
        type: MSG.WELCOME,
        protocolVersion: PROTOCOL_VERSION,
        rank,
        workers: this.opts.maxWorkers,
        paramCount: this.opts.paramCount,
        heartbeatMs: this.opts.heartbeatMs ?? 1000,
        data: this.opts.data,
        config: this.opts.config,
        plan: this.opts.plan,
        job: this.job,
      }),
      { binary: true },
    );
    this.sendTrainData(conn);
    this.emit('joined', conn.info);
  }

  /** --serve-data: the training split in chunks, before anything else the member gets. */
  private sendTrainData(conn: Connection): void {
    const split = this.opts.serveSplit;
    if (!split) return;
    const px = split.rows * split.cols;
    for (let offset = 0; offset < split.count; offset += TRAIN_DATA_CHUNK) {
      const end = Math.min(split.count, offset + TRAIN_DATA_CHUNK);
      const msg = { type: MSG.TRAIN_DATA, offset, images: split.images.subarray(offset * px, end * px), labels: split.labels.subarray(offset, end) } as const;
      conn.ws.send(encodeMessage(msg), { binary: true });
    }
  }

  /** Ends a connection once: error message, close status, then `lost`/`refused` for the listeners. */
  private end(conn: Connection, err: ProtocolError, tellPeer = true): void {
    if (conn.ending) return;
    conn.ending = err;
    if (conn.helloTimer) clearTimeout(conn.helloTimer);
    if (tellPeer && conn.ws.readyState === conn.ws.OPEN) {
      conn.ws.send(encodeMessage({ type: MSG.ERROR, code: err.code, message: err.message }), { binary: true });
    }
    // Close reasons are limited to 123 bytes; the full text went in the error message.
    conn.ws.close(err.closeCode, err.code);
    setTimeout(() => conn.ws.terminate(), CLOSE_GRACE_MS).unref();
    this.forget(conn, err.message, err.code);
  }

  private closedByPeer(conn: Connection, code: number, reason: string): void {
    this.connections.delete(conn);
    if (conn.helloTimer) clearTimeout(conn.helloTimer);
    if (conn.ending) return;
    const fault = conn.wsFault;
    conn.ending = fault ?? new ProtocolError('DDP_BAD_MESSAGE', 'closed');
    if (fault) this.forget(conn, fault.message, fault.code);
    else this.forget(conn, `connection closed (code ${code}${reason ? `: ${reason}` : ''})`, 'DDP_CLOSED');
  }

  /** Removes a member (listeners get `lost`) or reports a refused connection. */
  private forget(conn: Connection, reason: string, code: LossCode): void {
    if (conn.info && this.members.get(conn.info.rank) === conn) {
      this.members.delete(conn.info.rank);
      this.emit('lost', conn.info, reason, code);
    } else if (!conn.info && code !== 'DDP_CLOSED') {
      this.emit('refused', conn.remote, conn.ending ?? new ProtocolError(code, reason));
    }
  }

  private beat(): void {
    const now = performance.now();
    const base = this.opts.heartbeatTimeoutMs ?? 10000;
    const period = this.opts.heartbeatMs ?? 1000;
    this.nonce = (this.nonce + 1) >>> 0;
    // A late tick means this process was busy (evaluating, saving): the workers' answers are still
    // queued behind this timer, so the stall is not their silence. Forgive it.
    const stalled = this.lastBeat > 0 && now - this.lastBeat > 2 * period;
    this.lastBeat = now;
    for (const conn of [...this.members.values()]) {
      if (stalled) conn.lastSeen = Math.max(conn.lastSeen, now - period);
      const timeout = base + 2 * conn.lastBusyMs;
      if (now - conn.lastSeen > timeout) {
        this.end(conn, new ProtocolError('DDP_TIMEOUT', `no message for ${((now - conn.lastSeen) / 1000).toFixed(1)} s (heartbeat timeout ${(timeout / 1000).toFixed(1)} s)`));
      } else if (conn.ws.readyState === conn.ws.OPEN) {
        conn.ws.send(encodeMessage({ type: MSG.PING, nonce: this.nonce }), { binary: true });
      }
    }
  }
}
