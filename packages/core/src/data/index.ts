// The data layer: IDX files, the data-set registry, the seeded sampler, sharding and preprocessing.
export { IdxError, parseIdx, readIdxFile } from './idx.js';
export type { IdxContent } from './idx.js';
export { encodeIdx, writeIdxFile } from './idx-writer.js';
export { DATASET_NAMES, DatasetError, FASHION_MNIST_DIR, loadDataset } from './datasets.js';
export type { Dataset, DatasetName, LoadDatasetOptions, Split } from './datasets.js';
export { createRng, deriveSeed, mix32 } from './random.js';
export type { Rng } from './random.js';
export { epochPermutation, globalBatch, stepsPerEpoch } from './sampler.js';
export { shardBatch, shardLengths, shardSizes } from './shard.js';
export { gatherImages, gatherLabels, gatherShard, scalePixels } from './preprocess.js';
export type { ShardInputs } from './preprocess.js';
export { TrainingPlan } from './plan.js';
export type { PlanSpec, PlannedStep } from './plan.js';
