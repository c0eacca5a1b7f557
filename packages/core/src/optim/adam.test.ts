import { describe, expect, it } from 'vitest';
import { Adam } from './adam.js';

// Reference: the textbook Adam (Kingma & Ba) with bias-corrected m and v, in float64. Keras' form
// (epsilon on sqrt(v), correction folded into lr) differs from it only through epsilon's placement,
// so with epsilon = 0 both must agree to float32 rounding.
function referenceAdam(w: number[], grads: number[][], lr: number, b1: number, b2: number): number[] {
  const m = w.map(() => 0);
  const v = w.map(() => 0);
  const out = [...w];
  grads.forEach((g, k) => {
    const t = k + 1;
    for (let i = 0; i < w.length; i++) {
      m[i] = b1 * m[i] + (1 - b1) * g[i];
      v[i] = b2 * v[i] + (1 - b2) * g[i] * g[i];
      const mh = m[i] / (1 - b1 ** t);
      const vh = v[i] / (1 - b2 ** t);
      out[i] -= (lr * mh) / Math.sqrt(vh);
    }
  });
  return out;
}

describe('Adam', () => {
  it('matches the textbook update over several steps on random data', () => {
    const n = 257;
    const w0 = Array.from({ length: n }, () => Math.random() * 2 - 1);
    const grads = Array.from({ length: 5 }, () => Array.from({ length: n }, () => Math.random() * 2 - 1));
    const adam = new Adam(n, { lr: 1e-2, epsilon: 0 });
    const w = Float32Array.from(w0);
    for (const g of grads) adam.step(w, Float32Array.from(g));
    const ref = referenceAdam(w0, grads, 1e-2, 0.9, 0.999);
    for (let i = 0; i < n; i++) expect(Math.abs(w[i] - ref[i])).toBeLessThan(1e-5);
    expect(adam.steps).toBe(5);
  });

  it('first step moves each weight by lr against the sign of its gradient', () => {
    const adam = new Adam(3);
    const w = new Float32Array([0, 0, 0]);
    adam.step(w, new Float32Array([2, -0.5, 0]));
    expect(w[0]).toBeCloseTo(-1e-3, 6);
    expect(w[1]).toBeCloseTo(1e-3, 6);
    expect(w[2]).toBe(0);
  });

  it('is deterministic and restorable from its state', () => {
    const g = Float32Array.from({ length: 100 }, (_, i) => Math.sin(i));
    const a = new Adam(100);
    const wa = new Float32Array(100);
    a.step(wa, g);
    const b = new Adam(100);
    b.load(a.state());
    const wb = wa.slice();
    a.step(wa, g);
    b.step(wb, g);
    expect(Buffer.from(wa.buffer).equals(Buffer.from(wb.buffer))).toBe(true);
  });

  it('rejects bad options and size mismatches', () => {
    expect(() => new Adam(3, { lr: -1 })).toThrow(RangeError);
    expect(() => new Adam(3, { beta1: 1 })).toThrow(/beta1/);
    expect(() => new Adam(3).step(new Float32Array(3), new Float32Array(2))).toThrow(/expected vectors of 3/);
  });
});
