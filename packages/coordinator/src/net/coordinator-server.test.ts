// The server and the executor over real sockets, with in-process clients that speak (or misspeak)
// the protocol: no tfjs, no child processes.
import { randomBytes } from 'node:crypto';
import { PROTOCOL_VERSION, decodeFrame, encodeMessage, type DataSpec, type DdpEvent, type Message } from '@ddp/core';
import { afterEach, describe, expect, it } from 'vitest';
import { WebSocket } from 'ws';
import { CoordinatorServer, type LossCode, type WorkerInfo } from './coordinator-server.js';
import { WsExecutor } from './ws-executor.js';

const P = 64;
const DATA: DataSpec = { dataset: 'mnist', trainCount: 1000, fingerprint: 'f', serveData: false, rows: 28, cols: 28, numClasses: 10 };
type Frame = Record<string, unknown>;

interface Client {
  ws: WebSocket;
  closed: Promise<{ code: number; reason: string }>;
  send(m: Message | Frame): void;
  /** The next frame of this type (frames of other types are kept for their own next()). */
  next(type: string): Promise<Frame>;
}

async function client(port: number): Promise<Client> {
  const ws = new WebSocket(`ws://127.0.0.1:${port}`, { perMessageDeflate: false });
  await new Promise<void>((resolve, reject) => {
    ws.once('open', () => resolve());
    ws.once('error', reject);
  });
  ws.on('error', () => {});
  const queues = new Map<string, Frame[]>();
  const waiters = new Map<string, Array<(m: Frame) => void>>();
  ws.on('message', (data) => {
    const m = decodeFrame(data as Buffer) as Frame;
    const type = String(m.type);
    const w = waiters.get(type)?.shift();
    if (w) w(m);
    else queues.set(type, [...(queues.get(type) ?? []), m]);
  });
  const closed = new Promise<{ code: number; reason: string }>((resolve) => ws.once('close', (code, reason) => resolve({ code, reason: reason.toString() })));
  return {
    ws,
    closed,
    send: (m) => ws.send(encodeMessage(m as Message), { binary: true }),
    next: (type) => {
      const q = queues.get(type);
      if (q && q.length > 0) return Promise.resolve(q.shift()!);
      return new Promise((resolve) => waiters.set(type, [...(waiters.get(type) ?? []), resolve]));
    },
  };
}

const hello = (token = 'secret', over: Frame = {}): Frame => ({ type: 'hello', protocolVersion: PROTOCOL_VERSION, token, backend: 'fake', host: 'test', pid: 1, ...over });

/** A well-behaved fake worker whose "gradient" for a shard depends only on the shard's indices. */
function fakeGradient(indices: Uint32Array): { grad: Float32Array; lossSum: number } {
  const grad = new Float32Array(P);
  let lossSum = 0;
  for (const idx of indices) {
    for (let i = 0; i < P; i++) grad[i] += Math.fround(Math.cos(idx * 0.11 + i) / (1 + idx));
    lossSum += 1 + (idx % 3);
  }
  return { grad, lossSum };
}

async function fakeWorker(port: number, opts: { answer?: boolean } = {}): Promise<Client & { rank: number }> {
  const c = await client(port);
  // Listen before the hello: work may arrive in the same read as the welcome.
  if (opts.answer !== false) {
    c.ws.on('message', (data) => {
      const m = decodeFrame(data as Buffer) as Frame;
      if (m.type === 'ping') c.send({ type: 'pong', nonce: m.nonce as number });
      if (m.type !== 'work') return;
      const indices = m.indices as Uint32Array;
      const { grad, lossSum } = fakeGradient(indices);
      c.send({ type: 'gradient', step: m.step as number, task: m.task as number, count: indices.length, lossSum, grad, computeMs: 1, busyMs: 1 });
    });
  }
  c.send(hello());
  const w = await c.next('welcome');
  return { ...c, rank: w.rank as number };
}

let servers: CoordinatorServer[] = [];
afterEach(async () => {
  await Promise.all(servers.map((s) => s.close()));
  servers = [];
});

async function serve(opts: Partial<ConstructorParameters<typeof CoordinatorServer>[0]> = {}) {
  const server = new CoordinatorServer({ port: 0, token: 'secret', maxWorkers: 2, paramCount: P, data: DATA, heartbeatMs: 50, ...opts });
  servers.push(server);
  const refused: Array<{ code: string; message: string }> = [];
  const lost: Array<{ info: WorkerInfo; reason: string; code: LossCode }> = [];
  server.addListener({
    refused: (_remote, err) => refused.push({ code: err.code, message: err.message }),
    lost: (info, reason, code) => lost.push({ info, reason, code }),
  });
  const port = await server.listen();
  return { server, port, refused, lost };
}

describe('CoordinatorServer handshake and refusals', () => {
  it('welcomes a worker with the right token and version: a rank, the data set, the parameter count', async () => {
    const { port, server } = await serve();
    const c = await client(port);
    c.send(hello());
    const w = await c.next('welcome');
    expect(w).toMatchObject({ type: 'welcome', protocolVersion: PROTOCOL_VERSION, rank: 0, workers: 2, paramCount: P, data: DATA });
    expect(server.ranks()).toEqual([0]);
    expect(await c.next('ping')).toMatchObject({ type: 'ping' });
  });

  it.each([
    ['a wrong token', hello('nope'), 'DDP_AUTH', 4001, /wrong token/],
    ['no token', hello(''), 'DDP_AUTH', 4001, /requires a token/],
    ['another protocol version', hello('secret', { protocolVersion: PROTOCOL_VERSION + 1 }), 'DDP_VERSION', 4002, new RegExp(`worker speaks version ${PROTOCOL_VERSION + 1}, this coordinator speaks ${PROTOCOL_VERSION}`)],
    ['a malformed hello', hello('secret', { pid: 'x' }), 'DDP_BAD_MESSAGE', 4000, /hello\.pid/],
    ['a first message that is not hello', { type: 'pong', nonce: 1 }, 'DDP_BAD_MESSAGE', 4000, /expected hello as the first message/],
  ])('refuses %s with an error message and a close status, and goes on serving', async (_what, first, code, closeCode, pattern) => {
    const { port, refused, server } = await serve();
    const member = await fakeWorker(port);
    const c = await client(port);
    c.send(first);
    const err = await c.next('error');
    expect(err.code).toBe(code);
    expect(String(err.message)).toMatch(pattern);
    expect((await c.closed).code).toBe(closeCode);
    expect(refused).toEqual([{ code, message: err.message }]);
    // The member is untouched: still pinged, still a member.
    await member.next('ping');
    expect(server.ranks()).toEqual([member.rank]);
  });

  it('closes undecodable bytes, text frames and oversized frames, each with its code', async () => {
    const { port, refused, server } = await serve();
    const member = await fakeWorker(port);

    const garbage = await client(port);
    garbage.ws.send(new Uint8Array([0xc1, 0x00, 0x01]), { binary: true });
    expect((await garbage.next('error')).code).toBe('DDP_BAD_MESSAGE');
    expect((await garbage.closed).code).toBe(4000);

    const text = await client(port);
    text.ws.send('{"type":"hello"}');
    expect(String((await text.next('error')).message)).toMatch(/text frame/);

    const big = await client(port);
    big.ws.send(new Uint8Array(server.maxPayload + 1), { binary: true });
    expect((await big.closed).code).toBe(1009);
    await new Promise((r) => setTimeout(r, 20));
    expect(refused.map((r) => r.code)).toEqual(['DDP_BAD_MESSAGE', 'DDP_BAD_MESSAGE', 'DDP_TOO_LARGE']);
    expect(server.ranks()).toEqual([member.rank]);
  });

  it('refuses a worker beyond --workers (DDP_FULL), and takes one again after a loss', async () => {
    const { port, server } = await serve();
    await fakeWorker(port);
    const second = await fakeWorker(port);
    const third = await client(port);
    third.send(hello());
    expect((await third.next('error')).code).toBe('DDP_FULL');
    second.ws.terminate();
    await new Promise((r) => setTimeout(r, 50));
    expect(server.ranks()).toEqual([0]);
    const again = await fakeWorker(port);
    expect(again.rank).toBe(1);
  });

  it('drops a member that sends a bad gradient or stays silent, and tells it why', async () => {
    const { port, lost, server } = await serve({ heartbeatTimeoutMs: 300 });
    const bad = await fakeWorker(port, { answer: false });
    bad.send({ type: 'gradient', step: 0, task: 0, count: 1, lossSum: 1, grad: new Float32Array(P).fill(NaN), computeMs: 1, busyMs: 1 });
    expect((await bad.next('error')).code).toBe('DDP_BAD_MESSAGE');
    const silent = await fakeWorker(port, { answer: false });
    const err = await silent.next('error');
    expect(err.code).toBe('DDP_TIMEOUT');
    expect((await silent.closed).code).toBe(4005);
    expect(lost.map((l) => l.code)).toEqual(['DDP_BAD_MESSAGE', 'DDP_TIMEOUT']);
    expect(lost[0].reason).toMatch(/gradient\.grad\[0\] is NaN/);
    expect(server.ranks()).toEqual([]);
  });
});

describe('WsExecutor over sockets', () => {
  function reference(batch: Uint32Array, parts: number): Float32Array {
    // Rank-order sum of the shards, as the executor promises.
    const out = new Float32Array(P);
    const base = Math.floor(batch.length / parts);
    let start = 0;
    for (let r = 0; r < parts; r++) {
      const size = base + (r < batch.length % parts ? 1 : 0);
      const g = fakeGradient(batch.subarray(start, start + size)).grad;
      for (let i = 0; i < P; i++) out[i] += g[i];
      start += size;
    }
    return out;
  }
  const randomBatch = (n: number) => new Uint32Array(randomBytes(4 * n).buffer).map((x) => x % 1000);

  it('sums the workers\' answers in rank order; a worker lost mid-step has its shard recomputed once', async () => {
    const { port, server } = await serve({ maxWorkers: 3 });
    const events: DdpEvent[] = [];
    const ex = new WsExecutor(server, { workerTimeoutMs: 5000, onEvent: (e) => events.push(e) });
    await Promise.all([fakeWorker(port), fakeWorker(port)]);
    const silent = await fakeWorker(port, { answer: false }); // takes its shard and never answers
    await ex.waitForWorkers(3, 1000);
    const params = new Float32Array(P);
    const batch = randomBatch(64);
    const pending = ex.gradientSum(params, { step: 0, epoch: 0, batch });
    await silent.next('work');
    silent.ws.terminate();
    const r = await pending;
    expect(r.grad).toEqual(reference(batch, 3));
    expect(events.filter((e) => e.event === 'worker_lost')).toMatchObject([{ event: 'worker_lost', rank: silent.rank, step: 1, workers: 2 }]);
    const batch2 = randomBatch(64);
    expect((await ex.gradientSum(params, { step: 1, epoch: 0, batch: batch2 })).grad).toEqual(reference(batch2, 2));
    expect(r.timing).toMatchObject({ compute: 1 });
    await ex.close();
  });

  it('with no worker left it waits --worker-timeout for one, then fails with a clear message', async () => {
    const { port, server } = await serve({ maxWorkers: 1 });
    const ex = new WsExecutor(server, { workerTimeoutMs: 300 });
    const only = await fakeWorker(port, { answer: false });
    await ex.waitForWorkers(1, 1000);
    const pending = ex.gradientSum(new Float32Array(P), { step: 4, epoch: 0, batch: randomBatch(8) });
    await only.next('work');
    only.ws.terminate();
    await expect(pending).rejects.toThrow(/no worker left at step 5 and none joined within 0.3 s \(--worker-timeout\)/);
  });

  it('a worker that joins while the step waits takes the orphaned shards', async () => {
    const { port, server } = await serve({ maxWorkers: 1 });
    const ex = new WsExecutor(server, { workerTimeoutMs: 5000 });
    const batch = randomBatch(10);
    const pending = ex.gradientSum(new Float32Array(P), { step: 0, epoch: 0, batch });
    await fakeWorker(port);
    expect((await pending).grad).toEqual(reference(batch, 1));
  });

  it('names the ranks a slow step waits for', async () => {
    const { port, server } = await serve({ maxWorkers: 2 });
    const notes: string[] = [];
    const ex = new WsExecutor(server, { workerTimeoutMs: 5000, stallWarnMs: 100, onInfo: (m) => notes.push(m) });
    await fakeWorker(port);
    const slow = await fakeWorker(port, { answer: false });
    await ex.waitForWorkers(2, 1000);
    const pending = ex.gradientSum(new Float32Array(P), { step: 6, epoch: 0, batch: randomBatch(8) });
    await new Promise((r) => setTimeout(r, 250));
    expect(notes.some((n) => n === `step 7: still waiting for rank(s) ${slow.rank} after 0 s or more`)).toBe(true);
    slow.ws.terminate();
    await pending;
  });

  it('waitForWorkers fails after the join timeout, naming how many came', async () => {
    const { port, server } = await serve({ maxWorkers: 2 });
    const ex = new WsExecutor(server, { workerTimeoutMs: 1000 });
    await fakeWorker(port);
    await expect(ex.waitForWorkers(2, 200)).rejects.toThrow(/only 1 of 2 worker\(s\) joined within 0.2 s/);
  });
});

