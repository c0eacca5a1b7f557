// The weights and Adam's state held in this process: by one process (--workers 0) and by the
// coordinator in star mode. (In ring mode the workers hold them: ring/ring-trainer.ts.)
import { Adam, InvariantError } from '@ddp/core';
import type { Evaluation, Split } from '@ddp/core';
import type { StepReport, Trainer, TrainerParams } from './trainer.js';

export class HeldWeights {
  private p: Float32Array | null = null;
  private a: Adam | null = null;

  /** Optimizer steps applied so far. */
  get steps(): number {
    return this.a?.steps ?? 0;
  }

  start(params: Float32Array, optim: { lr: number }): void {
    this.p = params.slice();
    this.a = new Adam(params.length, { lr: optim.lr });
  }

  /** The weights, updated in place by `adam`. */
  get params(): Float32Array {
    if (!this.p) throw new InvariantError('the trainer ran before start()');
    return this.p;
  }

  get adam(): Adam {
    if (!this.a) throw new InvariantError('the trainer ran before start()');
    return this.a;
  }

  /** A copy of the weights, for the job loop. */
  snapshot(): TrainerParams {
    return { params: this.params.slice() };
  }
}

/** A trainer whose weights live in this process: one process, and star mode. */
export abstract class HeldWeightsTrainer implements Trainer {
  abstract readonly mode: string;
  abstract readonly workers: number;
  protected readonly held = new HeldWeights();

  get steps(): number {
    return this.held.steps;
  }

  async start(params: Float32Array, optim: { lr: number }): Promise<void> {
    this.held.start(params, optim);
  }

  async params(): Promise<TrainerParams> {
    return this.held.snapshot();
  }

  abstract run(until: number, onStep: (r: StepReport) => void, signal?: AbortSignal): Promise<void>;
  evaluate?(test: Split): Promise<Evaluation | null>;
  abstract close(): Promise<void>;
}
