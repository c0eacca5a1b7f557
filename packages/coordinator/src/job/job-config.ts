import type { DatasetName } from '@ddp/core';

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
}


export const DEFAULT_JOB: JobConfig = {
  dataset: 'mnist',
  epochs: 5,
  batchSize: 64,
  lr: 1e-3,
  seed: 42,
  evalEveryEpoch: true,
};
