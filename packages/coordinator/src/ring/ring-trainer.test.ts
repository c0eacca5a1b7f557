// RingTrainer over a real CoordinatorServer and WorkerPool, with scripted in-process workers that
// speak the ring protocol over WebSockets. No tfjs and no peer sockets: a fake worker's "replica" is a
// small vector that each step changes the same way on every member (so equal steps give equal
// hashes, as real replicas do), and the members of a ring meet at an in-process barrier per step in
// place of the allreduce (no member applies step s before every member has started it; a member
// that leaves breaks the barrier, as a closed peer link fails the allreduce).
import {
  MSG,
  PROTOCOL_VERSION,
  RunError,
  TrainingPlan,
  decodeFrame,
  describeEvent,
  encodeMessage,
  replicaHash,
  shardSizes,
  wireConfig,
  type DataSpec,
  type DdpEvent,
  type Message,
  type RingConnectMessage,
  type RingListenMessage,
  type RingProgressMessage,
  type RingRunMessage,
  type Split,
} from '@ddp/core';
import { afterEach, describe, expect, it } from 'vitest';
import { WebSocket } from 'ws';
import type { StepReport } from '../job/trainer.js';
import { CoordinatorServer } from '../net/coordinator-server.js';
import { WorkerPool } from '../net/worker-pool.js';
import { RingTrainer, type RingTrainerOptions } from './ring-trainer.js';

const P = 32;
const TRAIN_COUNT = 50;
const PLAN = { seed: 11, batchSize: 7 }; // 8 steps per epoch, the last of one sample
const plan = new TrainingPlan({ ...PLAN, trainCount: TRAIN_COUNT });
const DATA: DataSpec = { dataset: 'mnist', trainCount: TRAIN_COUNT, fingerprint: 'f', serveData: false, rows: 28, cols: 28, numClasses: 10 };
const TRAIN: Split = { images: new Uint8Array(TRAIN_COUNT * 784), labels: new Uint8Array(TRAIN_COUNT), count: TRAIN_COUNT, rows: 28, cols: 28 };
type Frame = Record<string, unknown>;

/**
 * What a fake member does at a step of a run: take part (default); apply it without waiting for the
 * others (its allreduce ended here, not everywhere); take part but report a wrong sample count;
 * report a failure; die (its peer links fail at once, its socket closes 20 ms later); or hang.
 */
type Action = 'apply' | 'solo' | 'miscount' | 'fail' | 'close' | 'silent';

interface Script {
  onStep?(step: number, generation: number, me: FakeWorker): Action;
  /** Added to the replica at each step: a non-zero value makes this replica diverge. */
  drift?: number;
  /** Pause between steps (ms). */
  delayMs?: number;
  /** The gradient of `step` takes this long (ms) before the allreduce, and is reported so (default: 1 ms, no wait). */
  computeMs?: (step: number) => number;
}

/** The allreduce stand-in: every member of ring `group` enters step s before any applies it. */
class Barrier {
  private readonly entered = new Map<number, Array<{ resolve: () => void; reject: (e: Error) => void }>>();
  broken = false;
  constructor(readonly size: number) {}
  enter(step: number): Promise<void> {
    if (this.broken) return Promise.reject(new Error('ring broken'));
    return new Promise((resolve, reject) => {
      const list = [...(this.entered.get(step) ?? []), { resolve, reject }];
      this.entered.set(step, list);
      if (list.length === this.size) list.forEach((w) => w.resolve());
    });
  }
  break(): void {
    this.broken = true;
    for (const list of this.entered.values()) list.forEach((w) => w.reject(new Error('ring broken')));
    this.entered.clear();
  }
}
let barriers = new Map<string, Barrier>();

interface Replica {
  steps: number;
  params: Float32Array;
  m: Float32Array;
  v: Float32Array;
}

interface FakeWorker {
  rank: number;
  replica: Replica | null;
  /** The state before the last applied step (roll-back, fetch of the previous step). */
  before: Replica | null;
  received: Frame[];
  sent: Frame[];
  rolledBack: number;
  ws: WebSocket;
  closed: Promise<number>;
  kinds(): string[];
  of<T>(type: string): T[];
}

const copy = (r: Replica): Replica => ({ steps: r.steps, params: r.params.slice(), m: r.m.slice(), v: r.v.slice() });

async function fakeWorker(port: number, script: Script = {}): Promise<FakeWorker> {
  const ws = new WebSocket(`ws://127.0.0.1:${port}`, { perMessageDeflate: false });
  await new Promise<void>((resolve, reject) => {
    ws.once('open', () => resolve());
    ws.once('error', reject);
  });
  ws.on('error', () => {});
  let hashEvery = 1;
  let ring: { generation: number; position: number; size: number; barrier: Barrier } | null = null;
  let run: { abandoned: boolean } | null = null;
  let dying = false;
  const me: FakeWorker = {
    rank: -1,
    replica: null,
    before: null,
    received: [],
    sent: [],
    rolledBack: 0,
    ws,
    closed: new Promise((resolve) => ws.once('close', (code) => resolve(code))),
    kinds: () => me.received.map((m) => String(m.type)),
    of: <T>(type: string) => me.received.filter((m) => m.type === type) as T[],
  };
  const send = (m: Frame) => {
    if (ws.readyState !== ws.OPEN) return;
    me.sent.push(m);
    ws.send(encodeMessage(m as unknown as Message), { binary: true });
  };
  /** Leaves the current ring: a run on it stops, its barrier breaks for the others. */
  const leave = () => {
    if (run) run.abandoned = true;
    run = null;
    ring?.barrier.break();
    ring = null;
  };
  ws.once('close', leave);

  const applyStep = (step: number) => {
    const r = me.replica!;
    me.before = copy(r);
    r.params[step % P] += 1 + step / 8;
    r.params[(step + 5) % P] += script.drift ?? 0;
    for (let i = 0; i < P; i++) {
      r.m[i] = Math.fround(0.9 * r.m[i]! + 0.1 * r.params[i]!);
      r.v[i] = Math.fround(0.99 * r.v[i]! + 0.01 * r.params[i]! * r.params[i]!);
    }
    r.steps += 1;
  };

  const runSteps = async (msg: RingRunMessage) => {
    const here = ring;
    if (!here || here.generation !== msg.generation) return;
    const token = { abandoned: false };
    run = token;
    for (let step = msg.from; step < msg.until; step++) {
      if (token.abandoned) return;
      const action = script.onStep?.(step, msg.generation, me) ?? 'apply';
      if (action === 'silent') return;
      if (action === 'close') {
        dying = true;
        here.barrier.break();
        setTimeout(() => ws.close(), 20);
        return;
      }
      if (action === 'fail') {
        here.barrier.break();
        send({ type: MSG.RING_FAILED, generation: msg.generation, step, code: 'PEER_FAILED', position: here.position, message: 'scripted failure' });
        return;
      }
      const computeMs = script.computeMs?.(step) ?? 1;
      if (script.computeMs) await new Promise((r) => setTimeout(r, computeMs));
      if (action === 'apply' || action === 'miscount') {
        try {
          await here.barrier.enter(step);
        } catch {
          if (!token.abandoned) send({ type: MSG.RING_FAILED, generation: msg.generation, step, code: 'TRANSPORT_CLOSED', position: -1, message: 'a neighbour left' });
          return;
        }
        if (token.abandoned) return;
      }
      applyStep(step);
      const count = shardSizes(plan.at(step).batch.length, here.size)[here.position]! + (action === 'miscount' ? 1 : 0);
      const hashed = (step + 1) % hashEvery === 0 || step + 1 === msg.until;
      send({
        type: MSG.RING_PROGRESS, generation: msg.generation, step, count, lossSum: count * 0.25,
        ...(hashed ? { hash: replicaHash(me.replica!.params) } : {}),
        bytesSent: 8 * P, prepareMs: 0.25, computeMs, allreduceMs: 0.5 + here.position, optimizerMs: 0.25, cycleMs: 0,
      });
      await new Promise((r) => (script.delayMs ? setTimeout(r, script.delayMs) : setImmediate(r)));
    }
  };

  const welcomed = new Promise<void>((resolve) => {
    ws.on('message', (data) => {
      const m = decodeFrame(data as Buffer) as Frame;
      if (dying) return;
      if (m.type === 'ping') return send({ type: 'pong', nonce: m.nonce as number });
      me.received.push(m);
      switch (m.type) {
        case 'welcome':
          me.rank = m.rank as number;
          hashEvery = (m.config as { hashEvery: number }).hashEvery;
          return resolve();
        case 'replica':
          me.replica = {
            steps: m.steps as number,
            params: (m.params as Float32Array).slice(),
            m: (m.adamM as Float32Array | undefined)?.slice() ?? new Float32Array(P),
            v: (m.adamV as Float32Array | undefined)?.slice() ?? new Float32Array(P),
          };
          me.before = null;
          return;
        case 'ring_listen': {
          const l = m as unknown as RingListenMessage;
          leave();
          let barrier = barriers.get(l.group);
          if (!barrier) barriers.set(l.group, (barrier = new Barrier(l.size)));
          ring = { generation: l.generation, position: l.position, size: l.size, barrier };
          return send({ type: MSG.RING_ADDRESS, generation: l.generation, url: `ws://127.0.0.1:${20000 + me.rank}`, steps: me.replica?.steps ?? -1 });
        }
        case 'ring_connect': {
          const c = m as unknown as RingConnectMessage;
          const r = me.replica;
          if (r && r.steps === c.resume + 1 && me.before) {
            me.replica = me.before;
            me.before = null;
            me.rolledBack += 1;
          }
          return send({ type: MSG.RING_READY, generation: c.generation });
        }
        case 'ring_run':
          void runSteps(m as unknown as RingRunMessage);
          return;
        case 'ring_stop':
          if (ring?.generation === m.generation) leave();
          return send({ type: MSG.RING_STOPPED, generation: m.generation as number, steps: me.replica?.steps ?? -1 });
        case 'fetch': {
          const steps = m.steps as number;
          const s = me.replica?.steps === steps ? me.replica : me.before?.steps === steps ? me.before : null;
          if (!s) throw new Error(`fake worker ${me.rank}: fetch of step ${steps}, holding ${me.replica?.steps}`);
          return send({
            type: MSG.STATE, request: m.request as number, steps, hash: replicaHash(s.params), params: s.params,
            ...(m.optimizer ? { adamM: s.m, adamV: s.v } : {}),
          });
        }
      }
    });
  });
  send({ type: 'hello', protocolVersion: PROTOCOL_VERSION, token: 'secret', backend: 'fake', host: 'test', pid: 1 });
  await welcomed;
  return me;
}

let pools: WorkerPool[] = [];
afterEach(async () => {
  await Promise.all(pools.map((p) => p.close()));
  pools = [];
  barriers = new Map();
});

async function setup(maxWorkers: number, opts: Partial<RingTrainerOptions> = {}, hashEvery = 1, stallWarnMs?: number) {
  const server = new CoordinatorServer({
    port: 0, token: 'secret', maxWorkers, paramCount: P, data: DATA, heartbeatMs: 50,
    config: wireConfig({ allreduce: 'ring', hashEvery }), plan: PLAN,
  });
  const events: DdpEvent[] = [];
  const notes: string[] = [];
  const pool = new WorkerPool(server, { onEvent: (e) => events.push(e), onInfo: (m) => notes.push(m), stallWarnMs });
  pools.push(pool);
  const trainer = new RingTrainer(pool, { workerTimeoutMs: 1000, plan: PLAN, train: TRAIN, onEvent: (e) => events.push(e), formTimeoutMs: 5000, ...opts });
  const port = await server.listen();
  const reports: StepReport[] = [];
  const onStep = (r: StepReport) => reports.push(r);
  return { server, pool, trainer, port, events, notes, reports, onStep };
}

const byRank = (ws: FakeWorker[]) => [...ws].sort((a, b) => a.rank - b.rank);

/** Workers joined one after another, so that the k-th script goes to rank k. */
async function inOrder(port: number, scripts: Script[]): Promise<FakeWorker[]> {
  const out: FakeWorker[] = [];
  for (const script of scripts) out.push(await fakeWorker(port, script));
  expect(out.map((w) => w.rank)).toEqual(scripts.map((_s, i) => i));
  return out;
}
const range = (from: number, until: number) => Array.from({ length: until - from }, (_, i) => from + i);
const init = () => ({ steps: 0, params: Float32Array.from({ length: P }, (_, i) => i / 7), adamM: new Float32Array(P), adamV: new Float32Array(P) });

/** The code of a RunError the promise rejects with. */
async function runError(p: Promise<unknown>): Promise<RunError> {
  const err = await p.then(
    () => null,
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(RunError);
  return err as RunError;
}

describe('RingTrainer', () => {
  it('forms the ring with the members\' addresses, sends a run as one ring_run and commits its steps in order', async () => {
    const { trainer, pool, port, events, reports, onStep } = await setup(2);
    const workers = byRank(await Promise.all([fakeWorker(port), fakeWorker(port)]));
    await pool.waitForWorkers(2, 1000);
    await trainer.start(init(), { lr: 0.001 });
    await trainer.run(5, onStep);

    expect(reports.map((r) => r.step)).toEqual(range(0, 5));
    for (const r of reports) {
      const samples = plan.at(r.step).batch.length;
      expect(r).toMatchObject({ epoch: plan.epochOf(r.step), samples, lossSum: samples * 0.25, gradientBytes: 8 * P });
      // allreduceMs was 0.5 at position 0 and 1.5 at position 1: the transfer is the fastest, the rest waiting.
      expect(r.timing).toMatchObject({ prepare: 0.25, compute: 1, allreduce: 0.5, waiting: 0.5, optimizer: 0.25, other: 0 });
    }
    expect(trainer.steps).toBe(5);
    const group = (workers[0]!.of<RingListenMessage>('ring_listen')[0]!).group;
    expect(group).toMatch(/^ddp-[0-9a-f]{12}\/ring-0$/);
    for (const [position, w] of workers.entries()) {
      expect(w.kinds()).toEqual(['welcome', 'replica', 'ring_listen', 'ring_connect', 'ring_run']);
      expect(w.received[1]).toMatchObject({ steps: 0, lr: 0.001 });
      expect(w.received[2]).toEqual({ type: 'ring_listen', generation: 0, position, size: 2, group });
      expect(w.received[3]).toEqual({ type: 'ring_connect', generation: 0, urls: ['ws://127.0.0.1:20000', 'ws://127.0.0.1:20001'], resume: 0 });
      expect(w.received[4]).toEqual({ type: 'ring_run', generation: 0, from: 0, until: 5 });
      expect(w.replica!.steps).toBe(5);
    }
    expect(events.filter((e) => e.event === 'ring_formed')).toEqual([{ event: 'ring_formed', generation: 0, size: 2, ranks: [0, 1], step: 0, addresses: ['ws://127.0.0.1:20000', 'ws://127.0.0.1:20001'] }]);

    // The next run goes on the same ring, from where the last one ended.
    await trainer.run(8, onStep);
    expect(reports.map((r) => r.step)).toEqual(range(0, 8));
    for (const w of workers) expect(w.of('ring_run').at(-1)).toEqual({ type: 'ring_run', generation: 0, from: 5, until: 8 });
    expect(workers[0]!.of('ring_listen')).toHaveLength(1);

    // The weights come from the lowest rank, with every replica's hash from the last commit.
    const got = await trainer.params();
    const hash = replicaHash(workers[0]!.replica!.params);
    expect(replicaHash(workers[1]!.replica!.params)).toBe(hash);
    expect(got.hash).toBe(hash);
    expect(got.params).toEqual(workers[0]!.replica!.params);
    expect(got.replicas).toEqual([{ rank: 0, hash }, { rank: 1, hash }]);
    expect(workers[0]!.of('fetch')).toEqual([{ type: 'fetch', request: 1, steps: 8, optimizer: false }]);
    expect(workers[1]!.of('fetch')).toEqual([]);
  });

  it('replicas that diverge: the run fails with DDP_MISMATCH at the first hashed step, and every worker gets the error', async () => {
    const { trainer, pool, port, reports, onStep } = await setup(2, {}, 3);
    const workers = await inOrder(port, [{}, { drift: 1e-3 }]);
    await pool.waitForWorkers(2, 1000);
    await trainer.start(init(), { lr: 0.001 });
    const err = await runError(trainer.run(6, onStep));
    expect(err.code).toBe('DDP_MISMATCH');
    expect(err.message).toMatch(/^Mismatched replicas after step 3: the workers' weights differ \(rank 0: [0-9a-f]{16}; rank 1: [0-9a-f]{16}\).*\(backends: rank 0: fake, rank 1: fake\)$/);
    // Steps 1 and 2 carried no hash (--hash-every 3): they were committed before the mismatch showed.
    expect(reports.map((r) => r.step)).toEqual([0, 1]);
    for (const w of workers) {
      expect(await w.closed).toBe(4008);
      expect(w.received.find((m) => m.type === 'error')).toMatchObject({ code: 'DDP_MISMATCH' });
    }
  });

  it('a member lost mid-run: the ring is re-formed without it at the steps every member reported, a replica one step ahead rolls back, no step is reported twice', async () => {
    const { trainer, pool, port, events, notes, reports, onStep } = await setup(3);
    // In ring 0 at step 2: rank 0's allreduce ends (it applies and reports step 2), rank 1's fails, rank 2 dies.
    const workers = await inOrder(port, [
      { onStep: (s, g) => (s === 2 && g === 0 ? 'solo' : 'apply') },
      { onStep: (s, g) => (s === 2 && g === 0 ? 'fail' : 'apply') },
      { onStep: (s) => (s === 2 ? 'close' : 'apply') },
    ]);
    await pool.waitForWorkers(3, 1000);
    await trainer.start(init(), { lr: 0.001 });
    await trainer.run(9, onStep);

    expect(reports.map((r) => r.step)).toEqual(range(0, 9));
    // Steps 0 and 1 were shared by three, the rest by two: the counts the members reported were accepted as such.
    expect(reports.map((r) => r.lossSum)).toEqual(range(0, 9).map((s) => plan.at(s).batch.length * 0.25));
    expect(events.filter((e) => e.event === 'worker_lost')).toMatchObject([{ event: 'worker_lost', rank: 2, step: 3, workers: 2 }]);
    const [a, b] = workers;
    expect(a!.rolledBack).toBe(1);
    expect(b!.rolledBack).toBe(0);
    for (const w of [a!, b!]) {
      expect(w.replica!.steps).toBe(9);
      expect(w.of<RingConnectMessage>('ring_connect').at(-1)).toMatchObject({ resume: 2 });
      expect(w.of<RingListenMessage>('ring_listen').at(-1)).toMatchObject({ size: 2 });
      expect(w.of<RingRunMessage>('ring_run').at(-1)).toMatchObject({ from: 2, until: 9 });
      // Step 2 was reported by rank 0 in ring 0, then by both in the new ring: only the latter counted.
      const progress = w.sent.filter((m) => m.type === 'ring_progress') as unknown as RingProgressMessage[];
      expect(progress.filter((p) => p.step === 2).length).toBe(w === a ? 2 : 1);
    }
    expect(replicaHash(a!.replica!.params)).toBe(replicaHash(b!.replica!.params));
    expect(notes.some((n) => /^step 3: .*; re-forming the ring$/.test(n))).toBe(true);
    const formed = events.filter((e) => e.event === 'ring_formed');
    expect(formed.at(-1)).toMatchObject({ size: 2, ranks: [0, 1], step: 2 });
    expect((await trainer.params()).hash).toBe(replicaHash(a!.replica!.params));
  });

  it('a step that keeps failing with nobody lost fails the run after maxAttempts (DDP_STEP_ATTEMPTS)', async () => {
    const { trainer, pool, port, reports, onStep } = await setup(2, { maxAttempts: 2 });
    const workers = await Promise.all([fakeWorker(port), fakeWorker(port, { onStep: () => 'fail' })]);
    await pool.waitForWorkers(2, 1000);
    await trainer.start(init(), { lr: 0.001 });
    const err = await runError(trainer.run(4, onStep));
    expect(err.code).toBe('DDP_STEP_ATTEMPTS');
    expect(err.message).toMatch(/^step 1 failed 2 times in a row with no worker lost; last: the allreduce of ring 1 failed at rank [01] \((PEER_FAILED|TRANSPORT_CLOSED): /);
    expect(reports).toEqual([]);
    for (const w of workers) {
      expect(w.of('ring_listen').map((m) => (m as Frame).generation)).toEqual([0, 1]);
      expect(w.replica!.steps).toBe(0);
    }
  });

  it('a worker that joins between runs gets the replica at resume, with Adam state, after ring_ready, and joins the ring', async () => {
    const { trainer, pool, port, events, notes, reports, onStep } = await setup(3);
    const first = byRank(await Promise.all([fakeWorker(port), fakeWorker(port)]));
    await pool.waitForWorkers(2, 1000);
    await trainer.start(init(), { lr: 0.002 });
    await trainer.run(3, onStep);
    const late = await fakeWorker(port);
    expect(late.rank).toBe(2);
    await trainer.run(6, onStep);

    expect(reports.map((r) => r.step)).toEqual(range(0, 6));
    expect(late.kinds()).toEqual(['welcome', 'ring_listen', 'ring_connect', 'replica', 'ring_run']);
    expect(late.received[1]).toMatchObject({ generation: 1, position: 2, size: 3 });
    expect(late.received[2]).toMatchObject({ generation: 1, resume: 3 });
    // The replica is the state of a member after step 3, Adam's moments included.
    const replica = late.received[3]!;
    const holder = first[0]!;
    expect(replica).toMatchObject({ steps: 3, lr: 0.002 });
    expect(replica.adamM).toBeInstanceOf(Float32Array);
    expect(replica.adamV).toBeInstanceOf(Float32Array);
    expect(holder.of('fetch')).toEqual([{ type: 'fetch', request: 1, steps: 3, optimizer: true }]);
    expect(late.received[4]).toEqual({ type: 'ring_run', generation: 1, from: 3, until: 6 });
    expect(notes).toContain('rank(s) 2 got the replica after step 3 and join the ring');
    // From there all three apply the same steps.
    for (const w of [...first, late]) {
      expect(w.replica!.steps).toBe(6);
      expect(replicaHash(w.replica!.params)).toBe(replicaHash(holder.replica!.params));
    }
    expect(events.filter((e) => e.event === 'ring_formed').map((e) => (e as { step: number }).step)).toEqual([0, 3]);
  });

  it('the replica a late joiner gets is exactly the holder\'s state at resume (weights and both moments)', async () => {
    const { trainer, pool, port, onStep } = await setup(2);
    const holder = await fakeWorker(port);
    await pool.waitForWorkers(1, 1000);
    await trainer.start(init(), { lr: 0.001 });
    await trainer.run(2, onStep);
    const atResume = copy(holder.replica!);
    const late = await fakeWorker(port);
    await trainer.run(3, onStep);
    const replica = late.of<Frame>('replica')[0]!;
    expect(replica.steps).toBe(2);
    expect(replica.params).toEqual(atResume.params);
    expect(replica.adamM).toEqual(atResume.m);
    expect(replica.adamV).toEqual(atResume.v);
  });

  it('a worker that joins during a run ends the ring; the run goes on with it, no step lost or applied twice', async () => {
    const { trainer, pool, port, events, reports } = await setup(3);
    const first = await Promise.all([fakeWorker(port, { delayMs: 15 }), fakeWorker(port, { delayMs: 15 })]);
    await pool.waitForWorkers(2, 1000);
    await trainer.start(init(), { lr: 0.001 });
    const joining: { worker?: Promise<FakeWorker> } = {};
    await trainer.run(12, (r) => {
      reports.push(r);
      if (r.step === 3) joining.worker = fakeWorker(port, { delayMs: 15 });
    });
    const late = await joining.worker!;
    expect(reports.map((r) => r.step)).toEqual(range(0, 12));
    const formed = events.filter((e) => e.event === 'ring_formed') as Array<{ size: number; step: number }>;
    expect(formed.map((f) => f.size)).toEqual([2, 3]);
    expect(formed[1]!.step).toBeGreaterThanOrEqual(4);
    for (const w of [...first, late]) expect(w.replica!.steps).toBe(12);
    expect(new Set([...first, late].map((w) => replicaHash(w.replica!.params))).size).toBe(1);
  });

  it('an abort stops the run: ring_stop to every member, ring_stopped collected; the next run re-forms at the committed step', async () => {
    const { trainer, pool, port, reports, onStep } = await setup(2);
    const workers = byRank(await Promise.all([fakeWorker(port, { delayMs: 20 }), fakeWorker(port, { delayMs: 20 })]));
    await pool.waitForWorkers(2, 1000);
    await trainer.start(init(), { lr: 0.001 });
    const ac = new AbortController();
    await trainer.run(40, (r) => {
      onStep(r);
      if (r.step === 2) ac.abort();
    }, ac.signal);
    const stoppedAt = trainer.steps;
    expect(stoppedAt).toBeGreaterThanOrEqual(3);
    expect(stoppedAt).toBeLessThan(40);
    expect(reports.map((r) => r.step)).toEqual(range(0, stoppedAt));
    for (const w of workers) {
      expect(w.of('ring_stop')).toEqual([{ type: 'ring_stop', generation: 0 }]);
      const stopped = w.sent.filter((m) => m.type === 'ring_stopped');
      expect(stopped).toEqual([{ type: 'ring_stopped', generation: 0, steps: stoppedAt }]);
      expect(w.replica!.steps).toBe(stoppedAt);
    }
    // Nothing more runs until asked; then a new ring resumes where the run stopped.
    await new Promise((r) => setTimeout(r, 60));
    expect(workers.map((w) => w.replica!.steps)).toEqual([stoppedAt, stoppedAt]);
    await trainer.run(stoppedAt + 2, onStep);
    expect(reports.map((r) => r.step)).toEqual(range(0, stoppedAt + 2));
    for (const w of workers) {
      expect(w.of<RingConnectMessage>('ring_connect').at(-1)).toMatchObject({ generation: 1, resume: stoppedAt });
      expect(w.of<RingRunMessage>('ring_run').at(-1)).toMatchObject({ generation: 1, from: stoppedAt, until: stoppedAt + 2 });
    }
  });

  it('every worker lost after a commit: the weights are gone with them (DDP_NO_WORKERS)', async () => {
    const { trainer, pool, port, reports, onStep } = await setup(2);
    await Promise.all([fakeWorker(port, { onStep: (s) => (s === 2 ? 'close' : 'apply') }), fakeWorker(port, { onStep: (s) => (s === 2 ? 'close' : 'apply') })]);
    await pool.waitForWorkers(2, 1000);
    await trainer.start(init(), { lr: 0.001 });
    const err = await runError(trainer.run(8, onStep));
    expect(err.code).toBe('DDP_NO_WORKERS');
    expect(err.message).toMatch(/^every worker holding the weights is gone \(after step 2\)/);
    expect(reports.map((r) => r.step)).toEqual([0, 1]);
  });

  it('a progress report with the wrong sample count gets its sender dropped (DDP_BAD_MESSAGE); the run goes on without it', async () => {
    const { trainer, pool, port, events, reports, onStep } = await setup(3);
    // Rank 2 miscounts step 2, then is busy on the next step until it is dropped.
    const workers = await inOrder(port, [{}, {}, { onStep: (s) => (s === 1 ? 'miscount' : s > 1 ? 'silent' : 'apply') }]);
    await pool.waitForWorkers(3, 1000);
    await trainer.start(init(), { lr: 0.001 });
    await trainer.run(4, onStep);
    expect(reports.map((r) => r.step)).toEqual(range(0, 4));
    const lost = events.filter((e) => e.event === 'worker_lost') as Array<{ rank: number; code: string; reason: string }>;
    expect(lost).toMatchObject([{ rank: 2, code: 'DDP_BAD_MESSAGE' }]);
    const shard = shardSizes(plan.at(1).batch.length, 3)[2]!;
    expect(lost[0]!.reason).toBe(`ring_progress: step 2 gives rank 2 ${shard} samples, the report counts ${shard + 1}`);
    expect(await workers[2]!.closed).toBe(4000);
    // Ranks 0 and 1 had applied step 1 with it: they rolled it back and redid it as a ring of two.
    for (const w of workers.slice(0, 2)) {
      expect(w.rolledBack).toBe(1);
      expect(w.replica!.steps).toBe(4);
      expect(w.of<RingConnectMessage>('ring_connect').at(-1)).toMatchObject({ resume: 1 });
    }
  });

  it('the stall inspector names the ranks a run waits for, with host and last message, only once no step was committed for a whole stall period', async () => {
    const { trainer, pool, port, events, onStep } = await setup(2, {}, 1, 150);
    const workers = await inOrder(port, [
      { delayMs: 40, onStep: (step) => (step === 12 ? 'silent' : 'apply') },
      { delayMs: 40 },
    ]);
    await pool.waitForWorkers(2, 1000);
    await trainer.start(init(), { lr: 0.001 });
    // 10 steps 40 ms apart: a run far longer than the stall period, but never stalled.
    await trainer.run(10, onStep);
    expect(events.filter((e) => e.event === 'stall')).toEqual([]);
    // Rank 0 stops reporting at step 13: rank 0 is named (rank 1 waits at the barrier, so both are).
    const stuck = trainer.run(20, onStep);
    stuck.catch(() => {});
    await new Promise((r) => setTimeout(r, 700));
    const stall = events.find((e) => e.event === 'stall') as Extract<DdpEvent, { event: 'stall' }> | undefined;
    expect(stall).toMatchObject({ step: 13, waitingFor: [{ rank: 0, host: 'test:1', last: 'ring_progress for step 12' }, { rank: 1, host: 'test:1' }] });
    expect(stall!.waitedMs).toBeGreaterThanOrEqual(150);
    expect(workers[0]!.replica!.steps).toBe(12);
    await trainer.close();
  });

  it('--straggler-factor: a member that holds up steps is named once per episode, with no backup (backupRank -1)', async () => {
    const slowAt = new Set([10, 11, 16]);
    const { trainer, pool, port, events, onStep } = await setup(2, { stragglers: { factor: 3, minSamples: 3, floorMs: 100 } });
    await inOrder(port, [{ delayMs: 15 }, { delayMs: 15, computeMs: (step) => (slowAt.has(step) ? 300 : 1) }]);
    await pool.waitForWorkers(2, 1000);
    await trainer.start(init(), { lr: 0.001 });
    await trainer.run(20, onStep);
    const stragglers = events.filter((e) => e.event === 'straggler') as Array<Extract<DdpEvent, { event: 'straggler' }>>;
    // Steps 11 and 12 (1-based) are one episode; step 17 another.
    expect(stragglers).toMatchObject([
      { event: 'straggler', step: 11, rank: 1, host: 'test:1', backupRank: -1 },
      { event: 'straggler', step: 17, rank: 1, host: 'test:1', backupRank: -1 },
    ]);
    for (const s of stragglers) {
      expect(s.waitedMs).toBeGreaterThanOrEqual(300);
      expect(s.medianMs).toBeLessThan(100);
    }
    expect(describeEvent(stragglers[0]!)).toMatch(/^step 11: straggler rank 1 \(test:1\): the ring waited for it, the step took \d+ ms \(median \d+ ms\)$/);
  });
});
