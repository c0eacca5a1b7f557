import { randomBytes } from 'node:crypto';
import { ProtocolError, type RingResultMessage, type RingWorkMessage } from '@ddp/core';
import { describe, expect, it } from 'vitest';
import { ReplicaMismatchError, RingStep } from './ring-step.js';
import { TaskIds } from './step-round.js';

const randomBatch = (n: number) => new Uint32Array(randomBytes(4 * n).buffer).map((x) => x % 60000);

function result(msg: RingWorkMessage, over: Partial<RingResultMessage> = {}): RingResultMessage {
  return {
    type: 'ring_result', generation: msg.generation, step: msg.step, task: msg.task, count: msg.indices.length, lossSum: msg.indices.length * 0.5,
    hash: 'aaaaaaaaaaaaaaaa', bytesSent: 1000, prepareMs: 0, computeMs: 30, allreduceMs: 2, optimizerMs: 1, busyMs: 33, aheadMs: 0, cycleMs: 0, ...over,
  };
}

/** A clock the test moves by hand. */
function manualClock() {
  let now = 1000;
  return { clock: () => now, advance: (ms: number) => (now += ms) };
}

describe('RingStep', () => {
  it('shards by ring position, sends each member its shard of the next batch, adds the losses', () => {
    const batch = randomBatch(64);
    const next = randomBatch(64);
    const step = new RingStep(3, 0, 5, batch, [4, 1, 7], new TaskIds());
    const orders = step.orders(64, next);
    expect(orders.map((o) => o.rank)).toEqual([4, 1, 7]);
    expect(orders.map((o) => o.msg.indices.length)).toEqual([22, 21, 21]);
    expect(orders.flatMap((o) => Array.from(o.msg.indices))).toEqual(Array.from(batch));
    expect(orders.flatMap((o) => Array.from(o.msg.next!))).toEqual(Array.from(next));
    expect(orders.every((o) => o.msg.generation === 5 && o.msg.step === 3 && o.msg.batchSize === 64)).toBe(true);
    for (const o of [...orders].reverse()) step.onResult(o.rank, result(o.msg));
    expect(step.complete).toBe(true);
    const r = step.result();
    expect(r.lossSum).toBe(32);
    expect(r.hash).toBe('aaaaaaaaaaaaaaaa');
    expect(r.hashes).toEqual([{ rank: 4, hash: r.hash }, { rank: 1, hash: r.hash }, { rank: 7, hash: r.hash }]);
  });

  it('replicas that disagree: a ReplicaMismatchError naming the ranks of each hash', () => {
    const step = new RingStep(9, 0, 0, randomBatch(10), [0, 1, 2], new TaskIds());
    const orders = step.orders(10);
    step.onResult(0, result(orders[0]!.msg, { hash: '1111111111111111' }));
    step.onResult(1, result(orders[1]!.msg, { hash: '2222222222222222' }));
    step.onResult(2, result(orders[2]!.msg, { hash: '1111111111111111' }));
    let err: unknown;
    try {
      step.result();
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(ReplicaMismatchError);
    expect((err as Error).message).toBe(
      "Mismatched replicas after step 10: the workers' weights differ (ranks 0, 2: 1111111111111111; rank 1: 2222222222222222); they must apply bitwise-identical steps",
    );
  });

  it('refuses results that are not the expected ones', () => {
    const step = new RingStep(2, 0, 3, randomBatch(8), [0, 1], new TaskIds());
    const [a, b] = step.orders(8).map((o) => o.msg);
    const refused = (fn: () => void, pattern: RegExp) => {
      let err: unknown;
      try {
        fn();
      } catch (e) {
        err = e;
      }
      expect(err).toBeInstanceOf(ProtocolError);
      expect((err as ProtocolError).message).toMatch(pattern);
    };
    refused(() => step.onResult(0, result(a!, { generation: 2 })), /for step 3 of ring 2, but step 3 of ring 3 is running/);
    refused(() => step.onResult(1, result(a!)), /task \d+ of step 3 is not one rank 1 holds/);
    refused(() => step.onResult(0, result(a!, { count: 3 })), /has 4 samples, the answer counts 3/);
    step.onResult(0, result(a!));
    refused(() => step.onResult(0, result(a!)), /is not one rank 0 holds/);
    expect(step.waitingFor).toEqual([1]);
    step.onResult(1, result(b!));
    expect(step.complete).toBe(true);
  });

  it('the timing phases of each member add up to the step as the coordinator saw it', () => {
    const { clock, advance } = manualClock();
    const step = new RingStep(0, 0, 0, randomBatch(64), [0, 1], new TaskIds(), clock);
    const [a, b] = step.orders(64).map((o) => o.msg);
    advance(40);
    // rank 0 waited 3 ms in its allreduce for rank 1, which came late; both answered 40 and 41 ms after dispatch.
    step.onResult(0, result(a!, { prepareMs: 0.5, computeMs: 30, allreduceMs: 5, optimizerMs: 1, busyMs: 37 }));
    advance(1);
    step.onResult(1, result(b!, { prepareMs: 0.5, computeMs: 33, allreduceMs: 2, optimizerMs: 1, busyMs: 37 }));
    const t = step.result().timing;
    expect(t.allreduce).toBe(2);
    const total = t.prepare + t.compute + t.allreduce + t.waiting + t.optimizer + t.coordinator;
    expect(total).toBeCloseTo(41, 9); // the round lasted 41 ms for every member
    expect(t.waiting).toBeCloseTo((3 + 1) / 2, 9);
  });

  it('in steady state the phases add up to each member\'s cycle, with the gradient computed ahead', () => {
    const step = new RingStep(5, 0, 0, randomBatch(64), [0, 1], new TaskIds());
    const [a, b] = step.orders(64).map((o) => o.msg);
    // Both computed their shard (30 ms) before the work came; rank 1 then idled 0.5 ms, rank 0 1.5 ms.
    step.onResult(0, result(a!, { computeMs: 30, aheadMs: 30, allreduceMs: 3, optimizerMs: 1, busyMs: 4.2, cycleMs: 35.5 }));
    step.onResult(1, result(b!, { computeMs: 30, aheadMs: 30, allreduceMs: 2, optimizerMs: 1, busyMs: 3.2, cycleMs: 33.5 }));
    const r = step.result();
    expect(r.fromCycles).toBe(true);
    const t = r.timing;
    const total = t.prepare + t.compute + t.allreduce + t.waiting + t.optimizer + t.coordinator;
    expect(total).toBeCloseTo((35.5 + 33.5) / 2, 9);
    expect(t.coordinator).toBeCloseTo((1.5 + 0.5) / 2, 9);
    expect(t.waiting).toBeCloseTo(0.5, 9);
  });
});
