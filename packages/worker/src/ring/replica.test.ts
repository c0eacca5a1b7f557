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
      const hash = replica.apply(sum.slice(), batch);
      expect(bits(replica.params).equals(bits(ref))).toBe(true);
      expect(hash).toBe(replicaHash(ref));
    }
    const s = replica.snapshot(true);
    expect(s.steps).toBe(12);
    expect(bits(s.adamM!).equals(bits(adam.state().m))).toBe(true);
    expect(bits(s.adamV!).equals(bits(adam.state().v))).toBe(true);
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
    const after1 = replica.snapshot(true);
    replica.apply(randomSum(100), 8);
    replica.rollTo(1);
    const back = replica.snapshot(true);
    expect(back.steps).toBe(1);
    expect(back.hash).toBe(after1.hash);
    expect(bits(back.adamV!).equals(bits(after1.adamV!))).toBe(true);
    replica.rollTo(1); // already there
    expect(() => replica.rollTo(0)).toThrow('the replica is at step 1 and cannot resume at step 0');
    // The step redone with the same gradient gives the same weights again.
    const sum = randomSum(100);
    const h = replica.apply(sum.slice(), 8);
    replica.rollTo(1);
    expect(replica.apply(sum.slice(), 8)).toBe(h);
  });

  it('a non-finite sum applies nothing', () => {
    const replica = new Replica({ type: MSG.REPLICA, steps: 0, params: randomSum(50), lr: 0.001 });
    const before = replica.snapshot(true);
    const sum = randomSum(50);
    sum[17] = Infinity;
    expect(() => replica.apply(sum, 4)).toThrow(NonFiniteGradient);
    expect(replica.snapshot(true)).toEqual(before);
  });
});
