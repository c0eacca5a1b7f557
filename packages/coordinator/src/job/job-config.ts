import type { DatasetName, Reduction } from '@ddp/core';

export { REDUCTIONS, type Reduction } from '@ddp/core';

/** What one training run is: the seed job's hyper-parameters and where its data and model live. */
export interface JobConfig {
  dataset: DatasetName;
  dataDir?: string;
  limitTrain?: number;
  limitTest?: number;
  epochs: number;
  batchSize: number;
  lr: number;
  seed: number;
  /** Stop after this many optimizer steps (then evaluate and save as usual). */
  maxSteps?: number;
  /** Folder for model.json + weights.bin; saved after every epoch and at the end. */
  out?: string;
  /** Evaluate on the test split after every epoch (the final evaluation always runs). */
  evalEveryEpoch: boolean;
  /**
   * How gradient sums are reduced over samples. 'fast': inside the kernels, in float32, so the
   * result depends on how the batch is split (N workers equal one process to float rounding, and
   * trajectories drift apart over many steps). 'exact': per-sample contributions added in float64
   * (`gradientSumExact`), so any number of workers gives one process's weights bit for bit; slower.
   */
  reduction: Reduction;
}


export const DEFAULT_JOB: JobConfig = {
  dataset: 'mnist',
  epochs: 5,
  batchSize: 64,
  lr: 1e-3,
  seed: 42,
  evalEveryEpoch: true,
  reduction: 'fast',
};
