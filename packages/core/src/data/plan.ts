// The training plan: which samples every optimizer step of a run uses, and who in a group of
// workers takes which of them. The coordinator and every worker derive it from the same few
// numbers, so workers draw their own shards and no step waits for an order.
import { epochPermutation, globalBatch, stepsPerEpoch } from './sampler.js';
import { shardBatch } from './shard.js';

export interface PlanSpec {
  seed: number;
  batchSize: number;
  /** Samples in the training split. */
  trainCount: number;
}

/** Step `step` (0-based, counted over the whole run): its epoch and its global batch. */
export interface PlannedStep {
  step: number;
  epoch: number;
  /** Indices into the training split, in the seeded order (a view; copy before keeping it). */
  batch: Uint32Array;
}

/**
 * Epoch e visits the training split in permutation(seed, e), cut into consecutive batches of
 * `batchSize` (the last one of an epoch may be partial). Keeps the permutation of the epoch in use.
 */
export class TrainingPlan {
  readonly perEpoch: number;
  private epoch = -1;
  private perm: Uint32Array | null = null;

  constructor(readonly spec: PlanSpec) {
    this.perEpoch = stepsPerEpoch(spec.trainCount, spec.batchSize);
  }

  /** The epoch (0-based) that step `step` belongs to. */
  epochOf(step: number): number {
    return Math.floor(step / this.perEpoch);
  }

  at(step: number): PlannedStep {
    if (!Number.isInteger(step) || step < 0) throw new RangeError(`TrainingPlan: step must be an integer >= 0, got ${step}`);
    const epoch = this.epochOf(step);
    if (epoch !== this.epoch || !this.perm) {
      this.perm = epochPermutation(this.spec.seed, epoch, this.spec.trainCount);
      this.epoch = epoch;
    }
    return { step, epoch, batch: globalBatch(this.perm, step - epoch * this.perEpoch, this.spec.batchSize) };
  }

  /**
   * Member `position`'s shard of step `step` in a group of `size` (shardBatch: sizes within one
   * `unit`, each a whole number of `unit`-sample micro-shards; unit 1 for the fast reduction).
   */
  shardOf(step: number, position: number, size: number, unit = 1): Uint32Array {
    return shardBatch(this.at(step).batch, size, unit)[position]!;
  }
}
