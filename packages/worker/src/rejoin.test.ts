// Which session ends are retried (RejoinPolicy, with a fake clock), the kept splits, and runWorker
// across coordinator losses against in-process fake coordinators (real sockets, no tfjs compute: the
// fake coordinators send no work).
import type { AddressInfo } from 'node:net';
import {
  MSG,
  PROTOCOL_VERSION,
  SEED_CNN_PARAM_COUNT,
  decodeFrame,
  encodeMessage,
  splitFingerprint,
  wireConfig,
  type DataSpec,
  type JobIdentity,
  type WelcomeMessage,
} from '@ddp/core';
import { randomSplit } from '@ddp/core/testing';
import { afterEach, describe, expect, it } from 'vitest';
import { WebSocketServer, type WebSocket } from 'ws';
import { RejoinPolicy, keepSplits } from './rejoin.js';
import { runWorker } from './run-worker.js';
import { WORKER_EXIT, type SessionEnd } from './session/worker-session.js';

const JOB: JobIdentity = { id: 'job-a', fingerprint: 'ab'.repeat(32) };
const train = randomSplit(6);
const SPEC: DataSpec = { dataset: 'mnist', trainCount: train.count, fingerprint: splitFingerprint(train), testCount: 10, testFingerprint: 'unused', serveData: false, rows: 28, cols: 28, numClasses: 10 };

function welcome(rank: number, job: JobIdentity = JOB): WelcomeMessage {
  return { type: MSG.WELCOME, protocolVersion: PROTOCOL_VERSION, rank, workers: 2, paramCount: SEED_CNN_PARAM_COUNT, heartbeatMs: 1000, data: SPEC, config: wireConfig({ allreduce: 'star' }), plan: { seed: 1, batchSize: 2 }, job };
}

const lost: SessionEnd = { exitCode: WORKER_EXIT.FAILED, message: 'lost the coordinator (the connection closed: code 1006)', lost: true };

describe('RejoinPolicy: which session ends are retried', () => {
  const clock = () => {
    let t = 1000;
    return { now: () => t, advance: (ms: number) => (t += ms) };
  };

  it('a lost coordinator after a welcome: reconnect, within the timeout counted from the loss', () => {
    const c = clock();
    const p = new RejoinPolicy(60_000, c.now);
    p.welcomed(welcome(0));
    expect(p.job).toEqual(JOB);
    expect(p.leftMs()).toBeNull();
    expect(p.next(lost)).toEqual({ action: 'reconnect', leftMs: 60_000, fresh: true });
    c.advance(20_000);
    // A reconnection that failed before its welcome: keep trying, same deadline, not a fresh loss.
    expect(p.next({ ...lost, message: 'closed before the handshake ended' })).toEqual({ action: 'reconnect', leftMs: 40_000, fresh: false });
    expect(p.leftMs()).toBe(40_000);
    c.advance(40_000);
    const stop = p.next(lost);
    expect(stop.action).toBe('stop');
    expect(stop.action === 'stop' && stop.end).toEqual({ exitCode: WORKER_EXIT.FAILED, message: expect.stringMatching(/no coordinator of job job-a took this worker back within 60 s \(--reconnect-timeout\); last error: lost the coordinator/) });
  });

  it('a rejoin resets the clock and counts; the job stays the first welcome\'s', () => {
    const c = clock();
    const p = new RejoinPolicy(10_000, c.now);
    p.welcomed(welcome(0));
    p.next(lost);
    c.advance(9_000);
    p.welcomed(welcome(1));
    expect(p.rejoins).toBe(1);
    expect(p.leftMs()).toBeNull();
    c.advance(100_000);
    expect(p.next(lost)).toEqual({ action: 'reconnect', leftMs: 10_000, fresh: true });
    expect(p.job).toEqual(JOB);
  });

  it('not retried: done, a refusal, a failure, an error from the coordinator, anything before the first welcome, or --reconnect-timeout 0', () => {
    const ends: SessionEnd[] = [
      { exitCode: WORKER_EXIT.DONE, message: 'done: finished' },
      { exitCode: WORKER_EXIT.REFUSED, message: 'refused by the coordinator: DDP_FULL: full' },
      { exitCode: WORKER_EXIT.REFUSED, message: 'DDP_JOB_CHANGED: ...', code: 'DDP_JOB_CHANGED' },
      { exitCode: WORKER_EXIT.FAILED, message: 'DDP_DATASET: mismatch', code: 'DDP_DATASET' },
      { exitCode: WORKER_EXIT.FAILED, message: 'the coordinator ended the connection: DDP_TIMEOUT: silent' },
    ];
    const p = new RejoinPolicy(60_000);
    p.welcomed(welcome(0));
    for (const end of ends) expect(p.next(end)).toEqual({ action: 'stop', end });
    // Nothing is reconnected before the first welcome (--connect-timeout covers the first connection).
    expect(new RejoinPolicy(60_000).next(lost)).toEqual({ action: 'stop', end: lost });
    const never = new RejoinPolicy(0);
    never.welcomed(welcome(0));
    expect(never.next(lost)).toEqual({ action: 'stop', end: lost });
    expect(() => new RejoinPolicy(-1)).toThrow(RangeError);
  });
});

describe('keepSplits', () => {
  it('loads once for the same data, again for other data', () => {
    let loads = 0;
    const load = keepSplits(() => {
      loads++;
      return { train, test: null };
    });
    expect(load(SPEC, undefined).train).toBe(train);
    expect(load({ ...SPEC }, undefined).train).toBe(train);
    expect(loads).toBe(1);
    load({ ...SPEC, limitTrain: 3 }, undefined);
    load(SPEC, '/elsewhere');
    expect(loads).toBe(3);
  });
});

/** A fake coordinator: welcomes every hello with `welcomeFor(n)` (n: connections so far), then runs `then`. */
interface FakeCoordinator {
  port: number;
  received: Array<Record<string, unknown>>;
  sockets: WebSocket[];
  /** Kills it like SIGKILL would: every socket dropped without a close frame, the port closed. */
  crash(): Promise<void>;
  close(): Promise<void>;
}

const fakes: FakeCoordinator[] = [];
afterEach(async () => {
  await Promise.all(fakes.splice(0).map((f) => f.close()));
});

function fakeCoordinator(port: number, opts: { job?: JobIdentity; rank?: number; then?: (ws: WebSocket) => void } = {}): Promise<FakeCoordinator> {
  return new Promise((resolve, reject) => {
    const wss = new WebSocketServer({ port, host: '127.0.0.1', perMessageDeflate: false });
    const received: Array<Record<string, unknown>> = [];
    const sockets: WebSocket[] = [];
    wss.on('connection', (ws) => {
      sockets.push(ws);
      ws.on('error', () => {});
      ws.on('message', (data) => {
        const m = decodeFrame(data as Buffer) as Record<string, unknown>;
        received.push(m);
        if (m.type === MSG.HELLO) {
          ws.send(encodeMessage(welcome(opts.rank ?? 0, opts.job)), { binary: true });
          opts.then?.(ws);
        }
      });
    });
    const close = () => new Promise<void>((r) => wss.close(() => r()));
    wss.once('error', reject);
    wss.once('listening', () => {
      const f: FakeCoordinator = {
        port: (wss.address() as AddressInfo).port,
        received,
        sockets,
        crash: async () => {
          for (const s of sockets) s.terminate();
          await close();
        },
        close: async () => {
          for (const s of sockets) s.terminate();
          await close();
        },
      };
      fakes.push(f);
      resolve(f);
    });
  });
}

const done = (ws: WebSocket) => setTimeout(() => ws.send(encodeMessage({ type: MSG.DONE, reason: 'finished' }), { binary: true }), 50);

function worker(url: string | (() => string), reconnectTimeoutMs: number) {
  const log: string[] = [];
  const welcomes: Array<{ rank: number; rejoin: number; at: string }> = [];
  let loads = 0;
  const run = runWorker({
    url,
    token: '',
    backend: 'cpu',
    connectTimeoutMs: 2000,
    heartbeatTimeoutMs: 30_000,
    reconnectTimeoutMs,
    loadTrain: () => {
      loads++;
      return train;
    },
    log: (l) => log.push(l),
    onWelcome: (w, rejoin, at) => welcomes.push({ rank: w.rank, rejoin, at }),
  });
  return { run, log, welcomes, loads: () => loads };
}

const waitFor = async (cond: () => boolean, ms = 5000) => {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) throw new Error('timed out');
    await new Promise((r) => setTimeout(r, 10));
  }
};

describe('runWorker across coordinator losses', () => {
  it('rejoins a coordinator of the same job restarted on the same port, reports the new rank, keeps its data, and ends with done (exit 0)', async () => {
    const first = await fakeCoordinator(0);
    const url = `ws://127.0.0.1:${first.port}`;
    const w = worker(url, 10_000);
    await waitFor(() => w.welcomes.length === 1);
    await first.crash();
    await waitFor(() => w.log.some((l) => l.includes('lost the coordinator')));
    await new Promise((r) => setTimeout(r, 300)); // a few refused attempts meanwhile
    const second = await fakeCoordinator(first.port, { rank: 1, then: done });
    const end = await w.run;
    expect(end).toEqual({ exitCode: WORKER_EXIT.DONE, message: 'done: finished' });
    expect(w.welcomes).toEqual([
      { rank: 0, rejoin: 0, at: url },
      { rank: 1, rejoin: 1, at: url },
    ]);
    expect(w.loads()).toBe(1);
    expect(w.log.find((l) => l.includes('lost the coordinator'))).toMatch(/^worker: lost the coordinator \(the connection closed: code 1006\); reconnecting for up to 10 s \(--reconnect-timeout\)$/);
    // The second hello names the job (a real coordinator refuses another job at the hello).
    expect(second.received.filter((m) => m.type === MSG.HELLO)).toMatchObject([{ job: JOB }]);
    expect(first.received.find((m) => m.type === MSG.HELLO)).not.toHaveProperty('job');
  });

  it('another job on that port (a coordinator that welcomes it anyway): exit 3, DDP_JOB_CHANGED, and the coordinator is told', async () => {
    const first = await fakeCoordinator(0);
    const w = worker(`ws://127.0.0.1:${first.port}`, 10_000);
    await waitFor(() => w.welcomes.length === 1);
    await first.crash();
    const other = await fakeCoordinator(first.port, { job: { id: 'job-b', fingerprint: JOB.fingerprint } });
    const end = await w.run;
    expect(end).toMatchObject({ exitCode: WORKER_EXIT.REFUSED, code: 'DDP_JOB_CHANGED' });
    expect(end.message).toMatch(/job job-b.*job job-a/);
    expect(other.received.find((m) => m.type === MSG.ERROR)).toMatchObject({ code: 'DDP_JOB_CHANGED' });
    expect(w.welcomes).toHaveLength(1);
  });

  it('no coordinator within the reconnect timeout: exit 1, saying so', async () => {
    const first = await fakeCoordinator(0);
    const w = worker(`ws://127.0.0.1:${first.port}`, 600);
    await waitFor(() => w.welcomes.length === 1);
    const lostAt = performance.now();
    await first.crash();
    const end = await w.run;
    expect(performance.now() - lostAt).toBeLessThan(2500);
    expect(end.exitCode).toBe(WORKER_EXIT.FAILED);
    expect(end.message).toMatch(/no coordinator of job job-a took this worker back within 0\.6 s \(--reconnect-timeout\); last error: ECONNREFUSED/);
  });

  it('--reconnect-timeout 0: a lost coordinator ends the worker at once (exit 1)', async () => {
    const first = await fakeCoordinator(0);
    const w = worker(`ws://127.0.0.1:${first.port}`, 0);
    await waitFor(() => w.welcomes.length === 1);
    await first.crash();
    expect(await w.run).toEqual({ exitCode: WORKER_EXIT.FAILED, message: 'lost the coordinator (the connection closed: code 1006)', lost: true });
    expect(w.log).toEqual([]);
  });

  it('a URL given as a function is asked again when reconnecting (a launcher moved the coordinator)', async () => {
    const first = await fakeCoordinator(0);
    let url = `ws://127.0.0.1:${first.port}`;
    const w = worker(() => url, 10_000);
    await waitFor(() => w.welcomes.length === 1);
    const moved = await fakeCoordinator(0, { then: done });
    url = `ws://127.0.0.1:${moved.port}`;
    await first.crash();
    expect((await w.run).exitCode).toBe(WORKER_EXIT.DONE);
    expect(w.welcomes.map((x) => x.at)).toEqual([`ws://127.0.0.1:${first.port}`, url]);
    expect(moved.received.filter((m) => m.type === MSG.HELLO)).toHaveLength(1);
  });

  it('a refusal on the first connection is not retried (exit 3)', async () => {
    const wss = new WebSocketServer({ port: 0, host: '127.0.0.1' });
    await new Promise((r) => wss.once('listening', r));
    wss.on('connection', (ws) => {
      ws.on('message', () => {
        ws.send(encodeMessage({ type: MSG.ERROR, code: 'DDP_AUTH', message: 'wrong token' }), { binary: true });
        ws.close(4001, 'DDP_AUTH');
      });
    });
    try {
      const w = worker(`ws://127.0.0.1:${(wss.address() as AddressInfo).port}`, 10_000);
      expect(await w.run).toEqual({ exitCode: WORKER_EXIT.REFUSED, message: 'refused by the coordinator: DDP_AUTH: wrong token' });
    } finally {
      await new Promise((r) => wss.close(r));
    }
  });
});
