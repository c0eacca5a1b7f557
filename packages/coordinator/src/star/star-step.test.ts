import { randomBytes } from 'node:crypto';
import { EXACT_LENGTH, EXACT_LOSS, ExactAccumulator, MICRO_SHARD, ProtocolError, decodeFp16, encodeFp16, type GradientMessage } from '@ddp/core';
import { protocolRefusal } from '@ddp/core/testing';
import { describe, expect, it } from 'vitest';
import { StarStep, TaskIds, type Assignment, type StepTask } from './star-step.js';

/** Runs `fn`, which must refuse with DDP_BAD_MESSAGE; returns the error. */
const badMessage = (fn: () => unknown) => protocolRefusal(fn, 'DDP_BAD_MESSAGE');

const P = 257;
const bits = (a: ArrayBufferView) => Buffer.from(a.buffer, a.byteOffset, a.byteLength);

/** A deterministic fake worker: the "gradient" of a shard depends only on its indices, as a real one does. */
function answer(task: StepTask, step: number, computeMs = 5): GradientMessage {
  const grad = new Float32Array(P);
  let lossSum = 0;
  for (const idx of task.indices) {
    for (let i = 0; i < P; i++) grad[i] += Math.fround(Math.sin(idx * 0.37 + i) * 1e-3 * (idx + 1));
    lossSum += (idx % 7) * 0.1;
  }
  return { type: 'gradient', step, task: task.id, count: task.indices.length, lossSum, grad, computeMs, busyMs: computeMs };
}

function randomBatch(n: number): Uint32Array {
  return new Uint32Array(randomBytes(4 * n).buffer).map((x) => x % 60000);
}

/** The reference: shard gradients added one after another in shard order, in float32. */
function rankOrderSum(tasks: StepTask[], step: number): Float32Array {
  const out = new Float32Array(P);
  for (const t of [...tasks].sort((a, b) => a.shard - b.shard)) {
    const g = answer(t, step).grad;
    for (let i = 0; i < P; i++) out[i] = Math.fround(out[i] + g[i]);
  }
  return out;
}


describe('StarStep', () => {
  it('shards by rank with sizes within one, and sums in rank order whatever the arrival order', () => {
    const batch = randomBatch(64);
    const round = new StarStep(4, 0, batch, [2, 0, 1], new TaskIds());
    const orders = round.start();
    expect(orders.map((o) => o.rank)).toEqual([0, 1, 2]);
    expect(orders.map((o) => o.task.indices.length)).toEqual([22, 21, 21]);
    expect(Array.from(orders.flatMap((o) => Array.from(o.task.indices)))).toEqual(Array.from(batch));
    for (const o of [...orders].reverse()) round.onGradient(o.rank, answer(o.task, 4));
    expect(round.complete).toBe(true);
    const r = round.result();
    expect(r.grad).toEqual(rankOrderSum(round.tasks, 4));
    const lossRef = orders.reduce((s, o) => s + answer(o.task, 4).lossSum, 0);
    expect(r.lossSum).toBeCloseTo(lossRef, 10);
  });

  it('a worker lost mid-step: its shard goes to a survivor, the sum is the same bits, and its late answer is refused', () => {
    const batch = randomBatch(50);
    const ids = new TaskIds();
    const reference = new StarStep(7, 1, batch, [0, 1, 2], new TaskIds());
    reference.start().forEach((o) => reference.onGradient(o.rank, answer(o.task, 7)));

    const round = new StarStep(7, 1, batch, [0, 1, 2], ids);
    const [o0, o1, o2] = round.start();
    round.onGradient(0, answer(o0.task, 7));
    const replacements = round.onLost(1);
    // Rank 0 has no open task, rank 2 has one: rank 0 takes the whole lost shard.
    expect(replacements).toHaveLength(1);
    expect(replacements[0].rank).toBe(0);
    expect(replacements[0].task.id).toBe(o1.task.id);
    expect(replacements[0].task.lostBy).toEqual([1]);
    expect(round.complete).toBe(false);
    badMessage(() => round.onGradient(1, answer(o1.task, 7)));
    round.onGradient(2, answer(o2.task, 7));
    round.onGradient(0, answer(replacements[0].task, 7));
    expect(round.complete).toBe(true);
    expect(round.result().grad).toEqual(reference.result().grad);
  });

  it('refuses duplicates, wrong steps, wrong counts and tasks the rank does not hold', () => {
    const round = new StarStep(3, 0, randomBatch(10), [0, 1], new TaskIds());
    const [a, b] = round.start();
    expect(badMessage(() => round.onGradient(0, answer(a.task, 2))).message).toMatch(/for step 2, but step 3 is running/);
    expect(badMessage(() => round.onGradient(1, answer(a.task, 3))).message).toMatch(/not one rank 1 holds/);
    expect(badMessage(() => round.onGradient(0, { ...answer(a.task, 3), count: 4 })).message).toMatch(/has 5 samples, the answer counts 4/);
    round.onGradient(0, answer(a.task, 3));
    badMessage(() => round.onGradient(0, answer(a.task, 3)));
    expect(round.complete).toBe(false);
    round.onGradient(1, answer(b.task, 3));
    expect(round.complete).toBe(true);
  });

  it('orphans tasks when the last worker goes, and hands them to the next one to join', () => {
    const batch = randomBatch(9);
    const round = new StarStep(0, 0, batch, [0, 1], new TaskIds());
    round.start();
    expect(round.onLost(0).map((o) => o.rank)).toEqual([1]);
    expect(round.onLost(1)).toEqual([]);
    expect(round.orphaned).toHaveLength(2);
    const given: Assignment[] = round.onJoin(5);
    expect(given.map((g) => g.rank)).toEqual([5, 5]);
    expect(round.orphaned).toHaveLength(0);
    given.forEach((g) => round.onGradient(5, answer(g.task, 0)));
    expect(round.result().grad).toEqual(rankOrderSum(round.tasks, 0));
  });

  it('a round that starts with no worker waits with the whole batch as one task', () => {
    const round = new StarStep(0, 0, randomBatch(8), [], new TaskIds());
    expect(round.start()).toEqual([]);
    expect(round.orphaned).toHaveLength(1);
    expect(round.onJoin(3).map((g) => [g.rank, g.task.indices.length])).toEqual([[3, 8]]);
  });

  it('a batch smaller than the worker count leaves the extra ranks idle', () => {
    const round = new StarStep(0, 0, randomBatch(2), [0, 1, 2], new TaskIds());
    expect(round.start().map((o) => o.rank)).toEqual([0, 1]);
  });

  it('task ids never repeat across rounds', () => {
    const ids = new TaskIds();
    const a = new StarStep(0, 0, randomBatch(6), [0, 1, 2], ids).tasks.map((t) => t.id);
    const b = new StarStep(1, 0, randomBatch(6), [0, 1, 2], ids).tasks.map((t) => t.id);
    expect(new Set([...a, ...b]).size).toBe(6);
  });

  it('timing: compute + communication + waiting is each task\'s share of the round', () => {
    let now = 1000;
    const round = new StarStep(0, 0, randomBatch(6), [0, 1], new TaskIds(), () => now);
    const [a, b] = round.start();
    now = 1012; // rank 0 answers after 12 ms, 8 of them computing
    round.onGradient(0, answer(a.task, 0, 8));
    now = 1030; // rank 1 after 30 ms, 20 computing
    round.onGradient(1, answer(b.task, 0, 20));
    const { timing: t, ranks } = round.result();
    expect(ranks).toEqual([
      { rank: 0, computeMs: 8, allreduceMs: 4, waitingMs: 18 },
      { rank: 1, computeMs: 20, allreduceMs: 10, waitingMs: 0 },
    ]);
    expect(t.compute).toBeCloseTo((8 + 20) / 2, 9);
    expect(t.communication).toBeCloseTo((4 + 10) / 2, 9);
    expect(t.waiting).toBeCloseTo((18 + 0) / 2, 9);
    expect(t.compute + t.communication + t.waiting).toBeCloseTo(30, 9);
  });

  it('fp16 answers (float16 bits) are widened and added in float32, in shard order', () => {
    const round = new StarStep(0, 0, randomBatch(30), [0, 1, 2], new TaskIds());
    const orders = round.start();
    for (const o of [...orders].reverse()) {
      const a = answer(o.task, 0);
      round.onGradient(o.rank, { ...a, grad: encodeFp16(a.grad as Float32Array) });
    }
    const expected = new Float32Array(P);
    for (const t of [...round.tasks].sort((a, b) => a.shard - b.shard)) {
      const g = decodeFp16(encodeFp16(answer(t, 0).grad as Float32Array));
      for (let i = 0; i < P; i++) expected[i] = Math.fround(expected[i]! + g[i]!);
    }
    const got = round.result().grad;
    expect(got).toBeInstanceOf(Float32Array);
    expect(Buffer.from(got.buffer).equals(Buffer.from(expected.buffer))).toBe(true);
    expect(Buffer.from(got.buffer).equals(Buffer.from(rankOrderSum(round.tasks, 0).buffer))).toBe(false); // it did round
  });

});

describe('StarStep backups (--straggler-factor)', () => {
  /** A round over ranks [0, 1, 2] on a clock the test moves. */
  function timed() {
    const clock = { now: 1000 };
    const batch = randomBatch(30);
    const round = new StarStep(5, 0, batch, [0, 1, 2], new TaskIds(), () => clock.now);
    const orders = round.start();
    const reference = new StarStep(5, 0, batch, [0, 1, 2], new TaskIds());
    reference.start().forEach((o) => reference.onGradient(o.rank, answer(o.task, 5)));
    return { clock, round, orders, reference: reference.result().grad };
  }

  it('a task held past the threshold is also given to the lowest rank done with its own, once; the first answer is used, the other is late', () => {
    const { clock, round, orders: [o0, o1, o2], reference } = timed();
    clock.now = 1010;
    expect(round.onGradient(2, answer(o2!.task, 5))).toBe('accepted');
    expect(round.onGradient(0, answer(o0!.task, 5))).toBe('accepted');
    expect(round.backups(30)).toEqual([]); // rank 1 has held its task 10 ms only
    expect(round.nextOverdue(30)).toBe(1030);
    clock.now = 1040;
    const [backup, ...more] = round.backups(30);
    expect(more).toEqual([]);
    expect(backup!.rank).toBe(0);
    expect(backup!.task.id).toBe(o1!.task.id);
    expect(backup!.task).toMatchObject({ rank: 1, backup: 0, backupAt: 1040, assignedAt: 1000 });
    expect(round.waitingFor).toEqual([0, 1]);
    expect(round.backups(30)).toEqual([]); // one backup per task
    expect(round.nextOverdue(30)).toBeNull();
    clock.now = 1050;
    expect(round.onGradient(0, answer(backup!.task, 5))).toBe('accepted');
    expect(round.complete).toBe(true);
    expect(round.shardMs(backup!.task)).toBe(10);
    // The straggler's answer comes after all: late, discarded; a second one from it is a violation.
    expect(round.onGradient(1, answer(o1!.task, 5))).toBe('late');
    badMessage(() => round.onGradient(1, answer(o1!.task, 5)));
    badMessage(() => round.onGradient(0, answer(o1!.task, 5)));
    const r = round.result();
    expect(bits(r.grad).equals(bits(reference))).toBe(true);
    // Rank 0 computed two shards; the straggler, whose answer was not used, is not in the timing.
    expect(r.ranks.map((x) => x.rank)).toEqual([0, 2]);
  });

  it('the holder answering first wins over its backup; the backup\'s answer is late', () => {
    const { clock, round, orders: [o0, o1, o2], reference } = timed();
    round.onGradient(0, answer(o0!.task, 5));
    round.onGradient(2, answer(o2!.task, 5));
    clock.now = 1100;
    expect(round.backups(50).map((b) => [b.rank, b.task.id])).toEqual([[0, o1!.task.id]]);
    clock.now = 1101;
    expect(round.onGradient(1, answer(o1!.task, 5))).toBe('accepted');
    expect(round.shardMs(o1!.task)).toBe(101);
    expect(round.onGradient(0, answer(o1!.task, 5))).toBe('late');
    const r = round.result();
    expect(bits(r.grad).equals(bits(reference))).toBe(true);
    expect(r.ranks.map((x) => x.rank)).toEqual([0, 1, 2]);
  });

  it('with no rank idle the overdue task waits; the next rank to finish takes the backup', () => {
    const { clock, round, orders: [o0, o1, o2] } = timed();
    clock.now = 1100;
    expect(round.backups(50)).toEqual([]); // every rank holds an open task
    expect(round.nextOverdue(50)).toBe(1050); // overdue already: the caller waits for an answer
    round.onGradient(2, answer(o2!.task, 5));
    // Both 0 and 1 are overdue; the one idle rank backs up the first in shard order.
    expect(round.backups(50).map((b) => [b.rank, b.task.id])).toEqual([[2, o0!.task.id]]);
    expect(round.backups(50)).toEqual([]);
    round.onGradient(0, answer(o0!.task, 5)); // the holder wins after all
    expect(round.onGradient(2, answer(o0!.task, 5))).toBe('late');
    expect(round.backups(50).map((b) => [b.rank, b.task.id])).toEqual([[0, o1!.task.id]]);
  });

  it('a lost holder hands its task to the backup with no new work order; a lost backup leaves it to the holder', () => {
    const { clock, round, orders: [o0, o1, o2], reference } = timed();
    round.onGradient(0, answer(o0!.task, 5));
    round.onGradient(2, answer(o2!.task, 5));
    clock.now = 1100;
    expect(round.backups(50).map((b) => b.rank)).toEqual([0]);
    expect(round.onLost(1)).toEqual([]);
    expect(o1!.task).toMatchObject({ rank: 0, backup: null, lostBy: [1], assignedAt: 1100 });
    clock.now = 1120;
    round.onGradient(0, answer(o1!.task, 5));
    expect(round.shardMs(o1!.task)).toBe(20);
    expect(bits(round.result().grad).equals(bits(reference))).toBe(true);

    const second = timed();
    second.round.onGradient(0, answer(second.orders[0]!.task, 5));
    second.round.onGradient(2, answer(second.orders[2]!.task, 5));
    second.clock.now = 1100;
    expect(second.round.backups(50).map((b) => b.rank)).toEqual([0]);
    expect(second.round.onLost(0)).toEqual([]);
    expect(second.orders[1]!.task).toMatchObject({ rank: 1, backup: null });
    badMessage(() => second.round.onGradient(0, answer(second.orders[1]!.task, 5)));
    // The backup slot is free again: an idle rank (2) may take it.
    expect(second.round.backups(50).map((b) => b.rank)).toEqual([2]);
    second.round.onGradient(1, answer(second.orders[1]!.task, 5));
    expect(bits(second.round.result().grad).equals(bits(second.reference))).toBe(true);
  });

  it('ranks the executor names as behind get no task at the start: their shards go to the least-loaded others, the split unchanged', () => {
    const batch = randomBatch(40);
    const round = new StarStep(2, 0, batch, [0, 1, 2, 3], new TaskIds());
    const orders = round.start(new Set([1, 3]));
    expect(orders.map((o) => [o.rank, o.task.shard])).toEqual([[0, 0], [0, 1], [2, 2], [2, 3]]);
    expect(round.waitingFor).toEqual([0, 2]);
    orders.forEach((o) => round.onGradient(o.rank, answer(o.task, 2)));
    const plain = new StarStep(2, 0, batch, [0, 1, 2, 3], new TaskIds());
    plain.start().forEach((o) => plain.onGradient(o.rank, answer(o.task, 2)));
    expect(bits(round.result().grad).equals(bits(plain.result().grad))).toBe(true);
    // Every live rank behind: they keep their own shards.
    const all = new StarStep(2, 0, batch, [0, 1], new TaskIds());
    expect(all.start(new Set([0, 1])).map((o) => o.rank)).toEqual([0, 1]);
  });

  it('a rank behind is neither given a lost rank\'s task nor a backup while another can take it; the step reads the executor\'s set as it changes', () => {
    let now = 0;
    const behind = new Set([2]);
    const round = new StarStep(0, 0, randomBatch(30), [0, 1, 2], new TaskIds(), () => now);
    const [a, b, c] = round.start(behind); // rank 2's shard went to rank 0
    expect([a, b, c].map((o) => o!.rank)).toEqual([0, 1, 0]);
    // Rank 2 has no task (idle) but is behind: rank 1's overdue task waits for rank 0.
    now = 100;
    expect(round.backups(50)).toEqual([]);
    round.onGradient(0, answer(a!.task, 0));
    round.onGradient(0, answer(c!.task, 0));
    expect(round.backups(50).map((o) => o.rank)).toEqual([0]);
    // Rank 0 lost: its backup slot frees and rank 1 keeps its task.
    expect(round.onLost(0)).toEqual([]);
    expect(b!.task).toMatchObject({ rank: 1, backup: null });
    behind.delete(2); // caught up (the executor's call)
    expect(round.backups(50).map((o) => o.rank)).toEqual([2]);
  });

  it('a lost rank\'s task goes to a rank not behind, even one with more tasks', () => {
    const round = new StarStep(0, 0, randomBatch(30), [0, 1, 2], new TaskIds());
    const orders = round.start(new Set([2]));
    // Rank 0 holds two shards, rank 1 one; rank 2 none (behind). Rank 1 lost: rank 0 takes its shard.
    expect(round.onLost(1).map((o) => o.rank)).toEqual([0]);
    expect(orders.map((o) => o.task.rank)).toEqual([0, 0, 0]);
  });
});

describe('StarStep with reduction exact', () => {
  /**
   * A micro-shard's float32 "gradient and loss": depends only on its samples, as gradientSum's does. Every sample
   * writes the same 3 x 512 positions (as every sample of a batch touches every weight), so micro-shards overlap
   * everywhere and a float32 sum of them rounds differently from the exact one (the control below relies on it).
   */
  function microShard(indices: Uint32Array): Float32Array {
    const v = new Float32Array(EXACT_LENGTH);
    for (const idx of indices) {
      for (let i = 0; i < 512; i++) v[(i * 181 + (idx % 3)) % EXACT_LENGTH] += Math.fround(Math.sin(idx * 0.37 + i) * 10 ** ((i % 7) - 4));
      v[EXACT_LOSS] += Math.fround((idx % 7) * 0.1 + 1e-3);
    }
    return v;
  }
  /** A worker's answer: its shard cut into micro-shards from its start, added exactly, encoded. */
  function exactAnswer(task: StepTask, step: number): GradientMessage {
    const acc = new ExactAccumulator(EXACT_LENGTH);
    for (let s = 0; s < task.indices.length; s += MICRO_SHARD) acc.add(microShard(task.indices.subarray(s, s + MICRO_SHARD)));
    return { type: 'gradient', step, task: task.id, count: task.indices.length, lossSum: 0, grad: acc.encode(0, EXACT_LENGTH, 'raw'), computeMs: 1, busyMs: 1 };
  }
  /** One process: the batch's micro-shards into one accumulator. */
  function oneProcess(batch: Uint32Array): Float32Array {
    const acc = new ExactAccumulator(EXACT_LENGTH);
    for (let s = 0; s < batch.length; s += MICRO_SHARD) acc.add(microShard(batch.subarray(s, s + MICRO_SHARD)));
    return acc.toFloat32();
  }
  const positionOf = (batch: Uint32Array, shard: Uint32Array) => shard.byteOffset / 4 - batch.byteOffset / 4;

  it('every shard is a whole number of micro-shards from a micro-shard boundary, also after losses move shards (fresh random cases)', () => {
    for (let t = 0; t < 200; t++) {
      const batch = randomBatch(1 + Math.floor(Math.random() * 200));
      const ranks = Array.from({ length: 1 + Math.floor(Math.random() * 6) }, (_, i) => i);
      const round = new StarStep(0, 0, batch, ranks, new TaskIds(), undefined, 'exact');
      round.start();
      for (const r of ranks.slice(1)) if (Math.random() < 0.5) round.onLost(r);
      let covered = 0;
      for (const task of round.tasks) {
        const at = positionOf(batch, task.indices);
        expect(at % MICRO_SHARD).toBe(0);
        if (at + task.indices.length !== batch.length) expect(task.indices.length % MICRO_SHARD).toBe(0);
        expect(task.rank === null || ranks.includes(task.rank)).toBe(true);
        covered += task.indices.length;
      }
      expect(covered).toBe(batch.length);
      const counts = round.tasks.map((x) => Math.ceil(x.indices.length / MICRO_SHARD));
      expect(Math.max(...counts) - Math.min(...counts)).toBeLessThanOrEqual(1);
    }
  });

  it('the result is one process\'s bits for 1-6 workers, with losses and reassignment, in any arrival order', () => {
    for (const size of [64, 40, 200, 7]) {
      const batch = randomBatch(size);
      const expected = oneProcess(batch);
      for (let n = 1; n <= 6; n++) {
        const ranks = Array.from({ length: n }, (_, i) => i);
        const round = new StarStep(3, 0, batch, ranks, new TaskIds(), undefined, 'exact');
        round.start();
        if (n > 1) round.onLost(n - 1); // its shard moves, whole, to another rank
        const order = [...round.tasks].sort(() => Math.random() - 0.5);
        for (const task of order) round.onGradient(task.rank as number, exactAnswer(task, 3));
        const r = round.result();
        expect(r.grad.length).toBe(EXACT_LOSS);
        expect(bits(r.grad).equals(bits(expected.subarray(0, EXACT_LOSS))), `batch ${size}, ${n} workers`).toBe(true);
        expect(r.lossSum).toBe(expected[EXACT_LOSS]);
      }
    }
  });

  it('control: float32 sums of the same shards in rank order differ from the exact result (the test above can fail)', () => {
    const batch = randomBatch(64);
    const round = new StarStep(0, 0, batch, [0, 1, 2], new TaskIds(), undefined, 'exact');
    const plain = new Float32Array(EXACT_LENGTH);
    for (const task of round.tasks) {
      for (let s = 0; s < task.indices.length; s += MICRO_SHARD) {
        const v = microShard(task.indices.subarray(s, s + MICRO_SHARD));
        for (let i = 0; i < EXACT_LENGTH; i++) plain[i] = Math.fround(plain[i]! + v[i]!);
      }
    }
    expect(bits(plain).equals(bits(oneProcess(batch)))).toBe(false);
  });

  it('an answer that is not an encoding of [0, EXACT_LENGTH) is a protocol violation and adds nothing', () => {
    const batch = randomBatch(32);
    const round = new StarStep(0, 0, batch, [0, 1], new TaskIds(), undefined, 'exact');
    round.start();
    const [a, b] = round.tasks;
    const good = exactAnswer(a!, 0);
    badMessage(() => round.onGradient(0, { ...good, grad: new Uint8Array(40).fill(3) }));
    badMessage(() => round.onGradient(0, { ...good, grad: new ExactAccumulator(EXACT_LENGTH).encode(0, 10) }));
    badMessage(() => round.onGradient(0, { ...good, grad: new Float32Array(EXACT_LOSS) }));
    expect(round.onGradient(0, good)).toBe('accepted');
    expect(round.onGradient(1, exactAnswer(b!, 0))).toBe('accepted');
    expect(bits(round.result().grad).equals(bits(oneProcess(batch).subarray(0, EXACT_LOSS)))).toBe(true);
  });
});
