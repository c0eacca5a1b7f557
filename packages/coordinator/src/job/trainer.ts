/**
 * The one interface between the job loop (run-job.ts) and the way steps are carried out. One
 * process (local-trainer.ts), star mode (star/star-trainer.ts: the coordinator adds the workers'
 * gradients and applies Adam) and ring mode (ring/ring-trainer.ts: the workers hold replicas, draw
 * their own shards and reduce among themselves) are its implementations; the loop asks a trainer to
 * run up to the next boundary (an evaluation, the end) and for the weights when it needs them.
 */
import type { Evaluation, RankTiming, Split } from '@ddp/core';

export interface StepReport {
  /** Global step number, from 0. */
  step: number;
  epoch: number;
  /** Sum over the global batch of per-sample losses, and the batch's size. */
  lossSum: number;
  samples: number;
  /** Milliseconds per phase of this step, where the trainer measures them. */
  timing?: Record<string, number>;
  /** Mean bytes of gradient each worker sent for this step, where the trainer counts them. */
  gradientBytes?: number;
  /**
   * Per worker, in ms, where the trainer measures them: compute (the gradient), allreduce (the
   * exchange, waiting excluded), waiting (idle for slower workers). In rank order.
   */
  ranks?: RankTiming[];
}

// Everything a run needs to continue (weights, Adam's moments, steps): core's checkpoint state.
import type { TrainingState } from '@ddp/core';
export type { TrainingState };

/** The weights after the steps applied so far, and (ring mode) every replica's hash of them. */
export interface TrainerParams {
  params: Float32Array;
  hash?: string;
  replicas?: Array<{ rank: number; hash: string }>;
}

export interface Trainer {
  /** 'local', 'star' or 'ring', for the start event. */
  readonly mode: string;
  /** Worker processes (0 for one process). */
  readonly workers: number;
  /** Optimizer steps applied so far. */
  readonly steps: number;
  /** Takes the state to start from (step 0's weights, or a checkpoint's state) and Adam's learning rate. */
  start(state: TrainingState, optim: { lr: number }): Promise<void>;
  /**
   * Runs the steps of the plan from `steps` up to `until` (exclusive), calling `onStep` for each as
   * it is applied, in order. When `signal` aborts it stops after the step(s) in hand and resolves.
   * Rejects with a RunError when the run cannot go on.
   */
  run(until: number, onStep: (r: StepReport) => void, signal?: AbortSignal): Promise<void>;
  /** The weights after `steps` steps. */
  params(): Promise<TrainerParams>;
  /** The weights and Adam's state after `steps` steps (for a checkpoint): copies the caller owns. */
  state(): Promise<TrainingState>;
  /**
   * Where a trainer can hand out the state without stopping its steps (ring mode: a member sends it
   * as it goes): from now on, `deliver` gets the state after every step count that is a multiple of
   * `every`, once that step is committed, in order. Without it, the job loop ends runs there and
   * asks state().
   */
  snapshots?(every: number, deliver: (state: TrainingState) => void): void;
  /**
   * Evaluates the weights after `steps` steps on the test split, shared among the workers (the
   * same bits as one process's evaluateSplit); null when it cannot (no workers, or they have no
   * test split, or one was lost meanwhile): the job loop then evaluates in its own process.
   */
  evaluate?(test: Split): Promise<Evaluation | null>;
  close(): Promise<void>;
}
