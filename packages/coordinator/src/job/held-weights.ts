// The weights and Adam's state held in this process: by one process (--workers 0) and by the
// coordinator in star mode. (In ring mode the workers hold them: ring/ring-trainer.ts.)
import { Adam, InvariantError } from '@ddp/core';
import type { Evaluation, Split } from '@ddp/core';
import type { StepReport, Trainer, TrainerParams, TrainingState } from './trainer.js';

export class HeldWeights {
  private p: Float32Array | null = null;
  private a: Adam | null = null;

  /** Optimizer steps applied so far. */
  get steps(): number {
    return this.a?.steps ?? 0;
  }

  start(state: TrainingState, optim: { lr: number }): void {
    this.p = state.params.slice();
    this.a = new Adam(state.params.length, { lr: optim.lr });
    if (state.steps > 0) this.a.load({ t: state.steps, m: state.adamM, v: state.adamV });
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

  /** A copy of the weights and Adam's state. */
  state(): TrainingState {
    const a = this.adam.state();
    return { steps: a.t, params: this.params.slice(), adamM: a.m, adamV: a.v };
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

  async start(state: TrainingState, optim: { lr: number }): Promise<void> {
    this.held.start(state, optim);
  }

  async params(): Promise<TrainerParams> {
    return this.held.snapshot();
  }

  async state(): Promise<TrainingState> {
    return this.held.state();
  }

  abstract run(until: number, onStep: (r: StepReport) => void, signal?: AbortSignal): Promise<void>;
  evaluate?(test: Split): Promise<Evaluation | null>;
  abstract close(): Promise<void>;
}
