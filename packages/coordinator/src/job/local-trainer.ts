// `--workers 0`: the whole global batch in this process, exactly as one worker would compute it.
import { Adam, TrainingPlan, gatherImages, gatherLabels, gradientSum, gradientSumExact, type Reduction, type Split } from '@ddp/core';
import type { StepReport, Trainer, TrainerParams } from './trainer.js';

export class LocalTrainer implements Trainer {
  readonly mode = 'local';
  readonly workers = 0;
  private params_: Float32Array | null = null;
  private adam: Adam | null = null;
  private readonly plan: TrainingPlan;

  constructor(
    private readonly train: Split,
    planSpec: { seed: number; batchSize: number },
    private readonly reduction: Reduction = 'fast',
  ) {
    this.plan = new TrainingPlan({ ...planSpec, trainCount: train.count });
  }

  get steps(): number {
    return this.adam?.steps ?? 0;
  }

  async start(params: Float32Array, optim: { lr: number }): Promise<void> {
    this.params_ = params.slice();
    this.adam = new Adam(params.length, { lr: optim.lr });
  }

  async run(until: number, onStep: (r: StepReport) => void, signal?: AbortSignal): Promise<void> {
    const params = this.params_!;
    const adam = this.adam!;
    const compute = this.reduction === 'exact' ? gradientSumExact : gradientSum;
    while (adam.steps < until && !signal?.aborted) {
      const { step, epoch, batch } = this.plan.at(adam.steps);
      const t0 = performance.now();
      const r = compute(params, gatherImages(this.train, batch), gatherLabels(this.train, batch), batch.length);
      const t1 = performance.now();
      adam.stepFromSum(params, r.grad, batch.length);
      const t2 = performance.now();
      onStep({ step, epoch, lossSum: r.lossSum, samples: batch.length, timing: { compute: t1 - t0, optimizer: t2 - t1 } });
      // Let a Ctrl-C (and the event loop) in between steps.
      await new Promise<void>((resolve) => setImmediate(resolve));
    }
  }

  async params(): Promise<TrainerParams> {
    return { params: this.params_!.slice() };
  }

  async close(): Promise<void> {}
}
