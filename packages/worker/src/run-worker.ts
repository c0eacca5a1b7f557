/**
 * A worker process's life: connect (retrying until --connect-timeout), say hello, then answer the
 * coordinator's frames through a WorkerSession until it says done, refuses us, or goes silent.
 */
import { hostname } from 'node:os';
import { CLOSE_CODES, CLOSE_DONE, SEED_CNN_PARAM_COUNT, encodeMessage, workerMaxPayload, type WelcomeMessage } from '@ddp/core';
import type { RawData } from 'ws';
import { connectWithRetry } from './connect.js';
import { WORKER_EXIT, WorkerSession, type SessionEnd, type WorkerSessionOptions } from './worker-session.js';

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
    const finish = (end: SessionEnd) => {
      if (settled) return;
      settled = true;
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
      for (const reply of out.replies) if (socket.readyState === socket.OPEN) socket.send(encodeMessage(reply), { binary: true });
      if (out.welcomed) opts.onWelcome?.(out.welcomed);
      if (out.end) finish(out.end);
    });
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
