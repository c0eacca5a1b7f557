// The server over real sockets, with in-process clients that speak (or misspeak) the protocol: no
// tfjs, no child processes. (The trainers over the server: star/star-trainer.test.ts, ring/ring-trainer.test.ts.)
import { randomBytes } from 'node:crypto';
import {
  CLOSE_DONE,
  PROTOCOL_VERSION,
  TRAIN_DATA_CHUNK,
  decodeFrame,
  encodeMessage,
  wireConfig,
  type DataSpec,
  type Message,
  type Split,
} from '@ddp/core';
import { afterEach, describe, expect, it } from 'vitest';
import { WebSocket } from 'ws';
import { EventStream } from '../observe/event-stream.js';
import { CoordinatorServer, type LossCode, type ModeMessage, type WorkerInfo } from './coordinator-server.js';

const P = 64;
const DATA: DataSpec = { dataset: 'mnist', trainCount: 1000, fingerprint: 'f', serveData: false, rows: 28, cols: 28, numClasses: 10 };
const PLAN = { seed: 5, batchSize: 32 };
// float32 gradients on the wire: the fast reduction (the default, exact, sends exact-sum encodings).
const STAR = wireConfig({ allreduce: 'star', reduction: 'fast' });
type Frame = Record<string, unknown>;

interface Client {
  ws: WebSocket;
  /** Every frame received, in arrival order. */
  frames: Frame[];
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
  const frames: Frame[] = [];
  ws.on('message', (data) => {
    const m = decodeFrame(data as Buffer) as Frame;
    frames.push(m);
    const type = String(m.type);
    const w = waiters.get(type)?.shift();
    if (w) w(m);
    else queues.set(type, [...(queues.get(type) ?? []), m]);
  });
  const closed = new Promise<{ code: number; reason: string }>((resolve) => ws.once('close', (code, reason) => resolve({ code, reason: reason.toString() })));
  return {
    ws,
    frames,
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

/** A member that answers pings (and nothing else). */
async function fakeWorker(port: number, opts: { pong?: boolean } = {}): Promise<Client & { rank: number }> {
  const c = await client(port);
  if (opts.pong !== false) {
    c.ws.on('message', (data) => {
      const m = decodeFrame(data as Buffer) as Frame;
      if (m.type === 'ping') c.send({ type: 'pong', nonce: m.nonce as number });
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
  const server = new CoordinatorServer({ port: 0, token: 'secret', maxWorkers: 2, paramCount: P, data: DATA, heartbeatMs: 50, config: STAR, plan: PLAN, ...opts });
  servers.push(server);
  const refused: Array<{ code: string; message: string }> = [];
  const lost: Array<{ info: WorkerInfo; reason: string; code: LossCode }> = [];
  const joined: WorkerInfo[] = [];
  const messages: Array<{ rank: number; msg: ModeMessage; bytes: number }> = [];
  server.addListener({
    joined: (info) => joined.push(info),
    refused: (_remote, err) => refused.push({ code: err.code, message: err.message }),
    lost: (info, reason, code) => lost.push({ info, reason, code }),
    message: (rank, msg, bytes) => messages.push({ rank, msg, bytes }),
  });
  const port = await server.listen();
  return { server, port, refused, lost, joined, messages };
}

describe('CoordinatorServer job identity', () => {
  it('without a job given: a random id (16 hex digits, another per server) and the fingerprint \'unspecified\', the same in every welcome', async () => {
    const a = await serve();
    const b = await serve();
    expect(a.server.job).toEqual({ id: expect.stringMatching(/^[0-9a-f]{16}$/), fingerprint: 'unspecified' });
    expect(b.server.job.id).not.toBe(a.server.job.id);
    const welcomes = await Promise.all([fakeWorker(a.port), fakeWorker(a.port)].map(async (w) => (await w).frames.find((f) => f.type === 'welcome')));
    expect(welcomes.map((w) => w!.job)).toEqual([a.server.job, a.server.job]);
  });

  it('a hello that names another job (a worker rejoining after losing its coordinator) is refused with DDP_JOB_CHANGED before it takes a seat; its own job is welcomed', async () => {
    const job = { id: 'job-a', fingerprint: 'ab'.repeat(32) };
    const { port, server, refused, joined } = await serve({ job });
    for (const other of [{ ...job, id: 'job-b' }, { ...job, fingerprint: 'cd'.repeat(32) }]) {
      const c = await client(port);
      c.send(hello('secret', { job: other }));
      const err = await c.next('error');
      expect(err).toMatchObject({ type: 'error', code: 'DDP_JOB_CHANGED' });
      expect(err.message).toMatch(/^this coordinator serves another job \(job job-a, fingerprint abababababab…\) than the worker's \(job job-\w, fingerprint \w+…\)/);
      expect((await c.closed).code).toBe(4009);
    }
    expect(refused.map((r) => r.code)).toEqual(['DDP_JOB_CHANGED', 'DDP_JOB_CHANGED']);
    expect(joined).toEqual([]);
    // The token comes first: a stranger learns nothing about the job.
    const stranger = await client(port);
    stranger.send(hello('wrong', { job: { id: 'job-b', fingerprint: 'x' } }));
    expect(await stranger.next('error')).toMatchObject({ code: 'DDP_AUTH' });
    const same = await client(port);
    same.send(hello('secret', { job }));
    expect(await same.next('welcome')).toMatchObject({ rank: 0, job });
    expect(server.ranks()).toEqual([0]);
  });

  it('a job id or fingerprint out of bounds is refused at construction (RangeError)', () => {
    const make = (job: { id: string; fingerprint: string }) => new CoordinatorServer({ maxWorkers: 1, paramCount: P, data: DATA, config: STAR, plan: PLAN, job });
    expect(() => make({ id: '', fingerprint: 'f' })).toThrow(RangeError);
    expect(() => make({ id: 'i'.repeat(65), fingerprint: 'f' })).toThrow(/job\.id must be a string of 1 to 64 characters/);
    expect(() => make({ id: 'i', fingerprint: '' })).toThrow(/job\.fingerprint must be a string of 1 to 128 characters/);
    expect(make({ id: 'i'.repeat(64), fingerprint: 'f'.repeat(128) }).job).toEqual({ id: 'i'.repeat(64), fingerprint: 'f'.repeat(128) });
  });
});

describe('CoordinatorServer handshake and refusals', () => {
  it('welcomes a worker with the right token and version: a rank, the data set, the parameter count, the wire settings, the plan and the job', async () => {
    const config = wireConfig({ allreduce: 'ring', compress: 'fp16', hashEvery: 7 });
    const job = { id: 'mnist-run-3', fingerprint: 'ab'.repeat(32) };
    const { port, server, joined } = await serve({ config, job });
    const c = await client(port);
    c.send(hello());
    const w = await c.next('welcome');
    expect(w).toEqual({ type: 'welcome', protocolVersion: PROTOCOL_VERSION, rank: 0, workers: 2, paramCount: P, heartbeatMs: 50, data: DATA, config, plan: PLAN, job });
    expect(server.job).toEqual(job);
    expect(config).toEqual({ allreduce: 'ring', compress: 'fp16', reduction: 'fast', hashEvery: 7 });
    expect(server.ranks()).toEqual([0]);
    expect(joined).toEqual([{ rank: 0, backend: 'fake', name: 'test:1', remote: expect.stringMatching(/^127\.0\.0\.1:\d+$/) }]);
    expect(server.info(0)).toEqual(joined[0]);
    expect(await c.next('ping')).toMatchObject({ type: 'ping' });
    expect(c.frames.filter((f) => f.type === 'train_data')).toEqual([]); // no --serve-data, no pixels
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
    const bad = await fakeWorker(port, { pong: false });
    bad.send({ type: 'gradient', step: 0, task: 0, count: 1, lossSum: 1, grad: new Float32Array(P).fill(NaN), computeMs: 1, busyMs: 1 });
    expect((await bad.next('error')).code).toBe('DDP_BAD_MESSAGE');
    const silent = await fakeWorker(port, { pong: false });
    const err = await silent.next('error');
    expect(err.code).toBe('DDP_TIMEOUT');
    expect((await silent.closed).code).toBe(4005);
    expect(lost.map((l) => l.code)).toEqual(['DDP_BAD_MESSAGE', 'DDP_TIMEOUT']);
    expect(lost[0].reason).toMatch(/gradient\.grad\[0\] is NaN/);
    expect(server.ranks()).toEqual([]);
  });
});

describe('CoordinatorServer messages and --serve-data', () => {
  it('hands a member\'s validated mode messages to its listeners, with the frame size', async () => {
    const { port, messages, lost } = await serve();
    const w = await fakeWorker(port);
    const gradient = { type: 'gradient', step: 3, task: 8, count: 2, lossSum: 1.5, grad: Float32Array.from({ length: P }, (_, i) => i / 3), computeMs: 4, busyMs: 5 } as const;
    w.send(gradient);
    await w.next('ping');
    await new Promise((r) => setTimeout(r, 20));
    expect(messages).toEqual([{ rank: w.rank, msg: gradient, bytes: encodeMessage(gradient).byteLength }]);
    expect(lost).toEqual([]);
  });

  it('in ring mode the ring messages go to the listeners and a gradient is refused (DDP_BAD_MESSAGE)', async () => {
    const { port, messages, lost } = await serve({ config: wireConfig({ allreduce: 'ring' }) });
    const w = await fakeWorker(port);
    const progress = {
      type: 'ring_progress', generation: 0, step: 0, count: 16, lossSum: 3, hash: '0123456789abcdef', bytesSent: 256,
      prepareMs: 1, computeMs: 2, allreduceMs: 3, optimizerMs: 4, cycleMs: 0,
    } as const;
    const address = { type: 'ring_address', generation: 0, url: 'ws://127.0.0.1:9', steps: -1 } as const;
    w.send(address);
    w.send(progress);
    w.send({ type: 'ring_stopped', generation: 0, steps: 1 });
    w.send({ type: 'gradient', step: 0, task: 0, count: 1, lossSum: 1, grad: new Float32Array(P), computeMs: 1, busyMs: 1 });
    const err = await w.next('error');
    expect(err.code).toBe('DDP_BAD_MESSAGE');
    expect(err.message).toBe('gradient from worker: not part of --allreduce ring');
    expect((await w.closed).code).toBe(4000);
    expect(messages.map((m) => m.msg)).toEqual([address, progress, { type: 'ring_stopped', generation: 0, steps: 1 }]);
    expect(lost.map((l) => [l.info.rank, l.code])).toEqual([[w.rank, 'DDP_BAD_MESSAGE']]);
  });

  it('in star mode a ring message is refused (DDP_BAD_MESSAGE)', async () => {
    const { port, messages } = await serve();
    const w = await fakeWorker(port);
    w.send({ type: 'ring_ready', generation: 0 });
    expect((await w.next('error')).message).toBe('ring_ready from worker: not part of --allreduce star');
    expect(messages).toEqual([]);
  });

  it('a member silent after a ring_progress is allowed twice its prepare + compute time on top of the heartbeat timeout', async () => {
    const { port, server, lost } = await serve({ config: wireConfig({ allreduce: 'ring' }), heartbeatTimeoutMs: 150 });
    const w = await fakeWorker(port, { pong: false });
    w.send({ type: 'ring_progress', generation: 0, step: 0, count: 1, lossSum: 1, bytesSent: 0, prepareMs: 100, computeMs: 300, allreduceMs: 0, optimizerMs: 0, cycleMs: 0 });
    const t0 = performance.now();
    // Without the allowance it would be dropped after 150 ms; with it, after 150 + 2 x 400 ms.
    await new Promise((r) => setTimeout(r, 500));
    expect(server.ranks()).toEqual([w.rank]);
    expect((await w.next('error')).code).toBe('DDP_TIMEOUT');
    expect(performance.now() - t0).toBeGreaterThan(800);
    expect(lost.map((l) => l.code)).toEqual(['DDP_TIMEOUT']);
  });

  it('--serve-data: the training split follows the welcome in train_data chunks that cover it in order, before anything else', async () => {
    const count = 2 * TRAIN_DATA_CHUNK + 5;
    const split: Split = { images: new Uint8Array(randomBytes(count * 4)), labels: new Uint8Array(randomBytes(count).map((b) => b % 10)), count, rows: 2, cols: 2 };
    const data: DataSpec = { ...DATA, trainCount: count, serveData: true, rows: 2, cols: 2 };
    const { port } = await serve({ data, serveSplit: split });
    for (const expectedRank of [0, 1]) {
      const c = await client(port);
      c.send(hello());
      await c.next('welcome');
      for (let k = 0; k < 3; k++) await c.next('train_data');
      const head = c.frames.slice(0, 4);
      expect(head.map((f) => f.type)).toEqual(['welcome', 'train_data', 'train_data', 'train_data']);
      expect(head[0]).toMatchObject({ rank: expectedRank, data });
      const chunks = head.slice(1) as Array<{ offset: number; images: Uint8Array; labels: Uint8Array }>;
      expect(chunks.map((ch) => [ch.offset, ch.labels.length, ch.images.length])).toEqual([
        [0, TRAIN_DATA_CHUNK, TRAIN_DATA_CHUNK * 4],
        [TRAIN_DATA_CHUNK, TRAIN_DATA_CHUNK, TRAIN_DATA_CHUNK * 4],
        [2 * TRAIN_DATA_CHUNK, 5, 20],
      ]);
      expect(Buffer.concat(chunks.map((ch) => ch.images)).equals(Buffer.from(split.images))).toBe(true);
      expect(Buffer.concat(chunks.map((ch) => ch.labels)).equals(Buffer.from(split.labels))).toBe(true);
      expect(Object.keys(chunks[0]!).sort()).toEqual(['images', 'labels', 'offset', 'type']);
    }
  });
});

describe('CoordinatorServer HTTP endpoints on the same port', () => {
  const get = async (port: number, path: string, headers: Record<string, string> = {}) => {
    const res = await fetch(`http://127.0.0.1:${port}${path}`, { headers });
    return { status: res.status, body: await res.text(), type: res.headers.get('content-type') };
  };
  const metrics = { contentType: 'text/plain; version=0.0.4; charset=utf-8', text: async () => '# HELP ddp_up Up.\n# TYPE ddp_up gauge\nddp_up 1\n' };

  it('/healthz needs no token; /metrics and /readyz need it (bearer or ?token=); anything else is 404', async () => {
    const { port } = await serve({ http: { metrics } });
    expect(await get(port, '/healthz')).toMatchObject({ status: 200, body: 'ok\n' });
    expect(await get(port, '/metrics')).toMatchObject({ status: 401 });
    expect(await get(port, '/metrics', { authorization: 'Bearer nope' })).toMatchObject({ status: 401 });
    expect(await get(port, '/metrics?token=nope')).toMatchObject({ status: 401 });
    expect(await get(port, '/readyz')).toMatchObject({ status: 401 });
    expect(await get(port, '/metrics', { authorization: 'Bearer secret' })).toEqual({ status: 200, body: await metrics.text(), type: metrics.contentType });
    expect(await get(port, '/metrics?token=secret')).toMatchObject({ status: 200 });
    expect(await get(port, '/')).toMatchObject({ status: 404 });
    expect(await get(port, '/metricsx?token=secret')).toMatchObject({ status: 404 });
  });

  it('without a token every endpoint is open; /metrics is 404 when the server has no metrics', async () => {
    const { port } = await serve({ token: '' });
    expect(await get(port, '/readyz')).toMatchObject({ status: 503 });
    expect(await get(port, '/metrics')).toMatchObject({ status: 404 });
  });

  it('/readyz is 503 with a one-line reason until every seat is taken, then 200', async () => {
    const { port } = await serve();
    const auth = { authorization: 'Bearer secret' };
    const before = await get(port, '/readyz', auth);
    expect(before).toMatchObject({ status: 503, body: 'not ready: waiting for workers (0/2 joined)\n' });
    await fakeWorker(port);
    expect(await get(port, '/readyz', auth)).toMatchObject({ status: 503, body: 'not ready: waiting for workers (1/2 joined)\n' });
    await fakeWorker(port);
    expect(await get(port, '/readyz', auth)).toMatchObject({ status: 200, body: 'ready\n' });
  });

  it('uses the readiness it is given', async () => {
    let why: string | null = 'not ready: warming up';
    const { port } = await serve({ token: '', http: { readiness: () => why } });
    expect(await get(port, '/readyz')).toEqual({ status: 503, body: 'not ready: warming up\n', type: 'text/plain; charset=utf-8' });
    why = null;
    expect(await get(port, '/readyz')).toMatchObject({ status: 200 });
  });

  it('WebSocket clients are still welcomed and refused on the same port, and close() ends HTTP keep-alive clients too', async () => {
    const { port, server, refused } = await serve({ http: { metrics } });
    expect(await get(port, '/healthz')).toMatchObject({ status: 200 }); // a keep-alive connection stays open
    const member = await fakeWorker(port);
    expect(member.rank).toBe(0);
    const c = await client(port);
    c.send(hello('nope'));
    expect((await c.next('error')).code).toBe('DDP_AUTH');
    expect((await c.closed).code).toBe(4001);
    expect(refused.map((r) => r.code)).toEqual(['DDP_AUTH']);
    await server.close();
    expect((await member.closed).code).toBe(CLOSE_DONE);
    await expect(fetch(`http://127.0.0.1:${port}/healthz`)).rejects.toThrow();
  });

  it('/, /events and /assets/* need the token or the view token; /healthz neither; the page passes the token on', async () => {
    const events = new EventStream();
    const { port } = await serve({ http: { metrics, events, viewToken: 'viewer' } });
    for (const path of ['/', '/events', '/assets/dashboard.js', '/assets/uplot.iife.min.js', '/assets/uPlot.min.css', '/metrics', '/readyz']) {
      expect((await get(port, path)).status, path).toBe(401);
      expect((await get(port, `${path}?token=nope`)).status, path).toBe(401);
      expect((await get(port, path, { authorization: 'Bearer nope' })).status, path).toBe(401);
    }
    expect(await get(port, '/healthz')).toMatchObject({ status: 200 });
    for (const token of ['secret', 'viewer']) {
      const page = await get(port, `/?token=${token}`);
      expect(page).toMatchObject({ status: 200, type: 'text/html; charset=utf-8' });
      expect(page.body).toContain(`src="assets/dashboard.js?token=${token}"`);
      expect(page.body).toContain(`data-qs="?token=${token}"`);
      expect(page.body).not.toContain('{{QS}}');
      const uplot = await get(port, `/assets/uplot.iife.min.js?token=${token}`);
      expect(uplot).toMatchObject({ status: 200, type: 'text/javascript; charset=utf-8' });
      expect(uplot.body).toContain('uPlot');
      expect(await get(port, '/assets/uPlot.min.css', { authorization: `Bearer ${token}` })).toMatchObject({ status: 200, type: 'text/css; charset=utf-8' });
      expect(await get(port, `/assets/dashboard.js?token=${token}`)).toMatchObject({ status: 200 });
      expect(await get(port, `/metrics?token=${token}`)).toMatchObject({ status: 200 });
      expect(await get(port, `/readyz?token=${token}`)).toMatchObject({ status: 503 });
    }
    expect(await get(port, '/assets/nope.js?token=viewer')).toMatchObject({ status: 404 });
    expect(await get(port, '/assets/../package.json?token=viewer')).toMatchObject({ status: 404 });
  });

  it('without a token the page is open and carries no token', async () => {
    const { port } = await serve({ token: '', http: { events: new EventStream() } });
    const page = await get(port, '/');
    expect(page.status).toBe(200);
    expect(page.body).toContain('src="assets/dashboard.js"');
  });

  it('a view token cannot join as a worker: its hello is refused with DDP_AUTH', async () => {
    const { port, refused, server } = await serve({ http: { events: new EventStream(), viewToken: 'viewer' } });
    const c = await client(port);
    c.send(hello('viewer'));
    expect((await c.next('error')).code).toBe('DDP_AUTH');
    expect((await c.closed).code).toBe(4001);
    expect(refused.map((r) => r.code)).toEqual(['DDP_AUTH']);
    expect(server.ranks()).toEqual([]);
  });

  it('GET /events replays the history, then streams new events as they happen', async () => {
    const events = new EventStream();
    const { port } = await serve({ http: { events, viewToken: 'viewer' } });
    events.observe({ event: 'worker_joined', rank: 0, workers: 1 });
    events.observe({ event: 'step', step: 1, epoch: 0, loss: 2.3, samples: 64 });
    const ctl = new AbortController();
    const res = await fetch(`http://127.0.0.1:${port}/events?token=viewer`, { signal: ctl.signal });
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toBe('text/event-stream; charset=utf-8');
    const reader = res.body!.getReader();
    const decoder = new TextDecoder();
    let text = '';
    const received = () => [...text.matchAll(/^data: (.*)$/gm)].map((m) => JSON.parse(m[1]!) as { event: string; step?: number });
    const readUntil = async (n: number) => {
      while (received().length < n) {
        const { value, done } = await reader.read();
        if (done) throw new Error(`stream ended after ${received().length} events`);
        text += decoder.decode(value, { stream: true });
      }
    };
    await readUntil(2);
    expect(received().map((e) => e.event)).toEqual(['worker_joined', 'step']);
    expect(events.clientCount).toBe(1);
    events.observe({ event: 'step', step: 2, epoch: 0, loss: 2.1, samples: 64 });
    events.observe({ event: 'saved', step: 2, path: 'runs/x' });
    await readUntil(4);
    expect(received().map((e) => [e.event, e.step])).toEqual([['worker_joined', undefined], ['step', 1], ['step', 2], ['saved', 2]]);
    ctl.abort();
    await reader.cancel().catch(() => {});
    await expect.poll(() => events.clientCount).toBe(0);
  });

  it('a taken port gives the same readable error as before', async () => {
    const { port } = await serve();
    const second = new CoordinatorServer({ port, token: 'secret', maxWorkers: 1, paramCount: P, data: DATA, config: STAR, plan: PLAN });
    await expect(second.listen()).rejects.toThrow(`cannot listen on 127.0.0.1:${port}: address already in use (pick another --port)`);
  });
});
