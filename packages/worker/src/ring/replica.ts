/**
 * A worker's replica in ring mode: the weights and the Adam state, which every member updates with
 * the same reduced gradient so that all stay bitwise identical. Before each step it keeps a copy of
 * what it had, because a ring can fail after the allreduce finished on this member but not on all:
 * the step is then not committed, and the coordinator's resume count says to roll it back.
 */
import { Adam, replicaHash, type ReplicaMessage } from '@ddp/core';

export interface ReplicaSnapshot {
  steps: number;
  hash: string;
  params: Float32Array;
  adamM?: Float32Array;
  adamV?: Float32Array;
}

export class Replica {
  readonly params: Float32Array;
  private readonly adam: Adam;
  /** The state before the last applied step (null until a step is applied). */
  private before: { params: Float32Array; adam: ReturnType<Adam['state']> } | null = null;

  constructor(msg: ReplicaMessage) {
    this.params = msg.params.slice();
    this.adam = new Adam(this.params.length, { lr: msg.lr });
    const zeros = () => new Float32Array(this.params.length);
    this.adam.load({ t: msg.steps, m: msg.adamM ?? zeros(), v: msg.adamV ?? zeros() });
  }

  /** Optimizer steps applied so far. */
  get steps(): number {
    return this.adam.steps;
  }

  /**
   * Applies one step: `sum / batchSize` is the gradient of the mean loss. `sum` is consumed (divided
   * in place). Returns the hash of the new weights.
   */
  apply(sum: Float32Array, batchSize: number): string {
    this.before = { params: this.params.slice(), adam: this.adam.state() };
    for (let i = 0; i < sum.length; i++) sum[i] /= batchSize;
    this.adam.step(this.params, sum);
    return replicaHash(this.params);
  }

  /**
   * Brings the replica to `resume` steps: nothing to do when it is there, the copy is restored when
   * it applied exactly one step more. Anything else cannot happen in a correct run: throws.
   */
  rollTo(resume: number): void {
    if (this.steps === resume) return;
    if (this.steps === resume + 1 && this.before) {
      this.params.set(this.before.params);
      this.adam.load(this.before.adam);
      this.before = null;
      return;
    }
    throw new Error(`the replica is at step ${this.steps} and cannot resume at step ${resume}`);
  }

  snapshot(withOptimizer: boolean): ReplicaSnapshot {
    const out: ReplicaSnapshot = { steps: this.steps, hash: replicaHash(this.params), params: this.params.slice() };
    if (withOptimizer) {
      const s = this.adam.state();
      out.adamM = s.m;
      out.adamV = s.v;
    }
    return out;
  }
}
