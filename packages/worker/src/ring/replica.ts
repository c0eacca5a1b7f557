/**
 * A worker's replica in ring mode: the weights and the Adam state, which every member updates with
 * the same reduced gradient so that all stay bitwise identical.
 *
 * A ring can fail after the allreduce finished on this member but not on all: the step is then not
 * committed, and the coordinator's resume count says to roll it back. So the replica keeps two sets
 * of buffers: a step reads the current set and writes the other, then they swap; rolling back swaps
 * them again. No copy per step, and the division by the batch size, the finiteness check and Adam
 * run in one pass.
 *
 * The arithmetic is exactly core's Adam (optim/adam.ts): the mean gradient rounded to float32, the
 * moments rounded to float32 as they are stored, the update computed in double from the stored
 * moments. replica.test.ts holds it to core's Adam bit for bit.
 */
import { replicaHash, type ReplicaMessage } from '@ddp/core';

export interface ReplicaSnapshot {
  steps: number;
  hash: string;
  params: Float32Array;
  adamM?: Float32Array;
  adamV?: Float32Array;
}

interface Buffers {
  params: Float32Array;
  m: Float32Array;
  v: Float32Array;
}

// Keras' and core Adam's defaults.
const BETA1 = 0.9;
const BETA2 = 0.999;
const EPSILON = 1e-7;

/** The reduced gradient holds a value that is not finite: nothing was applied. */
export class NonFiniteGradient extends Error {
  constructor(
    readonly index: number,
    readonly value: number,
  ) {
    super(`the reduced gradient sum is ${value} at index ${index}`);
  }
}

export class Replica {
  private cur: Buffers;
  private alt: Buffers;
  private t: number;
  /** True while `alt` holds the state before the last applied step. */
  private canRollBack = false;

  constructor(
    msg: ReplicaMessage,
    readonly lr = msg.lr,
  ) {
    const n = msg.params.length;
    this.cur = { params: msg.params.slice(), m: msg.adamM?.slice() ?? new Float32Array(n), v: msg.adamV?.slice() ?? new Float32Array(n) };
    this.alt = { params: new Float32Array(n), m: new Float32Array(n), v: new Float32Array(n) };
    this.t = msg.steps;
  }

  /** The current weights (read-only for callers: a view of the replica's own buffer). */
  get params(): Float32Array {
    return this.cur.params;
  }

  /** Optimizer steps applied so far. */
  get steps(): number {
    return this.t;
  }

  /**
   * Applies one step: `sum / batchSize` is the gradient of the mean loss. Returns the hash of the
   * new weights; throws NonFiniteGradient (and applies nothing) if the sum holds NaN or Infinity.
   */
  apply(sum: Float32Array, batchSize: number): string {
    const { params, m, v } = this.cur;
    const out = this.alt;
    if (sum.length !== params.length) throw new RangeError(`Replica: gradient of ${sum.length} values for ${params.length} weights`);
    const t = this.t + 1;
    const lrT = (this.lr * Math.sqrt(1 - BETA2 ** t)) / (1 - BETA1 ** t);
    const c1 = 1 - BETA1;
    const c2 = 1 - BETA2;
    const np = out.params;
    const nm = out.m;
    const nv = out.v;
    let poison = 0; // stays 0 while every value is finite (x - x is NaN for NaN and Infinity)
    for (let i = 0; i < params.length; i++) {
      const g = Math.fround(sum[i]! / batchSize);
      poison += g - g;
      const mi = Math.fround(BETA1 * m[i]! + c1 * g);
      const vi = Math.fround(BETA2 * v[i]! + c2 * g * g);
      nm[i] = mi;
      nv[i] = vi;
      np[i] = params[i]! - (lrT * mi) / (Math.sqrt(vi) + EPSILON);
    }
    if (poison !== 0) {
      const bad = sum.findIndex((x) => !Number.isFinite(x));
      throw new NonFiniteGradient(bad, sum[bad]!);
    }
    this.alt = this.cur;
    this.cur = out;
    this.t = t;
    this.canRollBack = true;
    return replicaHash(this.cur.params);
  }

  /**
   * Brings the replica to `resume` steps: nothing to do when it is there; the state before the last
   * step comes back when it applied exactly one more. Anything else cannot happen in a correct run: throws.
   */
  rollTo(resume: number): void {
    if (this.t === resume) return;
    if (this.t === resume + 1 && this.canRollBack) {
      [this.cur, this.alt] = [this.alt, this.cur];
      this.t = resume;
      this.canRollBack = false;
      return;
    }
    throw new Error(`the replica is at step ${this.t} and cannot resume at step ${resume}`);
  }

  snapshot(withOptimizer: boolean): ReplicaSnapshot {
    const out: ReplicaSnapshot = { steps: this.t, hash: replicaHash(this.cur.params), params: this.cur.params.slice() };
    if (withOptimizer) {
      out.adamM = this.cur.m.slice();
      out.adamV = this.cur.v.slice();
    }
    return out;
  }
}
