// RingMembers in this process, linked over real peer sockets on 127.0.0.1, driven message by message
// as the coordinator drives them; what they send is collected instead. They run on the wasm backend
// (as before: the cpu backend takes seconds per gradient of the seed CNN, wasm tens of ms), and are
// checked bit for bit against a reference computed here with core's functions: each position's shard
// from the plan, gradientSum on it, the two sums added in float32 (what ringAllreduce does for two
// members: each chunk is one addition, and IEEE addition commutes), core's Adam on the sum.
import { randomBytes } from 'node:crypto';
import {
  Adam,
  EXACT_LOSS,
  MSG,
  PROTOCOL_VERSION,
  SEED_CNN_PARAM_COUNT,
  TrainingPlan,
  addExactGradient,
  exactAccumulator,
  gatherImages,
  gatherLabels,
  gradientSum,
  initBackend,
  initSeedCnnParams,
  replicaHash,
  splitFingerprint,
  wireConfig,
  type AdamState,
  type RingCoordinatorMessage,
  type RingProgressMessage,
  type Split,
  type WelcomeMessage,
  type WireConfig,
  type WorkerToCoordinator,
} from '@ddp/core';
import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import { randomSplit } from '@ddp/core/testing';
import { RingMember } from './ring-member.js';

const P = SEED_CNN_PARAM_COUNT;
const PLAN = { seed: 23, batchSize: 4 };
const LR = 1e-3;


function welcomeFor(train: Split, hashEvery: number, over: MemberOverrides = {}): WelcomeMessage {
  return {
    type: MSG.WELCOME, protocolVersion: PROTOCOL_VERSION, rank: 0, workers: 2, paramCount: P, heartbeatMs: 1000,
    data: { dataset: 'mnist', trainCount: train.count, fingerprint: splitFingerprint(train), testCount: 10, testFingerprint: 'unused: the tests load no test split', serveData: false, rows: 28, cols: 28, numClasses: 10 },
    // --reduction fast unless a test says otherwise: the Reference below adds float32 shard sums.
    config: wireConfig({ allreduce: 'ring', reduction: 'fast', hashEvery, ...over.config }), plan: over.plan ?? PLAN, job: { id: 'j', fingerprint: 'unspecified' },
  };
}

interface MemberOverrides {
  config?: Partial<WireConfig>;
  plan?: { seed: number; batchSize: number };
}

type Out<T extends WorkerToCoordinator['type']> = Extract<WorkerToCoordinator, { type: T }>;

interface TestMember {
  ring: RingMember;
  out: WorkerToCoordinator[];
  failures: string[];
  /** The next message of this type not taken yet (waits for it). */
  next<T extends WorkerToCoordinator['type']>(type: T): Promise<Out<T>>;
  all<T extends WorkerToCoordinator['type']>(type: T): Array<Out<T>>;
}

const made: RingMember[] = [];
afterEach(() => {
  for (const m of made.splice(0)) m.close();
});

function member(train: Split, hashEvery = 1, over: MemberOverrides = {}): TestMember {
  const out: WorkerToCoordinator[] = [];
  const failures: string[] = [];
  const waiters: Array<() => void> = [];
  const ring = new RingMember(
    {
      welcome: welcomeFor(train, hashEvery, over),
      train,
      send: (m) => {
        out.push(m);
        waiters.splice(0).forEach((w) => w());
      },
      fail: (code, message) => {
        failures.push(`${code}: ${message}`);
        waiters.splice(0).forEach((w) => w());
      },
    },
    { token: 'tok', peerHost: '127.0.0.1' },
  );
  made.push(ring);
  const taken = new Set<WorkerToCoordinator>();
  const next = <T extends WorkerToCoordinator['type']>(type: T) =>
    new Promise<Out<T>>((resolve) => {
      const check = () => {
        const m = out.find((x) => x.type === type && !taken.has(x));
        if (m) {
          taken.add(m);
          resolve(m as Out<T>);
        } else waiters.push(check);
      };
      check();
    });
  const all = <T extends WorkerToCoordinator['type']>(type: T) => out.filter((m) => m.type === type) as Array<Out<T>>;
  return { ring, out, failures, next, all };
}

const each = (ms: TestMember[], make: (position: number) => RingCoordinatorMessage) => ms.forEach((m, p) => m.ring.handle(make(p)));

/** ring_listen -> ring_address, ring_connect -> ring_ready, as the coordinator forms ring `generation`. */
async function formRing(ms: TestMember[], generation: number, resume: number): Promise<string[]> {
  each(ms, (position) => ({ type: MSG.RING_LISTEN, generation, position, size: ms.length, group: `test/${generation}` }));
  const addresses = await Promise.all(ms.map((m) => m.next(MSG.RING_ADDRESS)));
  expect(addresses.map((a) => a.generation)).toEqual(ms.map(() => generation));
  const urls = addresses.map((a) => a.url);
  each(ms, () => ({ type: MSG.RING_CONNECT, generation, urls, resume }));
  await Promise.all(ms.map((m) => m.next(MSG.RING_READY)));
  return urls;
}

/** One process doing what a ring of `size` members does, step by step. */
class Reference {
  readonly plan: TrainingPlan;
  readonly params: Float32Array;
  readonly adam: Adam;
  /** Per applied step: each position's shard loss sum. */
  readonly lossSums: number[][] = [];

  constructor(
    private readonly train: Split,
    init: Float32Array,
    state?: AdamState,
  ) {
    this.plan = new TrainingPlan({ ...PLAN, trainCount: train.count });
    this.params = init.slice();
    this.adam = new Adam(P, { lr: LR });
    if (state) this.adam.load(state);
  }

  step(step: number, size: number): void {
    const batch = this.plan.at(step).batch;
    const sums = Array.from({ length: size }, (_, p) => {
      const shard = this.plan.shardOf(step, p, size);
      return gradientSum(this.params, gatherImages(this.train, shard), gatherLabels(this.train, shard), shard.length);
    });
    const sum = sums[0]!.grad.slice();
    for (const s of sums.slice(1)) for (let i = 0; i < P; i++) sum[i] += s.grad[i]!;
    this.adam.stepFromSum(this.params, sum, batch.length);
    this.lossSums.push(sums.map((s) => s.lossSum));
  }

  snapshot() {
    return { params: this.params.slice(), hash: replicaHash(this.params), adam: this.adam.state() };
  }
}

const bits = (a: Float32Array) => Buffer.from(a.buffer, a.byteOffset, a.byteLength);

beforeAll(async () => {
  await initBackend('wasm');
}, 60_000);

describe('RingMember', () => {
  it('two members draw their shards from the plan, run steps [from, until) on their own, and end bitwise equal to one process', async () => {
    const train = randomSplit(8); // 2 steps per epoch: the run crosses into epoch 1
    const init = initSeedCnnParams(7);
    const ms = [member(train, 2), member(train, 2)];
    each(ms, () => ({ type: MSG.REPLICA, steps: 0, params: init, lr: LR }));
    await formRing(ms, 0, 0);
    expect(ms.map((m) => m.ring.steps)).toEqual([0, 0]);

    each(ms, () => ({ type: MSG.RING_RUN, generation: 0, from: 0, until: 3 }));
    const ref = new Reference(train, init);
    const snaps = [ref.snapshot()];
    for (let s = 0; s < 3; s++) {
      ref.step(s, 2);
      snaps.push(ref.snapshot());
    }
    const reports = await Promise.all(ms.map(async (m) => [await m.next(MSG.RING_PROGRESS), await m.next(MSG.RING_PROGRESS), await m.next(MSG.RING_PROGRESS)]));
    reports.forEach((mine, position) => {
      expect(mine.map((r) => [r.generation, r.step])).toEqual([[0, 0], [0, 1], [0, 2]]);
      mine.forEach((r: RingProgressMessage, s) => {
        expect(r.count).toBe(ref.plan.shardOf(s, position, 2).length);
        expect(r.lossSum).toBe(ref.lossSums[s]![position]);
        expect(r.bytesSent).toBe(4 * P); // two members: each sends half the vector, twice
        for (const k of ['prepareMs', 'computeMs', 'allreduceMs', 'optimizerMs'] as const) expect(r[k]).toBeGreaterThanOrEqual(0);
        expect(r.computeMs).toBeGreaterThan(0);
      });
      // --hash-every 2: a hash after step 2 and after the run's last step (3), none after step 1.
      expect(mine.map((r) => r.hash)).toEqual([undefined, snaps[2]!.hash, snaps[3]!.hash]);
      expect(mine[0]!.cycleMs).toBe(0);
      expect(mine[1]!.cycleMs).toBeGreaterThan(0);
    });
    expect(ms.map((m) => m.ring.steps)).toEqual([3, 3]);
    // The next shard was gathered during each allreduce: only the first came on demand.
    expect(ms.map((m) => m.ring.prefetchStats)).toEqual([{ hits: 2, misses: 1 }, { hits: 2, misses: 1 }]);

    // fetch: the current state, with Adam's moments...
    ms[0]!.ring.handle({ type: MSG.FETCH, request: 5, steps: 3, optimizer: true });
    const now = await ms[0]!.next(MSG.STATE);
    expect(now).toMatchObject({ request: 5, steps: 3, hash: snaps[3]!.hash });
    expect(bits(now.params).equals(bits(snaps[3]!.params))).toBe(true);
    expect(bits(now.adamM!).equals(bits(snaps[3]!.adam.m))).toBe(true);
    expect(bits(now.adamV!).equals(bits(snaps[3]!.adam.v))).toBe(true);
    // ... or the one before the last step, without them.
    ms[1]!.ring.handle({ type: MSG.FETCH, request: 6, steps: 2, optimizer: false });
    const before = await ms[1]!.next(MSG.STATE);
    expect(before).toMatchObject({ request: 6, steps: 2, hash: snaps[2]!.hash });
    expect(before.adamM).toBeUndefined();
    expect(bits(before.params).equals(bits(snaps[2]!.params))).toBe(true);

    // Step 3 was not committed everywhere (say a third member failed): a new ring resumes at 2,
    // both roll it back, and redoing it gives the same bits.
    await formRing(ms, 1, 2);
    expect(ms.map((m) => m.ring.steps)).toEqual([2, 2]);
    expect(ms.map((m) => m.all(MSG.RING_ADDRESS).at(-1)!.steps)).toEqual([3, 3]); // they said where they stood
    ms[1]!.ring.handle({ type: MSG.FETCH, request: 7, steps: 2, optimizer: true });
    const rolled = await ms[1]!.next(MSG.STATE);
    expect(rolled.hash).toBe(snaps[2]!.hash);
    expect(bits(rolled.adamM!).equals(bits(snaps[2]!.adam.m))).toBe(true);
    each(ms, () => ({ type: MSG.RING_RUN, generation: 1, from: 2, until: 3 }));
    const redo = await Promise.all(ms.map((m) => m.next(MSG.RING_PROGRESS)));
    expect(redo.map((r) => [r.generation, r.step, r.hash])).toEqual([[1, 2, snaps[3]!.hash], [1, 2, snaps[3]!.hash]]);
    expect(ms.flatMap((m) => m.failures)).toEqual([]);
    expect(ms.flatMap((m) => m.all(MSG.RING_FAILED))).toEqual([]);

    // Any other step's weights are gone: asking for them is a fault of the coordinator's bookkeeping.
    ms[1]!.ring.handle({ type: MSG.FETCH, request: 8, steps: 1, optimizer: false });
    await ms[1]!.ring.settled();
    expect(ms[1]!.failures).toEqual(['DDP_WORKER: ring mode: asked for the weights after 1 step(s), but the replica is at step 3']);
  }, 120_000);

  it('--reduction exact: three members (shards of 16, 16 and 8 samples) end bitwise equal to one process adding the micro-shards exactly; position 0 reports the exact loss', async () => {
    const plan = { seed: 5, batchSize: 40 };
    const train = randomSplit(80); // 2 steps per epoch: the run crosses into epoch 1
    const init = initSeedCnnParams(11);
    const ms = [0, 1, 2].map(() => member(train, 1, { config: { reduction: 'exact' }, plan }));
    each(ms, () => ({ type: MSG.REPLICA, steps: 0, params: init, lr: LR }));
    await formRing(ms, 0, 0);
    each(ms, () => ({ type: MSG.RING_RUN, generation: 0, from: 0, until: 3 }));

    // One process: the whole batch's micro-shards into one exact accumulator, rounded once, Adam.
    const refPlan = new TrainingPlan({ ...plan, trainCount: train.count });
    const params = init.slice();
    const adam = new Adam(P, { lr: LR });
    const acc = exactAccumulator();
    const hashes: string[] = [];
    const losses: number[] = [];
    for (let s = 0; s < 3; s++) {
      const batch = refPlan.at(s).batch;
      acc.reset();
      addExactGradient(acc, params, gatherImages(train, batch), gatherLabels(train, batch), batch.length);
      const rounded = acc.toFloat32();
      adam.stepFromSum(params, rounded.subarray(0, EXACT_LOSS), batch.length);
      hashes.push(replicaHash(params));
      losses.push(rounded[EXACT_LOSS]!);
    }
    const reports = await Promise.all(ms.map(async (m) => [await m.next(MSG.RING_PROGRESS), await m.next(MSG.RING_PROGRESS), await m.next(MSG.RING_PROGRESS)]));
    reports.forEach((mine, position) => {
      expect(mine.map((r) => r.count)).toEqual([[16, 16, 8][position], [16, 16, 8][position], [16, 16, 8][position]]);
      expect(mine.map((r) => r.hash)).toEqual(hashes);
      expect(mine.map((r) => r.lossSum)).toEqual(position === 0 ? losses : [0, 0, 0]);
    });
    expect(ms.flatMap((m) => m.failures)).toEqual([]);
  }, 120_000);

  it('a newer ring_listen abandons a run at once (an allreduce waiting on a silent neighbour), quietly; the member goes on in the new ring', async () => {
    const train = randomSplit(8);
    const init = initSeedCnnParams(3);
    const ms = [member(train), member(train)];
    each(ms, () => ({ type: MSG.REPLICA, steps: 0, params: init, lr: LR }));
    await formRing(ms, 0, 0);
    // Only member 0 is told to run: its allreduce waits for member 1 (there is no receive timeout).
    ms[0]!.ring.handle({ type: MSG.RING_RUN, generation: 0, from: 0, until: 2 });
    await new Promise((r) => setTimeout(r, 300));
    expect(ms[0]!.out.filter((m) => m.type !== MSG.RING_ADDRESS && m.type !== MSG.RING_READY)).toEqual([]);
    const t0 = performance.now();
    ms[0]!.ring.handle({ type: MSG.RING_LISTEN, generation: 1, position: 0, size: 1, group: 'test/solo' });
    const address = await ms[0]!.next(MSG.RING_ADDRESS);
    expect(performance.now() - t0).toBeLessThan(2000);
    expect(address).toMatchObject({ generation: 1, steps: 0 });
    expect(ms[0]!.all(MSG.RING_PROGRESS)).toEqual([]);
    expect(ms[0]!.all(MSG.RING_FAILED)).toEqual([]); // abandoned, not failed
    expect(ms[0]!.ring.steps).toBe(0);

    // Alone in ring 1, it takes the whole batch.
    ms[0]!.ring.handle({ type: MSG.RING_CONNECT, generation: 1, urls: [address.url], resume: 0 });
    await ms[0]!.next(MSG.RING_READY);
    ms[0]!.ring.handle({ type: MSG.RING_RUN, generation: 1, from: 0, until: 1 });
    const p = await ms[0]!.next(MSG.RING_PROGRESS);
    const ref = new Reference(train, init);
    ref.step(0, 1);
    expect(p).toMatchObject({ generation: 1, step: 0, count: 4, hash: replicaHash(ref.params), bytesSent: 0 });
    expect(ms[0]!.failures).toEqual([]);
  }, 30_000);

  it('a member that joins with no replica links first, then takes the replica it is sent (with Adam state) and continues exactly', async () => {
    const train = randomSplit(8);
    // The state after 4 steps of some earlier run.
    const ref = new Reference(train, initSeedCnnParams(5));
    for (let s = 0; s < 4; s++) ref.step(s, 2);
    const at4 = ref.snapshot();
    const m = member(train);
    m.ring.handle({ type: MSG.RING_LISTEN, generation: 3, position: 0, size: 1, group: 'test/late' });
    const address = await m.next(MSG.RING_ADDRESS);
    expect(address.steps).toBe(-1);
    m.ring.handle({ type: MSG.RING_CONNECT, generation: 3, urls: [address.url], resume: 4 });
    await m.next(MSG.RING_READY);
    m.ring.handle({ type: MSG.REPLICA, steps: 4, params: at4.params, lr: LR, adamM: at4.adam.m, adamV: at4.adam.v });
    m.ring.handle({ type: MSG.RING_RUN, generation: 3, from: 4, until: 5 });
    const p = await m.next(MSG.RING_PROGRESS);
    const cont = new Reference(train, at4.params, at4.adam);
    cont.step(4, 1);
    expect(p).toMatchObject({ step: 4, hash: replicaHash(cont.params) });
    // Without the moments the step would differ: the state did matter.
    const fresh = new Reference(train, at4.params, { t: 4, m: new Float32Array(P), v: new Float32Array(P) });
    fresh.step(4, 1);
    expect(replicaHash(fresh.params)).not.toBe(p.hash);
    expect(m.failures).toEqual([]);
  }, 120_000);

  it('ring_stop: the member leaves the ring after the step in hand and answers ring_stopped with the steps it holds, after its last report', async () => {
    const train = randomSplit(8);
    const ms = [member(train), member(train)];
    each(ms, () => ({ type: MSG.REPLICA, steps: 0, params: initSeedCnnParams(2), lr: LR }));
    await formRing(ms, 0, 0);
    each(ms, () => ({ type: MSG.RING_RUN, generation: 0, from: 0, until: 60 }));
    await ms[0]!.next(MSG.RING_PROGRESS);
    each(ms, () => ({ type: MSG.RING_STOP, generation: 0 }));
    const stopped = await Promise.all(ms.map((m) => m.next(MSG.RING_STOPPED)));
    for (const [k, m] of ms.entries()) {
      const progress = m.all(MSG.RING_PROGRESS);
      expect(stopped[k]).toEqual({ type: MSG.RING_STOPPED, generation: 0, steps: progress.length });
      expect(m.ring.steps).toBe(progress.length);
      expect(m.out.at(-1)).toBe(stopped[k]); // nothing after it
      expect(m.all(MSG.RING_FAILED)).toEqual([]);
    }
    const held = ms.map((m) => m.ring.steps);
    expect(held[0]).toBeGreaterThanOrEqual(1);
    expect(Math.max(...held)).toBeLessThan(60);
    expect(Math.abs(held[0]! - held[1]!)).toBeLessThanOrEqual(1); // at most one step apart: a roll-back of one
    // And it stays out: nothing more is applied.
    await new Promise((r) => setTimeout(r, 200));
    expect(ms.map((m) => m.ring.steps)).toEqual(held);
    expect(ms.flatMap((m) => m.failures)).toEqual([]);
  }, 120_000);

  it('a resume it cannot reach is a fault of this worker (DDP_WORKER), not a silent divergence', async () => {
    const m = member(randomSplit(8));
    m.ring.handle({ type: MSG.REPLICA, steps: 5, params: initSeedCnnParams(1), lr: LR });
    m.ring.handle({ type: MSG.RING_LISTEN, generation: 0, position: 0, size: 1, group: 'g' });
    const address = await m.next(MSG.RING_ADDRESS);
    expect(address.steps).toBe(5);
    m.ring.handle({ type: MSG.RING_CONNECT, generation: 0, urls: [address.url], resume: 3 });
    await m.ring.settled();
    expect(m.failures).toEqual(['DDP_WORKER: ring mode: the replica is at step 5 and cannot resume at step 3']);
    expect(m.all(MSG.RING_READY)).toEqual([]);
  });

  it('a ring_run from a step the replica does not hold is a fault (DDP_WORKER)', async () => {
    const m = member(randomSplit(8));
    m.ring.handle({ type: MSG.REPLICA, steps: 2, params: initSeedCnnParams(1), lr: LR });
    m.ring.handle({ type: MSG.RING_LISTEN, generation: 0, position: 0, size: 1, group: 'g' });
    const address = await m.next(MSG.RING_ADDRESS);
    m.ring.handle({ type: MSG.RING_CONNECT, generation: 0, urls: [address.url], resume: 2 });
    await m.next(MSG.RING_READY);
    m.ring.handle({ type: MSG.RING_RUN, generation: 0, from: 1, until: 3 });
    await m.ring.settled();
    expect(m.failures).toEqual(['DDP_WORKER: ring mode: ring_run from step 1, but the replica is at step 2']);
    expect(m.all(MSG.RING_PROGRESS)).toEqual([]);
  });
});
