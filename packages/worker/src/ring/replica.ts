/**
 * A worker's replica in ring mode: the weights and the Adam state, which every member updates with
 * the same reduced gradient so that all stay bitwise identical.
 *
 * A ring can fail after the allreduce finished on this member but not on all: the step is then not
 * committed, and the coordinator's resume count says to roll it back. So the replica keeps two sets
 * of buffers: a step reads the current set and writes the other (core's adamStep, the one Adam
 * update of every mode), then they swap; rolling back swaps them again. No copy per step.
 */
import { NonFiniteGradient, adamHyper, adamStep, replicaHash, throwNonFinite, type AdamBuffers, type AdamHyper, type ReplicaMessage } from '@ddp/core';

export { NonFiniteGradient };

export interface ReplicaSnapshot {
  steps: number;
  hash: string;
  params: Float32Array;
  adamM?: Float32Array;
  adamV?: Float32Array;
}

export class Replica {
  private cur: AdamBuffers;
  private alt: AdamBuffers;
  private t: number;
  private readonly hyper: AdamHyper;
  /** True while `alt` holds the state before the last applied step. */
  private canRollBack = false;

  constructor(msg: ReplicaMessage) {
    const n = msg.params.length;
    this.hyper = adamHyper({ lr: msg.lr });
    this.cur = { params: msg.params.slice(), m: msg.adamM?.slice() ?? new Float32Array(n), v: msg.adamV?.slice() ?? new Float32Array(n) };
    this.alt = { params: new Float32Array(n), m: new Float32Array(n), v: new Float32Array(n) };
    this.t = msg.steps;
  }

  get lr(): number {
    return this.hyper.lr;
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
   * Applies one step: `sum / batchSize` is the gradient of the mean loss. Throws NonFiniteGradient
   * (and applies nothing) if the sum holds NaN or Infinity.
   */
  apply(sum: Float32Array, batchSize: number): void {
    const step = this.begin(batchSize);
    step.apply(sum, 0, sum.length);
    step.finish(sum);
  }

  /**
   * A step applied in ranges, as the allreduce completes them: apply(sum, start, end) for ranges
   * that together cover the vector once, then finish(sum), which commits the step or throws
   * NonFiniteGradient (and applies nothing) if a value of the sum was not finite.
   */
  begin(batchSize: number): { apply(sum: Float32Array, start: number, end: number): void; finish(sum: Float32Array): void } {
    const from = this.cur;
    const to = this.alt;
    const t = this.t + 1;
    const n = from.params.length;
    let covered = 0;
    let finite = true;
    return {
      apply: (sum, start, end) => {
        if (sum.length !== n) throw new RangeError(`Replica: gradient of ${sum.length} values for ${n} weights`);
        // The state before the last step is being overwritten: from here on it cannot come back.
        // (Until the first range is applied, a step that never completes leaves it intact.)
        this.canRollBack = false;
        finite = adamStep(from, to, sum, batchSize, t, this.hyper, start, end) && finite;
        covered += end - start;
      },
      finish: (sum) => {
        if (covered !== n) throw new Error(`Replica: a step applied to ${covered} of ${n} values`);
        if (!finite) throwNonFinite(sum);
        this.alt = from;
        this.cur = to;
        this.t = t;
        this.canRollBack = true;
      },
    };
  }

  hash(): string {
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

  /** The state after `steps` steps: the current one, or the one before the last step. Throws for any other. */
  snapshot(steps: number, withOptimizer: boolean): ReplicaSnapshot {
    const b = this.t === steps ? this.cur : this.t === steps + 1 && this.canRollBack ? this.alt : null;
    if (!b) throw new Error(`asked for the weights after ${steps} step(s), but the replica is at step ${this.t}`);
    const out: ReplicaSnapshot = { steps, hash: replicaHash(b.params), params: b.params.slice() };
    if (withOptimizer) {
      out.adamM = b.m.slice();
      out.adamV = b.v.slice();
    }
    return out;
  }
}
