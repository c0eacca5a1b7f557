import { gatherImages, gatherLabels, gradientSum, gradientSumExact, type Split } from '@ddp/core';
import type { Reduction } from '@ddp/core';
import type { StepExecutor, StepResult, StepWork } from './step-executor.js';

/** `--workers 0`: the whole global batch in this process, exactly as one worker would compute it. */
export class LocalExecutor implements StepExecutor {
  readonly workers = 0;

  constructor(private readonly train: Split, private readonly reduction: Reduction = 'fast') {}

  async gradientSum(params: Float32Array, work: StepWork): Promise<StepResult> {
    const t0 = performance.now();
    const images = gatherImages(this.train, work.batch);
    const labels = gatherLabels(this.train, work.batch);
    const compute = this.reduction === 'exact' ? gradientSumExact : gradientSum;
    const r = compute(params, images, labels, work.batch.length);
    return { grad: r.grad, lossSum: r.lossSum, timing: { compute: performance.now() - t0 } };
  }

  async close(): Promise<void> {}
}
