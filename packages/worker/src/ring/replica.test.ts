import { randomBytes } from 'node:crypto';
import { Adam, MSG, replicaHash } from '@ddp/core';
import { describe, expect, it } from 'vitest';
import { NonFiniteGradient, Replica } from './replica.js';

/** Gradient-like sums over many magnitudes and both signs. */
function randomSum(n: number): Float32Array {
  const u = new Uint32Array(randomBytes(4 * n).buffer);
  return Float32Array.from(u, (x, i) => ((x / 2 ** 32 - 0.5) * 10 ** ((i % 9) - 6)));
}

const bits = (a: Float32Array) => Buffer.from(a.buffer, a.byteOffset, a.byteLength);

describe('Replica', () => {
  it('applies steps bit for bit as core Adam on the mean gradient (sum / batch size, rounded to float32)', () => {
    const n = 5000;
    const params = randomSum(n);
    const lr = 0.001 + (randomBytes(1)[0]! % 5) * 1e-4;
    const replica = new Replica({ type: MSG.REPLICA, steps: 0, params, lr });
    const ref = params.slice();
    const adam = new Adam(n, { lr });
    for (let step = 0; step < 12; step++) {
      const sum = randomSum(n);
      const batch = 1 + (randomBytes(1)[0]! % 100);
      const mean = Float32Array.from(sum, (x) => x / batch);
      adam.step(ref, mean);
      replica.apply(sum.slice(), batch);
      expect(bits(replica.params).equals(bits(ref))).toBe(true);
      expect(replica.hash()).toBe(replicaHash(ref));
      expect(replica.steps).toBe(step + 1);
    }
    const s = replica.snapshot(12, true);
    expect(s.steps).toBe(12);
    expect(s.hash).toBe(replicaHash(ref));
    expect(bits(s.params).equals(bits(ref))).toBe(true);
    expect(bits(s.adamM!).equals(bits(adam.state().m))).toBe(true);
    expect(bits(s.adamV!).equals(bits(adam.state().v))).toBe(true);
    // A snapshot is a copy: the replica's next step does not change it.
    replica.apply(randomSum(n), 3);
    expect(bits(s.params).equals(bits(ref))).toBe(true);
  });

  it('continues from a replica with Adam state exactly as the Adam it came from', () => {
    const n = 777;
    const ref = randomSum(n);
    const adam = new Adam(n, { lr: 0.002 });
    for (let k = 0; k < 3; k++) adam.step(ref, randomSum(n));
    const st = adam.state();
    const replica = new Replica({ type: MSG.REPLICA, steps: st.t, params: ref.slice(), lr: 0.002, adamM: st.m, adamV: st.v });
    const sum = randomSum(n);
    adam.step(ref, Float32Array.from(sum, (x) => x / 3));
    replica.apply(sum, 3);
    expect(bits(replica.params).equals(bits(ref))).toBe(true);
    expect(replica.steps).toBe(4);
  });

  it('rolls back exactly one uncommitted step, and refuses anything else', () => {
    const replica = new Replica({ type: MSG.REPLICA, steps: 0, params: randomSum(100), lr: 0.001 });
    replica.apply(randomSum(100), 8);
    const after1 = replica.snapshot(1, true);
    replica.apply(randomSum(100), 8);
    expect(replica.hash()).not.toBe(after1.hash);
    replica.rollTo(1);
    expect(replica.steps).toBe(1);
    expect(replica.hash()).toBe(after1.hash);
    const back = replica.snapshot(1, true);
    expect(back.steps).toBe(1);
    expect(bits(back.params).equals(bits(after1.params))).toBe(true);
    expect(bits(back.adamM!).equals(bits(after1.adamM!))).toBe(true);
    expect(bits(back.adamV!).equals(bits(after1.adamV!))).toBe(true);
    replica.rollTo(1); // already there
    expect(() => replica.rollTo(0)).toThrow('the replica is at step 1 and cannot resume at step 0');
    // The step redone with the same gradient gives the same weights again.
    const sum = randomSum(100);
    replica.apply(sum.slice(), 8);
    const h = replica.hash();
    replica.rollTo(1);
    replica.apply(sum.slice(), 8);
    expect(replica.hash()).toBe(h);
    // Two steps back is beyond reach.
    replica.apply(randomSum(100), 8);
    expect(() => replica.rollTo(1)).toThrow('the replica is at step 3 and cannot resume at step 1');
  });

  it('snapshot gives the current state or the one before the last step, with or without Adam\'s moments, and nothing older', () => {
    const replica = new Replica({ type: MSG.REPLICA, steps: 4, params: randomSum(64), lr: 0.001 });
    // Fresh from the coordinator: only the current state.
    expect(replica.snapshot(4, false)).toEqual({ steps: 4, hash: replica.hash(), params: replica.params });
    expect(() => replica.snapshot(3, false)).toThrow('asked for the weights after 3 step(s), but the replica is at step 4');
    const at4 = replica.snapshot(4, true);
    expect(at4.adamM).toEqual(new Float32Array(64));
    replica.apply(randomSum(64), 2);
    const prev = replica.snapshot(4, true);
    expect(prev).toEqual(at4);
    expect(replica.snapshot(5, false).hash).toBe(replica.hash());
    expect(replica.snapshot(5, false).hash).not.toBe(at4.hash);
    expect(() => replica.snapshot(6, false)).toThrow('asked for the weights after 6 step(s), but the replica is at step 5');
    replica.apply(randomSum(64), 2);
    expect(() => replica.snapshot(4, false)).toThrow('asked for the weights after 4 step(s), but the replica is at step 6');
    // After a roll-back the undone step's state is gone: only the current one remains.
    replica.rollTo(5);
    expect(() => replica.snapshot(4, false)).toThrow('asked for the weights after 4 step(s), but the replica is at step 5');
  });

  it('a non-finite sum applies nothing, and the state it overwrote is never handed out', () => {
    const replica = new Replica({ type: MSG.REPLICA, steps: 0, params: randomSum(50), lr: 0.001 });
    replica.apply(randomSum(50), 4);
    const before = replica.snapshot(1, true);
    const previous = replica.snapshot(0, true);
    const sum = randomSum(50);
    sum[17] = Infinity;
    expect(() => replica.apply(sum, 4)).toThrow(new NonFiniteGradient(17, Infinity));
    sum[17] = NaN;
    expect(() => replica.apply(sum, 4)).toThrow(NonFiniteGradient);
    expect(replica.steps).toBe(1);
    expect(replica.snapshot(1, true)).toEqual(before);
    expect(replica.hash()).toBe(before.hash);
    // The failed pass wrote the buffers that held the state before step 1: that state is refused, never handed out wrong.
    expect(previous.steps).toBe(0);
    expect(() => replica.snapshot(0, true)).toThrow('asked for the weights after 0 step(s), but the replica is at step 1');
    expect(() => replica.rollTo(0)).toThrow('the replica is at step 1 and cannot resume at step 0');
    // And the replica goes on from where it was.
    const ok = randomSum(50);
    replica.apply(ok, 4);
    expect(replica.steps).toBe(2);
    expect(replica.snapshot(1, true)).toEqual(before);
  });
});

describe('Replica, a step applied in chunks', () => {
  it('applied range by range in any order, it is bitwise the step applied whole', () => {
    const n = 3001;
    const params = randomSum(n);
    const whole = new Replica({ type: MSG.REPLICA, steps: 0, params, lr: 0.001 });
    const chunked = new Replica({ type: MSG.REPLICA, steps: 0, params, lr: 0.001 });
    for (let step = 0; step < 5; step++) {
      const sum = randomSum(n);
      whole.apply(sum, 64);
      const update = chunked.begin(64);
      for (const [a, b] of [[1500, 3001], [0, 700], [700, 1500]] as const) update.apply(sum, a, b);
      update.finish(sum);
      expect(bits(chunked.params).equals(bits(whole.params))).toBe(true);
    }
    expect(chunked.snapshot(5, true)).toEqual(whole.snapshot(5, true));
  });

  it('a step that applied nothing yet leaves the roll-back possible; once a chunk is applied it is not', () => {
    const n = 100;
    const r = new Replica({ type: MSG.REPLICA, steps: 0, params: randomSum(n), lr: 0.001 });
    r.apply(randomSum(n), 8);
    const before = r.snapshot(0, false);
    r.begin(8); // its allreduce failed before any chunk was final
    expect(r.snapshot(0, false)).toEqual(before);
    r.rollTo(0);
    expect(r.steps).toBe(0);
    r.apply(randomSum(n), 8);
    r.begin(8).apply(randomSum(n), 0, 10); // one chunk of the next step overwrote the older state
    expect(() => r.rollTo(0)).toThrow(/cannot resume at step 0/);
    expect(r.steps).toBe(1);
  });

  it('finishing a step that did not cover every value is refused', () => {
    const r = new Replica({ type: MSG.REPLICA, steps: 0, params: randomSum(10), lr: 0.001 });
    const sum = randomSum(10);
    const u = r.begin(4);
    u.apply(sum, 0, 5);
    expect(() => u.finish(sum)).toThrow(/applied to 5 of 10 values/);
  });
});
