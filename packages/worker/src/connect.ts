// Opening the connection to a coordinator that may not be up yet: retry with exponential backoff
// (plus jitter, so that N workers started together do not knock in lockstep) until a deadline.
// A refusal that the same settings would meet again (a certificate that does not verify, TLS on one
// side only) is not retried: it ends at once with its DDP_* code (ConnectRefusedError).
import { ProtocolError, REFUSAL_HEADER, refusalFrom, tlsFailure } from '@ddp/core';
import { WebSocket } from 'ws';

export interface ConnectOptions {
  /** Give up after this long (ms) without a connection. */
  timeoutMs: number;
  /** The flag that set timeoutMs, for the error message (default --connect-timeout). */
  timeoutFlag?: string;
  /** Largest frame accepted from the coordinator. */
  maxPayload: number;
  /** Called before each wait, for a "still trying" note. */
  onRetry?: (attempt: number, error: string, waitMs: number) => void;
  signal?: AbortSignal;
  /** wss://: the CA the coordinator's certificate must verify against (default: the system's CAs). */
  ca?: Buffer;
}

const FIRST_WAIT_MS = 100;

/** This host's address on each open connection (ring mode listens there for its peers by default). */
const localAddresses = new WeakMap<WebSocket, string>();

/** The local address of a socket opened by connectWithRetry (undefined if unknown). */
export function localAddressOf(ws: WebSocket): string | undefined {
  return localAddresses.get(ws);
}
/** The URL each open connection was dialled with, as given (ws's own `url` is normalised). */
const dialled = new WeakMap<WebSocket, string>();

/** The URL, as given, that connectWithRetry opened `ws` with. */
export function dialledUrlOf(ws: WebSocket): string | undefined {
  return dialled.get(ws);
}
const MAX_WAIT_MS = 2000;

/** The coordinator (or the TLS layer) refused us in a way a retry would meet again. */
export class ConnectRefusedError extends Error {
  constructor(readonly refusal: ProtocolError) {
    super(`${refusal.code}: ${refusal.message}`);
    this.name = 'ConnectRefusedError';
  }
}

function openOnce(url: string, maxPayload: number, handshakeMs: number, ca: Buffer | undefined): Promise<WebSocket> {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(url, { maxPayload, perMessageDeflate: false, handshakeTimeout: handshakeMs, ...(ca ? { ca } : {}) });
    const onError = (err: Error & { code?: string }) => {
      ws.removeAllListeners();
      ws.on('error', () => {});
      ws.terminate();
      const refusal = tlsFailure(err, url);
      reject(refusal ? new ConnectRefusedError(refusal) : err);
    };
    ws.once('error', onError);
    ws.once('unexpected-response', (_req, res) => {
      const refusal = refusalFrom(res.headers[REFUSAL_HEADER]);
      if (refusal) onError(new ConnectRefusedError(refusal));
      else onError(new Error(`HTTP ${res.statusCode} instead of a WebSocket upgrade`));
    });
    ws.once('upgrade', (res) => {
      const local = res.socket.localAddress;
      if (local) localAddresses.set(ws, local.startsWith('::ffff:') ? local.slice(7) : local);
    });
    ws.once('open', () => {
      ws.off('error', onError);
      dialled.set(ws, url);
      resolve(ws);
    });
  });
}

/** connectWithRetry gave up: the URL it tried last and the last error, besides the message. */
export class ConnectTimeoutError extends Error {
  constructor(
    message: string,
    readonly url: string,
    readonly lastError: string,
  ) {
    super(message);
    this.name = 'ConnectTimeoutError';
  }
}

/**
 * Connects to `url`, retrying failures until `timeoutMs` has passed; rejects with a
 * ConnectTimeoutError. A function for `url` is called before every attempt (the address may move).
 */
export async function connectWithRetry(target: string | (() => string), opts: ConnectOptions): Promise<WebSocket> {
  const deadline = performance.now() + opts.timeoutMs;
  let wait = FIRST_WAIT_MS;
  for (let attempt = 1; ; attempt++) {
    const left = deadline - performance.now();
    const url = typeof target === 'string' ? target : target();
    try {
      return await openOnce(url, opts.maxPayload, Math.max(1000, Math.min(10000, left)), opts.ca);
    } catch (err) {
      if (err instanceof ConnectRefusedError) throw err;
      const e = err as Error & { code?: string };
      const why = e.code ? `${e.code}${e.message && !e.message.includes(e.code) ? ` (${e.message})` : ''}` : e.message;
      const remaining = deadline - performance.now();
      if (remaining <= 0 || opts.signal?.aborted) {
        throw new ConnectTimeoutError(`could not connect to ${url} within ${(opts.timeoutMs / 1000).toFixed(0)} s (${opts.timeoutFlag ?? '--connect-timeout'}); last error: ${why}`, url, why);
      }
      const pause = Math.min(remaining, wait * (0.75 + Math.random() * 0.5));
      opts.onRetry?.(attempt, why, pause);
      await new Promise((r) => setTimeout(r, pause));
      wait = Math.min(MAX_WAIT_MS, wait * 2);
    }
  }
}
