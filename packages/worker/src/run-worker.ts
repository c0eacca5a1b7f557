/**
 * A worker process's life: connect (retrying until --connect-timeout), say hello, then answer the
 * coordinator's frames through a WorkerSession until it says done, refuses us, or goes away.
 * Once welcomed (and holding the training split), the mode's member takes the mode's messages and
 * answers on the same socket: a StarMember in star mode, a RingMember in ring mode.
 *
 * If the coordinator goes away after welcoming us (a crash, a kill, a lost host), the worker does not
 * exit: it reconnects for up to --reconnect-timeout and rejoins, if what it finds there is the same
 * job (rejoin.ts decides; WorkerSession checks the job). Each session gets a fresh member (the
 * coordinator sends the state again); the training split loaded for the first is kept.
 */
import { hostname } from 'node:os';
import { CLOSE_CODES, CLOSE_DONE, SEED_CNN_PARAM_COUNT, encodeMessage, workerMaxPayload, type ProtocolErrorCode, type TlsMaterial, type WelcomeMessage, type WorkerToCoordinator } from '@ddp/core';
import type { RawData, WebSocket } from 'ws';
import { ConnectRefusedError, ConnectTimeoutError, connectWithRetry, dialledUrlOf, localAddressOf } from './connect.js';
import type { Member, MemberContext } from './member.js';
import { RejoinPolicy, keepSplits } from './rejoin.js';
import { schedulerRankHint } from './scheduler-rank.js';
import { RingMember } from './ring/ring-member.js';
import { WORKER_EXIT, WorkerSession, loadSplits, type MemberMessage, type SessionEnd, type WorkerSessionOptions } from './session/worker-session.js';
import { StarMember } from './star/star-member.js';

const isWildcard = (host: string) => host === '0.0.0.0' || host === '::' || host === '';

export interface RunWorkerOptions {
  /**
   * ws://HOST:PORT of the coordinator. A function is asked again before every connection attempt, so
   * that a launcher that restarted the coordinator elsewhere can point reconnecting workers at it.
   */
  url: string | (() => string);
  token: string;
  /** The tfjs backend this process computes on, or its initialisation (it runs while the connection opens). */
  backend: string | Promise<string>;
  /** Keep retrying the first connection for this long (ms). */
  connectTimeoutMs: number;
  /** Give up on a coordinator silent for this long (ms); its pings come every second or so. */
  heartbeatTimeoutMs: number;
  /**
   * After losing the coordinator mid-job, keep trying to rejoin one at the same address for this long
   * (ms). 0 (the default): end at once, as a failure.
   */
  reconnectTimeoutMs?: number;
  dataDir?: string;
  loadTrain?: WorkerSessionOptions['loadTrain'];
  /** Notes for people: retries, losing and rejoining the coordinator. */
  log?: (line: string) => void;
  /** Every accepted welcome: `rejoin` is 0 for the first, then how many times this worker rejoined; `url` is where. */
  onWelcome?: (w: WelcomeMessage, rejoin: number, url: string) => void;
  /**
   * Ring mode: the interface to listen on for ring peers (default: this host's address on the
   * connection to the coordinator, which is where the other workers can most likely reach it).
   */
  peerHost?: string;
  /** Ring mode: the address peers dial, when it differs from peerHost (needed for a wildcard peerHost). */
  peerAdvertise?: string;
  /** wss://: the CA the coordinator's certificate must verify against (--tls-ca; default: the system's CAs). */
  ca?: Buffer;
  /**
   * Ring mode over TLS (--tls-cert, --tls-key, --tls-ca): the peer listener serves TLS with this
   * certificate and asks peers for theirs; both ends verify against `ca`.
   */
  peerTls?: TlsMaterial & { ca: Buffer };
}

const CLOSE_GRACE_MS = 1000;
const TICK_MS = 1000;

const seconds = (ms: number) => `${Number((ms / 1000).toFixed(1))} s`;

/** Runs until the job is over for this worker; resolves with the exit code and why (never rejects). */
export async function runWorker(opts: RunWorkerOptions): Promise<SessionEnd> {
  const urlOf = typeof opts.url === 'string' ? ((u: string) => () => u)(opts.url) : opts.url;
  const maxPayload = workerMaxPayload(SEED_CNN_PARAM_COUNT, 28 * 28);
  const connecting = connectWithRetry(urlOf, {
    timeoutMs: opts.connectTimeoutMs,
    maxPayload,
    ca: opts.ca,
    onRetry: (attempt, why) => {
      if (attempt === 1 || attempt % 10 === 0) opts.log?.(`worker: ${urlOf()} not reachable yet (${why}); retrying for up to ${opts.connectTimeoutMs / 1000} s`);
    },
  });
  let ws;
  let backend: string;
  try {
    [ws, backend] = await Promise.all([connecting, opts.backend]);
  } catch (err) {
    // The backend may fail after the connection opened: do not leave that socket open.
    connecting.then((w) => w.terminate(), () => {});
    return { exitCode: err instanceof ConnectRefusedError ? WORKER_EXIT.REFUSED : WORKER_EXIT.FAILED, message: err instanceof Error ? err.message : String(err) };
  }
  let socket: WebSocket = ws;
  const policy = new RejoinPolicy(opts.reconnectTimeoutMs ?? 0);
  // Read once, kept for every rejoin of the same data.
  const loadData = keepSplits(opts.loadTrain ? (spec, dir) => ({ train: opts.loadTrain!(spec, dir), test: null }) : loadSplits);
  const rankHint = schedulerRankHint(process.env);
  for (;;) {
    const session = new WorkerSession({ token: opts.token, backend, host: hostname(), pid: process.pid, rankHint, dataDir: opts.dataDir, loadData, job: policy.job });
    const left = policy.leftMs();
    const end = await runSession(socket, session, opts, {
      // A rejoin attempt must be welcomed before the reconnect deadline.
      welcomeBy: left === null ? undefined : performance.now() + left,
      onWelcome: (w) => {
        policy.welcomed(w);
        opts.onWelcome?.(w, policy.rejoins, dialledUrlOf(socket) ?? socket.url);
      },
    });
    const next = policy.next(end);
    if (next.action === 'stop') return next.end;
    if (next.fresh) opts.log?.(`worker: ${end.message}; reconnecting for up to ${seconds(policy.timeoutMs)} (--reconnect-timeout)`);
    try {
      socket = await connectWithRetry(urlOf, {
        timeoutMs: next.leftMs,
        timeoutFlag: '--reconnect-timeout',
        maxPayload,
        ca: opts.ca,
        onRetry: (attempt, why) => {
          if (attempt % 20 === 0) opts.log?.(`worker: ${urlOf()} not reachable yet (${why}); still trying for ${seconds(policy.leftMs() ?? 0)}`);
        },
      });
    } catch (err) {
      if (err instanceof ConnectRefusedError) return { exitCode: WORKER_EXIT.REFUSED, message: err.message };
      const why = err instanceof ConnectTimeoutError ? `${err.lastError} at ${err.url}` : err instanceof Error ? err.message : String(err);
      return policy.gaveUp(why);
    }
  }
}

interface SessionHooks {
  /** End the session as `lost` if it is not welcomed by this time (performance.now()). */
  welcomeBy?: number;
  onWelcome(w: WelcomeMessage): void;
}

/** One connection, from hello to its end; resolves once the socket is closed. */
function runSession(socket: WebSocket, session: WorkerSession, opts: RunWorkerOptions, hooks: SessionHooks): Promise<SessionEnd> {
  return new Promise<SessionEnd>((resolve) => {
    let lastHeard = performance.now();
    let lastTick = lastHeard;
    let settled = false;
    let member: Member<MemberMessage> | null = null;
    const send = (msg: WorkerToCoordinator) => {
      if (socket.readyState === socket.OPEN) socket.send(encodeMessage(msg), { binary: true });
    };
    const finish = (end: SessionEnd) => {
      if (settled) return;
      settled = true;
      member?.close();
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
    const fail = (code: ProtocolErrorCode, message: string, exitCode?: number) => {
      const out = session.fail(code, message, exitCode);
      for (const reply of out.replies) send(reply);
      finish(out.end!);
    };
    const ticker = setInterval(() => {
      const now = performance.now();
      // A late tick means this process was busy computing: the coordinator's pings are queued, not missing.
      if (now - lastTick > 2 * TICK_MS) lastHeard = Math.max(lastHeard, now - TICK_MS);
      lastTick = now;
      if (now - lastHeard > opts.heartbeatTimeoutMs) {
        finish({ exitCode: WORKER_EXIT.FAILED, message: `lost the coordinator (silent for ${((now - lastHeard) / 1000).toFixed(0)} s, --heartbeat-timeout)`, lost: true });
      } else if (hooks.welcomeBy !== undefined && !session.welcome && now > hooks.welcomeBy) {
        finish({ exitCode: WORKER_EXIT.FAILED, message: 'connected, but no welcome came', lost: true });
      }
    }, TICK_MS);

    const startMember = (ctx: MemberContext): Member<MemberMessage> | null => {
      if (ctx.welcome.config.allreduce === 'star') return new StarMember(ctx) as Member<MemberMessage>;
      // Gradients must not cross in the clear what the coordinator link encrypts.
      if ((dialledUrlOf(socket) ?? socket.url).startsWith('wss:') && !opts.peerTls) {
        fail('DDP_TLS_REQUIRED', 'the coordinator serves TLS, so ring peer links must use it too: give this worker --tls-cert and --tls-key (ddp certs makes them) besides --tls-ca', WORKER_EXIT.REFUSED);
        return null;
      }
      const local = localAddressOf(socket) ?? '127.0.0.1';
      const peerHost = opts.peerHost ?? local;
      return new RingMember(ctx, { token: opts.token, peerHost, advertiseHost: opts.peerAdvertise ?? (isWildcard(peerHost) ? local : undefined), tls: opts.peerTls }) as Member<MemberMessage>;
    };

    socket.on('message', (data: RawData, isBinary: boolean) => {
      const receivedAt = performance.now();
      lastHeard = receivedAt;
      const bytes = Array.isArray(data) ? Buffer.concat(data) : data instanceof ArrayBuffer ? new Uint8Array(data) : data;
      const out = session.receive(isBinary ? bytes : new Uint8Array([0xc1]));
      for (const reply of out.replies) send(reply);
      if (out.welcomed) hooks.onWelcome(out.welcomed);
      if (out.ready) member = startMember({ ...out.ready, send, fail });
      if (out.member) member?.handle(out.member, receivedAt);
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
