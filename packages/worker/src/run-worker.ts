/**
 * A worker process's life: connect (retrying until --connect-timeout), say hello, then answer the
 * coordinator's frames through a WorkerSession until it says done, refuses us, or goes silent.
 * In ring mode the ring messages go to a RingMember, which answers on the same socket.
 */
import { hostname } from 'node:os';
import { CLOSE_CODES, CLOSE_DONE, MSG, SEED_CNN_PARAM_COUNT, encodeMessage, workerMaxPayload, type WelcomeMessage, type WorkerToCoordinator } from '@ddp/core';
import type { RawData } from 'ws';
import { connectWithRetry, localAddressOf } from './connect.js';
import { RingMember } from './ring/ring-member.js';
import { WORKER_EXIT, WorkerSession, type SessionEnd, type WorkerSessionOptions } from './worker-session.js';

const isWildcard = (host: string) => host === '0.0.0.0' || host === '::' || host === '';

export interface RunWorkerOptions {
  /** ws://HOST:PORT of the coordinator. */
  url: string;
  token: string;
  /** The tfjs backend this process computes on (already initialised). */
  backend: string;
  /** Keep retrying the first connection for this long (ms). */
  connectTimeoutMs: number;
  /** Give up on a coordinator silent for this long (ms); its pings come every second or so. */
  heartbeatTimeoutMs: number;
  dataDir?: string;
  loadTrain?: WorkerSessionOptions['loadTrain'];
  /** Notes for people: retries, the connected line. */
  log?: (line: string) => void;
  onWelcome?: (w: WelcomeMessage) => void;
  /**
   * Ring mode: the interface to listen on for ring peers (default: this host's address on the
   * connection to the coordinator, which is where the other workers can most likely reach it).
   */
  peerHost?: string;
  /** Ring mode: the address peers dial, when it differs from peerHost (needed for a wildcard peerHost). */
  peerAdvertise?: string;
  /** Ring mode: compute the announced next shard's gradient while the coordinator turns a step around (default true). */
  computeAhead?: boolean;
}

const CLOSE_GRACE_MS = 1000;
const TICK_MS = 1000;

/** Runs until the job is over for this worker; resolves with the exit code and why (never rejects). */
export async function runWorker(opts: RunWorkerOptions): Promise<SessionEnd> {
  let ws;
  try {
    ws = await connectWithRetry(opts.url, {
      timeoutMs: opts.connectTimeoutMs,
      maxPayload: workerMaxPayload(SEED_CNN_PARAM_COUNT, 28 * 28),
      onRetry: (attempt, why, waitMs) => {
        if (attempt === 1 || attempt % 10 === 0) opts.log?.(`worker: ${opts.url} not reachable yet (${why}); retrying for up to ${opts.connectTimeoutMs / 1000} s`);
        void waitMs;
      },
    });
  } catch (err) {
    return { exitCode: WORKER_EXIT.FAILED, message: err instanceof Error ? err.message : String(err) };
  }
  const socket = ws;
  const session = new WorkerSession({
    token: opts.token,
    backend: opts.backend,
    host: hostname(),
    pid: process.pid,
    dataDir: opts.dataDir,
    loadTrain: opts.loadTrain,
  });

  return new Promise<SessionEnd>((resolve) => {
    let lastHeard = performance.now();
    let lastTick = lastHeard;
    let settled = false;
    let ring: RingMember | null = null;
    const send = (msg: WorkerToCoordinator) => {
      if (socket.readyState === socket.OPEN) socket.send(encodeMessage(msg), { binary: true });
    };
    const finish = (end: SessionEnd) => {
      if (settled) return;
      settled = true;
      ring?.close();
      clearInterval(ticker);
      const closeCode = end.code ? CLOSE_CODES[end.code] : CLOSE_DONE;
      if (socket.readyState === socket.OPEN || socket.readyState === socket.CONNECTING) {
        socket.close(closeCode);
        const kill = setTimeout(() => socket.terminate(), CLOSE_GRACE_MS);
        socket.once('close', () => {
          clearTimeout(kill);
          resolve(end);
        });
      } else {
        resolve(end);
      }
    };
    const ticker = setInterval(() => {
      const now = performance.now();
      // A late tick means this process was busy computing: the coordinator's pings are queued, not missing.
      if (now - lastTick > 2 * TICK_MS) lastHeard = Math.max(lastHeard, now - TICK_MS);
      lastTick = now;
      if (now - lastHeard > opts.heartbeatTimeoutMs) {
        finish({ exitCode: WORKER_EXIT.FAILED, message: `the coordinator has been silent for ${((now - lastHeard) / 1000).toFixed(0)} s (--heartbeat-timeout)` });
      }
    }, TICK_MS);

    socket.on('message', (data: RawData, isBinary: boolean) => {
      const receivedAt = performance.now();
      lastHeard = receivedAt;
      const bytes = Array.isArray(data) ? Buffer.concat(data) : data instanceof ArrayBuffer ? new Uint8Array(data) : data;
      const out = isBinary ? session.receive(bytes, receivedAt) : session.receive(new Uint8Array([0xc1]), receivedAt);
      for (const reply of out.replies) send(reply);
      if (out.welcomed) {
        if (out.welcomed.allreduce === 'ring') ring = startRing(out.welcomed);
        opts.onWelcome?.(out.welcomed);
      }
      if (out.ring) ring?.handle(out.ring, receivedAt);
      if (out.end) finish(out.end);
    });
    const startRing = (w: WelcomeMessage): RingMember => {
      const local = localAddressOf(socket) ?? '127.0.0.1';
      const peerHost = opts.peerHost ?? local;
      return new RingMember({
        token: opts.token,
        peerHost,
        advertiseHost: opts.peerAdvertise ?? (isWildcard(peerHost) ? local : undefined),
        compress: w.compress,
        train: session.trainSplit,
        rows: w.data.rows,
        cols: w.data.cols,
        computeAhead: opts.computeAhead,
        send,
        fail: (code, message) => {
          send({ type: MSG.ERROR, code, message });
          finish({ exitCode: WORKER_EXIT.FAILED, message: `${code}: ${message}`, code });
        },
      });
    };
    socket.on('error', () => {
      // A 'close' always follows; it says what happened.
    });
    socket.on('close', (code, reason) => {
      const end = session.closed(code, reason.toString());
      finish(end ?? session.end ?? { exitCode: WORKER_EXIT.FAILED, message: 'connection closed' });
    });
    socket.send(encodeMessage(session.hello()), { binary: true });
  });
}
