// StarTrainer over a real CoordinatorServer and WorkerPool, with in-process fake workers whose
// "gradient" of a shard depends only on the shard's indices: no tfjs, no child processes.
import {
  Adam,
  PROTOCOL_VERSION,
  RunError,
  TrainingPlan,
  addFp16Into,
  decodeFrame,
  describeEvent,
  encodeFp16,
  encodeMessage,
  shardBatch,
  wireConfig,
  type Compression,
  type DataSpec,
  type DdpEvent,
  type Message,
  type Split,
} from '@ddp/core';
import { afterEach, describe, expect, it } from 'vitest';
import { WebSocket } from 'ws';
import type { StepReport } from '../job/trainer.js';
import { CoordinatorServer } from '../net/coordinator-server.js';
import { WorkerPool } from '../net/worker-pool.js';
import { StarTrainer, type StarTrainerOptions } from './star-trainer.js';

const P = 64;
const TRAIN_COUNT = 1000;
const PLAN = { seed: 3, batchSize: 64 };
const plan = new TrainingPlan({ ...PLAN, trainCount: TRAIN_COUNT });
const DATA: DataSpec = { dataset: 'mnist', trainCount: TRAIN_COUNT, fingerprint: 'f', serveData: false, rows: 28, cols: 28, numClasses: 10 };
const TRAIN: Split = { images: new Uint8Array(0), labels: new Uint8Array(0), count: TRAIN_COUNT, rows: 28, cols: 28 };
type Frame = Record<string, unknown>;

function fakeGradient(indices: Uint32Array): { grad: Float32Array; lossSum: number } {
  const grad = new Float32Array(P);
  let lossSum = 0;
  for (const idx of indices) {
    for (let i = 0; i < P; i++) grad[i] += Math.fround(Math.cos(idx * 0.11 + i) / (1 + idx));
    lossSum += 1 + (idx % 3);
  }
  return { grad, lossSum };
}

interface FakeWorker {
  ws: WebSocket;
  rank: number;
  work: Frame[];
  next(type: string): Promise<Frame>;
  send(m: Frame): void;
}

/**
 * `answer: false` never answers; `delayMs(step)` answers a work order of 0-based `step` that much
 * later (null: never).
 */
async function fakeWorker(port: number, opts: { answer?: boolean; compress?: Compression; delayMs?: (step: number) => number | null } = {}): Promise<FakeWorker> {
  const ws = new WebSocket(`ws://127.0.0.1:${port}`, { perMessageDeflate: false });
  await new Promise<void>((resolve, reject) => {
    ws.once('open', () => resolve());
    ws.once('error', reject);
  });
  ws.on('error', () => {});
  const send = (m: Frame) => ws.readyState === ws.OPEN && ws.send(encodeMessage(m as unknown as Message), { binary: true });
  const work: Frame[] = [];
  const waiters: Array<{ type: string; resolve: (m: Frame) => void }> = [];
  const seen: Frame[] = [];
  ws.on('message', (data) => {
    const m = decodeFrame(data as Buffer) as Frame;
    if (m.type === 'ping') return send({ type: 'pong', nonce: m.nonce as number });
    seen.push(m);
    const w = waiters.findIndex((x) => x.type === m.type);
    if (w >= 0) waiters.splice(w, 1)[0]!.resolve(m);
    if (m.type !== 'work') return;
    work.push(m);
    if (opts.answer === false) return;
    const indices = m.indices as Uint32Array;
    const { grad, lossSum } = fakeGradient(indices);
    const reply = () =>
      send({
        type: 'gradient', step: m.step as number, task: m.task as number, count: indices.length, lossSum,
        grad: opts.compress === 'fp16' ? encodeFp16(grad) : grad, computeMs: 1, busyMs: 1,
      });
    const delay = opts.delayMs ? opts.delayMs(m.step as number) : 0;
    if (delay === null) return;
    if (delay > 0) setTimeout(reply, delay);
    else reply();
  });
  send({ type: 'hello', protocolVersion: PROTOCOL_VERSION, token: 'secret', backend: 'fake', host: 'test', pid: 1 });
  const next = (type: string) =>
    new Promise<Frame>((resolve) => {
      const i = seen.findIndex((m) => m.type === type);
      if (i >= 0) resolve(seen.splice(i, 1)[0]!);
      else waiters.push({ type, resolve });
    });
  const welcome = await next('welcome');
  return { ws, rank: welcome.rank as number, work, next, send };
}

let pools: WorkerPool[] = [];
afterEach(async () => {
  await Promise.all(pools.map((p) => p.close()));
  pools = [];
});

async function setup(maxWorkers: number, opts: Partial<StarTrainerOptions> = {}, poolOpts: { stallWarnMs?: number; minWorkers?: number; pauseStatusMs?: number } = {}, compress: Compression = 'none') {
  const server = new CoordinatorServer({
    port: 0, token: 'secret', maxWorkers, paramCount: P, data: DATA, heartbeatMs: 50, config: wireConfig({ allreduce: 'star', compress, reduction: 'fast' }), plan: PLAN, // the trainer's own default: fast
  });
  const events: DdpEvent[] = [];
  const notes: string[] = [];
  const pool = new WorkerPool(server, { onEvent: (e) => events.push(e), onInfo: (m) => notes.push(m), ...poolOpts });
  pools.push(pool);
  const trainer = new StarTrainer(pool, { workerTimeoutMs: 5000, plan: PLAN, train: TRAIN, ...opts });
  const port = await server.listen();
  const reports: StepReport[] = [];
  return { server, pool, trainer, port, events, notes, reports, onStep: (r: StepReport) => reports.push(r) };
}

/** The shards' fake gradients added in rank order in float32, as the trainer promises. */
function rankOrderSum(batch: Uint32Array, parts: number, compress: Compression = 'none'): Float32Array {
  const out = new Float32Array(P);
  for (const shard of shardBatch(batch, parts)) {
    const g = fakeGradient(shard).grad;
    if (compress === 'fp16') addFp16Into(out, encodeFp16(g));
    else for (let i = 0; i < P; i++) out[i] += g[i]!;
  }
  return out;
}

const init = () => ({ steps: 0, params: Float32Array.from({ length: P }, (_, i) => Math.sin(i) / 10), adamM: new Float32Array(P), adamV: new Float32Array(P) });
const bits = (a: Float32Array) => Buffer.from(a.buffer, a.byteOffset, a.byteLength);

/** Adam applied to the rank-order sums, step by step, with the worker count each step ran with. */
function reference(partsPerStep: number[], lr: number, compress: Compression = 'none'): Float32Array {
  const params = init().params;
  const adam = new Adam(P, { lr });
  partsPerStep.forEach((parts, step) => {
    const { batch } = plan.at(step);
    adam.stepFromSum(params, rankOrderSum(batch, parts, compress), batch.length);
  });
  return params;
}

describe('StarTrainer over sockets', () => {
  it('adds the workers\' sums in rank order and applies Adam; a worker lost mid-step has its shard recomputed once', async () => {
    const { trainer, pool, port, events, reports, onStep } = await setup(3);
    await Promise.all([fakeWorker(port), fakeWorker(port)]);
    const silent = await fakeWorker(port, { answer: false }); // takes its shard and never answers
    await pool.waitForWorkers(3, 1000);
    await trainer.start(init(), { lr: 0.01 });
    const running = trainer.run(1, onStep);
    await silent.next('work');
    silent.ws.terminate();
    await running;
    await trainer.run(2, onStep);
    expect(bits((await trainer.params()).params).equals(bits(reference([3, 2], 0.01)))).toBe(true);
    expect(trainer.steps).toBe(2);
    expect(events.filter((e) => e.event === 'worker_lost')).toMatchObject([{ event: 'worker_lost', rank: silent.rank, step: 1, workers: 2 }]);
    expect(reports.map((r) => [r.step, r.epoch, r.samples])).toEqual([[0, 0, 64], [1, 0, 64]]);
    for (const r of reports) {
      expect(r.lossSum).toBe(fakeGradient(plan.at(r.step).batch).lossSum);
      expect(r.timing).toMatchObject({ compute: 1 });
      expect(Object.keys(r.timing!).sort()).toEqual(['communication', 'compute', 'optimizer', 'waiting']);
      expect(r.gradientBytes).toBeGreaterThan(4 * P);
    }
  });

  it('with --compress fp16 the float16 answers are widened and added in float32, in rank order', async () => {
    const { trainer, pool, port, onStep } = await setup(2, {}, {}, 'fp16');
    await Promise.all([fakeWorker(port, { compress: 'fp16' }), fakeWorker(port, { compress: 'fp16' })]);
    await pool.waitForWorkers(2, 1000);
    await trainer.start(init(), { lr: 0.01 });
    await trainer.run(3, onStep);
    const got = (await trainer.params()).params;
    expect(bits(got).equals(bits(reference([2, 2, 2], 0.01, 'fp16')))).toBe(true);
    expect(bits(got).equals(bits(reference([2, 2, 2], 0.01)))).toBe(false); // the rounding shows
  });

  it('with no worker left it waits --worker-timeout for one, then fails with DDP_NO_WORKERS', async () => {
    const { trainer, pool, port, onStep } = await setup(1, { workerTimeoutMs: 300 });
    const only = await fakeWorker(port, { answer: false });
    await pool.waitForWorkers(1, 1000);
    await trainer.start(init(), { lr: 0.01 });
    const running = trainer.run(1, onStep);
    await only.next('work');
    only.ws.terminate();
    const err = await running.then(() => null, (e: unknown) => e);
    expect(err).toBeInstanceOf(RunError);
    expect((err as RunError).code).toBe('DDP_NO_WORKERS');
    expect((err as Error).message).toMatch(/no worker left at step 1 and none joined within 0.3 s \(--worker-timeout\)/);
  });

  it('a worker that joins while the step waits takes the orphaned shards', async () => {
    const { trainer, port, onStep, notes } = await setup(1);
    await trainer.start(init(), { lr: 0.01 });
    const running = trainer.run(1, onStep);
    await new Promise((r) => setTimeout(r, 50));
    expect(notes).toContain('no worker left at step 1: waiting up to 5 s for one to join (--worker-timeout)');
    const w = await fakeWorker(port);
    await running;
    expect(w.work).toHaveLength(1);
    expect(Array.from(w.work[0]!.indices as Uint32Array)).toEqual(Array.from(plan.at(0).batch));
    expect(bits((await trainer.params()).params).equals(bits(reference([1], 0.01)))).toBe(true);
  });

  it('--min-workers: pauses between steps below it, says how many are missing, and goes on when one joins', async () => {
    const { trainer, port, onStep, notes, events, reports } = await setup(3, {}, { minWorkers: 2, pauseStatusMs: 30 });
    const a = await fakeWorker(port);
    await trainer.start(init(), { lr: 0.01 });
    const running = trainer.run(2, onStep);
    await new Promise((r) => setTimeout(r, 100));
    expect(reports).toHaveLength(0);
    expect(events).toContainEqual({ event: 'paused', step: 1, workers: 1, minWorkers: 2 });
    expect(notes.filter((n) => n.startsWith('paused at step 1: 1 of at least 2 worker(s) (--min-workers), 1 missing')).length).toBeGreaterThan(1);
    const b = await fakeWorker(port);
    await running;
    expect(reports).toHaveLength(2);
    expect(a.work).toHaveLength(2);
    expect(b.work).toHaveLength(2);
    expect(events.filter((e) => e.event === 'membership').map((e) => (e as { ranks: number[] }).ranks)).toEqual([[0], [0, 1]]);
    expect(bits((await trainer.params()).params).equals(bits(reference([2, 2], 0.01)))).toBe(true);
  });

  it('--min-workers: a pause longer than --worker-timeout fails the run with DDP_TOO_FEW_WORKERS', async () => {
    const { trainer, port, onStep } = await setup(3, { workerTimeoutMs: 200 }, { minWorkers: 2 });
    await fakeWorker(port);
    await trainer.start(init(), { lr: 0.01 });
    await expect(trainer.run(1, onStep)).rejects.toMatchObject({ code: 'DDP_TOO_FEW_WORKERS' });
  });

  it('the stall inspector names the ranks a slow step waits for, their host and the last message from each', async () => {
    const { trainer, pool, port, events, onStep } = await setup(2, {}, { stallWarnMs: 100 });
    await fakeWorker(port);
    const slow = await fakeWorker(port, { delayMs: (step) => (step === 0 ? 0 : null) }); // answers step 1 only
    await pool.waitForWorkers(2, 1000);
    await trainer.start(init(), { lr: 0.01 });
    await trainer.run(1, onStep);
    const running = trainer.run(2, onStep);
    await new Promise((r) => setTimeout(r, 250));
    const stalls = events.filter((e) => e.event === 'stall');
    expect(stalls.length).toBeGreaterThanOrEqual(1);
    expect(stalls.length).toBeLessThanOrEqual(2); // every stallWarnMs, not every tick
    const [first] = stalls as Array<Extract<DdpEvent, { event: 'stall' }>>;
    expect(first).toMatchObject({ event: 'stall', step: 2, waitingFor: [{ rank: slow.rank, host: 'test:1', last: 'gradient for step 1' }] });
    expect(first!.waitedMs).toBeGreaterThanOrEqual(100);
    expect(first!.waitingFor[0]!.agoMs).toBeGreaterThanOrEqual(100);
    expect(describeEvent(first!)).toMatch(new RegExp(`^step 2: waiting 0 s for rank ${slow.rank} \\(test:1, last: gradient for step 1, 0\\.\\d s ago\\)$`));
    slow.ws.terminate();
    await running;
    expect(trainer.steps).toBe(2);
  });

  it('--straggler-factor: a late shard is also given to a worker done with its own; the first answer is used, the late one discarded with no drop', async () => {
    // Rank 1 answers step 8 after 400 ms (the others in a few ms): its shard goes to a backup.
    const { trainer, pool, port, events, notes, onStep } = await setup(3, { stragglers: { factor: 3, minSamples: 3, floorMs: 100 } });
    const workers = [await fakeWorker(port), await fakeWorker(port, { delayMs: (step) => (step === 7 ? 400 : 0) }), await fakeWorker(port)];
    await pool.waitForWorkers(3, 1000);
    await trainer.start(init(), { lr: 0.01 });
    const t0 = performance.now();
    await trainer.run(12, onStep);
    expect(performance.now() - t0).toBeLessThan(380); // nobody waited for the straggler
    const stragglers = events.filter((e) => e.event === 'straggler');
    expect(stragglers).toMatchObject([{ event: 'straggler', step: 8, rank: workers[1]!.rank, host: 'test:1', backupRank: 0 }]);
    const s = stragglers[0] as Extract<DdpEvent, { event: 'straggler' }>;
    expect(s.waitedMs).toBeGreaterThanOrEqual(100);
    expect(s.waitedMs).toBeLessThan(400);
    expect(describeEvent(s)).toMatch(/^step 8: straggler rank 1 \(test:1\): its shard out \d+ ms \(median \d+ ms\); also given to rank 0$/);
    // Rank 0 computed the step's shard of rank 1 as well (two work orders for step 8), and, while
    // rank 1 still owed that answer, rank 1's shards of steps 9-12 from the start.
    expect(workers[0]!.work.filter((w) => w.step === 7)).toHaveLength(2);
    expect(workers[0]!.work.filter((w) => (w.step as number) > 7).map((w) => w.step)).toEqual([8, 8, 9, 9, 10, 10, 11, 11]);
    // The straggler's answer comes long after its step is over: discarded quietly; then it gets shards again.
    await new Promise((r) => setTimeout(r, 450));
    expect(events.filter((e) => e.event === 'worker_lost')).toEqual([]);
    expect(notes).toContain(`rank ${workers[1]!.rank} caught up: it gets shards again`);
    await trainer.run(14, onStep);
    expect(workers[1]!.work.map((w) => w.step)).toEqual([0, 1, 2, 3, 4, 5, 6, 7, 12, 13]);
    expect(events.filter((e) => e.event === 'worker_lost')).toEqual([]);
    expect(bits((await trainer.params()).params).equals(bits(reference(new Array(14).fill(3), 0.01)))).toBe(true);
  });

  it('a gradient for a task given to another rank, or answered twice, still gets its sender dropped', async () => {
    const { trainer, pool, port, events, onStep } = await setup(2);
    const [a, b] = [await fakeWorker(port), await fakeWorker(port)];
    await pool.waitForWorkers(2, 1000);
    await trainer.start(init(), { lr: 0.01 });
    await trainer.run(1, onStep);
    const other = b.work[0]!;
    // a answers b's task of a step that is over: it was never a's to answer.
    a.send({ type: 'gradient', step: 0, task: other.task as number, count: (other.indices as Uint32Array).length, lossSum: 0, grad: new Float32Array(P), computeMs: 1, busyMs: 1 });
    expect(await a.next('error')).toMatchObject({ code: 'DDP_BAD_MESSAGE', message: 'gradient: for task ' + String(other.task) + ', but no step is running' });
    // b answers its own task a second time.
    b.send({ type: 'gradient', step: 0, task: other.task as number, count: (other.indices as Uint32Array).length, lossSum: 0, grad: new Float32Array(P), computeMs: 1, busyMs: 1 });
    expect(await b.next('error')).toMatchObject({ code: 'DDP_BAD_MESSAGE' });
    expect(events.filter((e) => e.event === 'worker_lost').map((e) => (e as { rank: number }).rank).sort()).toEqual([0, 1]);
  });

  it('a gradient while no step runs gets its sender dropped (DDP_BAD_MESSAGE)', async () => {
    const { pool, port, events } = await setup(1);
    const w = await fakeWorker(port);
    await pool.waitForWorkers(1, 1000);
    w.send({ type: 'gradient', step: 0, task: 0, count: 1, lossSum: 1, grad: new Float32Array(P), computeMs: 1, busyMs: 1 });
    const err = await w.next('error');
    expect(err).toMatchObject({ code: 'DDP_BAD_MESSAGE', message: 'gradient: for task 0, but no step is running' });
    expect(events.filter((e) => e.event === 'worker_lost')).toMatchObject([{ rank: w.rank, code: 'DDP_BAD_MESSAGE' }]);
  });

  it('waitForWorkers fails after the join timeout, naming how many came', async () => {
    const { pool, port } = await setup(2);
    await fakeWorker(port);
    await expect(pool.waitForWorkers(2, 200)).rejects.toThrow(/only 1 of 2 worker\(s\) joined within 0.2 s/);
  });
});
