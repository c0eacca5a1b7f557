// `--workers 0`: the whole global batch in this process, exactly as one worker would compute it.
// With reduction 'exact' it runs the batch's micro-shards into one exact accumulator (model/reduction.ts):
// the reference every distributed exact run equals bit for bit.
import { BatchGradient, TrainingPlan, gatherShard, type Reduction, type Split } from '@ddp/core';
import { HeldWeightsTrainer } from './held-weights.js';
import type { StepReport } from './trainer.js';

export class LocalTrainer extends HeldWeightsTrainer {
  readonly mode = 'local';
  readonly workers = 0;
  private readonly plan: TrainingPlan;

  constructor(
    private readonly train: Split,
    planSpec: { seed: number; batchSize: number },
    private readonly reduction: Reduction = 'fast',
  ) {
    super();
    this.plan = new TrainingPlan({ ...planSpec, trainCount: train.count });
  }


  async run(until: number, onStep: (r: StepReport) => void, signal?: AbortSignal): Promise<void> {
    const { params, adam } = this.held;
    const gradient = new BatchGradient(this.reduction);
    while (adam.steps < until && !signal?.aborted) {
      const { step, epoch, batch } = this.plan.at(adam.steps);
      const t0 = performance.now();
      const { images, labels } = gatherShard(this.train, batch);
      const r = gradient.compute(params, images, labels, batch.length);
      const t1 = performance.now();
      adam.stepFromSum(params, r.grad, batch.length);
      const t2 = performance.now();
      onStep({
        step, epoch, lossSum: r.lossSum, samples: batch.length, timing: { compute: t1 - t0, optimizer: t2 - t1 },
        ranks: [{ rank: 0, computeMs: t1 - t0, allreduceMs: 0, waitingMs: 0, optimizerMs: t2 - t1 }],
      });
      // Let a Ctrl-C (and the event loop) in between steps.
      await new Promise<void>((resolve) => setImmediate(resolve));
    }
  }

  async close(): Promise<void> {}
}
