// Two RingMembers in this process, linked over real peer sockets, driven message by message as the
// coordinator would drive them; their replies are collected instead of sent.
import { randomBytes } from 'node:crypto';
import {
  Adam,
  MSG,
  gatherImages,
  gatherLabels,
  gradientSum,
  initBackend,
  initSeedCnnParams,
  replicaHash,
  type RingCoordinatorMessage,
  type Split,
  type WorkerToCoordinator,
} from '@ddp/core';
import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import { RingMember } from './ring-member.js';

function randomSplit(count: number): Split {
  return { images: new Uint8Array(randomBytes(count * 784)), labels: new Uint8Array(randomBytes(count).map((b) => b % 10)), count, rows: 28, cols: 28 };
}

interface Member {
  ring: RingMember;
  out: WorkerToCoordinator[];
  failures: string[];
  /** The next reply of this type (waits for it). */
  next<T extends WorkerToCoordinator['type']>(type: T): Promise<Extract<WorkerToCoordinator, { type: T }>>;
}

const members: RingMember[] = [];
afterEach(() => {
  for (const m of members.splice(0)) m.close();
});

function member(train: Split): Member {
  const out: WorkerToCoordinator[] = [];
  const failures: string[] = [];
  const waiters: Array<() => void> = [];
  const ring = new RingMember({
    token: 'tok',
    peerHost: '127.0.0.1',
    compress: 'none',
    train,
    rows: 28,
    cols: 28,
    send: (m) => {
      out.push(m);
      waiters.splice(0).forEach((w) => w());
    },
    fail: (code, message) => failures.push(`${code}: ${message}`),
  });
  members.push(ring);
  const taken = new Set<WorkerToCoordinator>();
  const next = <T extends WorkerToCoordinator['type']>(type: T) =>
    new Promise<Extract<WorkerToCoordinator, { type: T }>>((resolve) => {
      const check = () => {
        const m = out.find((x) => x.type === type && !taken.has(x));
        if (m) {
          taken.add(m);
          resolve(m as Extract<WorkerToCoordinator, { type: T }>);
        } else waiters.push(check);
      };
      check();
    });
  return { ring, out, failures, next };
}

const both = (ms: Member[], make: (position: number) => RingCoordinatorMessage) => ms.forEach((m, p) => m.ring.handle(make(p)));

async function formRing(ms: Member[], generation: number, resume: number): Promise<void> {
  both(ms, (position) => ({ type: MSG.RING_LISTEN, generation, position, size: ms.length, group: `test/${generation}`, resume }));
  const urls = (await Promise.all(ms.map((m) => m.next(MSG.RING_ADDRESS)))).map((a) => a.url);
  both(ms, () => ({ type: MSG.RING_CONNECT, generation, urls }));
  await Promise.all(ms.map((m) => m.next(MSG.RING_READY)));
}

beforeAll(async () => {
  await initBackend('wasm');
});

describe('RingMember', () => {
  it('two members train bitwise like one process would (N = 2), prepare and compute the next shard ahead, and roll back an uncommitted step', async () => {
    const train = randomSplit(8);
    const params = initSeedCnnParams(7);
    const ms = [member(train), member(train)];
    both(ms, () => ({ type: MSG.REPLICA, steps: 0, params, lr: 1e-3 }));
    await formRing(ms, 0, 0);

    const shards = [Uint32Array.from([0, 1]), Uint32Array.from([2, 3])];
    const nextShards = [Uint32Array.from([4, 5]), Uint32Array.from([6, 7])];
    both(ms, (p) => ({ type: MSG.RING_WORK, generation: 0, step: 0, epoch: 0, task: p, batchSize: 4, indices: shards[p]!, next: nextShards[p] }));
    const r0 = await Promise.all(ms.map((m) => m.next(MSG.RING_RESULT)));

    // The reference: the two shard sums added (in either order: IEEE addition commutes), divided, one Adam step.
    const ref = params.slice();
    const adam = new Adam(ref.length, { lr: 1e-3 });
    const sums = shards.map((s) => gradientSum(ref, gatherImages(train, s), gatherLabels(train, s), 2));
    const g = sums[0]!.grad.map((x, i) => (x + sums[1]!.grad[i]!) / 4);
    adam.step(ref, g);
    expect(r0.map((r) => r.hash)).toEqual([replicaHash(ref), replicaHash(ref)]);
    expect(r0.map((r) => r.lossSum)).toEqual(sums.map((s) => s.lossSum));
    expect(r0.map((r) => r.bytesSent)).toEqual([4 * ref.length, 4 * ref.length]); // N = 2: half the vector, twice

    // Step 1 on the announced shards: gathered during step 0's allreduce, their gradients computed
    // right after step 0 was answered, so ready when the work came.
    const announced = [Uint32Array.from([1, 2]), Uint32Array.from([3, 0])];
    both(ms, (p) => ({ type: MSG.RING_WORK, generation: 0, step: 1, epoch: 0, task: 10 + p, batchSize: 4, indices: nextShards[p]!, next: announced[p] }));
    const r1 = await Promise.all(ms.map((m) => m.next(MSG.RING_RESULT)));
    expect(ms.map((m) => m.ring.prefetchStats)).toEqual([{ hits: 2, misses: 1 }, { hits: 2, misses: 1 }]);
    expect(ms.map((m) => m.ring.aheadStats)).toEqual([{ used: 1, wasted: 0 }, { used: 1, wasted: 0 }]);
    expect(r1.every((r) => r.aheadMs > 0 && r.cycleMs > 0)).toBe(true);
    const sums1 = nextShards.map((s) => gradientSum(ref, gatherImages(train, s), gatherLabels(train, s), 2));
    adam.step(ref, sums1[0]!.grad.map((x, i) => (x + sums1[1]!.grad[i]!) / 4));
    expect(r1.map((r) => r.hash)).toEqual([replicaHash(ref), replicaHash(ref)]);
    expect(ms.map((m) => m.ring.steps)).toEqual([2, 2]);

    // The work that comes is not the one announced (the ring was re-sharded): computed afresh, same bits.
    const third = [Uint32Array.from([7]), Uint32Array.from([6, 5, 4])];
    both(ms, (p) => ({ type: MSG.RING_WORK, generation: 0, step: 2, epoch: 0, task: 20 + p, batchSize: 4, indices: third[p]! }));
    const r2 = await Promise.all(ms.map((m) => m.next(MSG.RING_RESULT)));
    expect(ms.map((m) => m.ring.aheadStats)).toEqual([{ used: 1, wasted: 1 }, { used: 1, wasted: 1 }]);
    const before2 = ref.slice();
    const adamBefore2 = adam.state();
    const sums2 = third.map((s) => gradientSum(ref, gatherImages(train, s), gatherLabels(train, s), s.length));
    adam.step(ref, sums2[0]!.grad.map((x, i) => (x + sums2[1]!.grad[i]!) / 4));
    expect(r2.map((r) => r.hash)).toEqual([replicaHash(ref), replicaHash(ref)]);

    // Step 2 was not committed (say a third member failed): a new ring resumes at 2, rolling it back.
    await formRing(ms, 1, 2);
    expect(ms.map((m) => m.ring.steps)).toEqual([2, 2]);
    ref.set(before2);
    adam.load(adamBefore2);
    ms[0]!.ring.handle({ type: MSG.FETCH, request: 5, optimizer: true });
    const state = await ms[0]!.next(MSG.STATE);
    expect(state).toMatchObject({ request: 5, steps: 2, hash: replicaHash(ref) });
    expect(state.adamM).toEqual(adam.state().m);
    expect(state.adamV).toEqual(adam.state().v);
    expect(ms.flatMap((m) => m.failures)).toEqual([]);
  }, 60_000);

  it('a newer ring abandons the current one at once: an allreduce stuck on a silent neighbour fails, then the member listens again', async () => {
    const train = randomSplit(4);
    const ms = [member(train), member(train)];
    both(ms, () => ({ type: MSG.REPLICA, steps: 0, params: initSeedCnnParams(1), lr: 1e-3 }));
    await formRing(ms, 0, 0);
    // Only member 0 gets its work: its allreduce waits for member 1 forever.
    ms[0]!.ring.handle({ type: MSG.RING_WORK, generation: 0, step: 0, epoch: 0, task: 0, batchSize: 2, indices: Uint32Array.from([0]) });
    await new Promise((r) => setTimeout(r, 300));
    expect(ms[0]!.out.some((m) => m.type === MSG.RING_RESULT || m.type === MSG.RING_FAILED)).toBe(false);
    ms[0]!.ring.handle({ type: MSG.RING_LISTEN, generation: 1, position: 0, size: 1, group: 'test/1', resume: 0 });
    const failed = await ms[0]!.next(MSG.RING_FAILED);
    expect(failed).toMatchObject({ generation: 0, step: 0, code: 'TRANSPORT_CLOSED' });
    expect(await ms[0]!.next(MSG.RING_ADDRESS)).toMatchObject({ generation: 1 });
    expect(ms[0]!.ring.steps).toBe(0);
  }, 60_000);

  it('a resume it cannot reach is a fault of this worker (DDP_WORKER), not a silent divergence', async () => {
    const m = member(randomSplit(2));
    m.ring.handle({ type: MSG.REPLICA, steps: 5, params: initSeedCnnParams(1), lr: 1e-3 });
    m.ring.handle({ type: MSG.RING_LISTEN, generation: 0, position: 0, size: 1, group: 'g', resume: 3 });
    await m.ring.settled();
    expect(m.failures).toEqual(['DDP_WORKER: ring mode: the replica is at step 5 and cannot resume at step 3']);
  });
});
