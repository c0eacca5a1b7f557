/**
 * The compute time of one training step, read from a `ddp bench step` result
 * (bench/results/step-*.json): the median ms per step with ddp's kernels, and its batch size.
 */
import { readJsonFile } from '@ddp/core';
import type { ComputeSource } from './simulate-bench.js';
import { UsageError } from '../args.js';

interface StepFileShape {
  benchmark?: unknown;
  batchSize?: unknown;
  sets?: Array<{ set?: unknown; medianStepMs?: unknown }>;
}

export function computeFromStepResult(file: string): ComputeSource {
  const data = readJsonFile(file) as StepFileShape;
  const where = `${file}`;
  if (typeof data !== 'object' || data === null || !Array.isArray(data.sets) || data.sets.length === 0) {
    throw new UsageError(`${where}: expected a 'ddp bench step' result with a non-empty 'sets' array`);
  }
  // ddp's own kernels are what training runs with; else the last set measured.
  const set = data.sets.find((s) => s.set === 'ddp') ?? data.sets[data.sets.length - 1]!;
  const ms = set.medianStepMs;
  if (typeof ms !== 'number' || !(ms > 0)) throw new UsageError(`${where}: sets[].medianStepMs must be a number > 0, got ${JSON.stringify(ms)}`);
  const batch = typeof data.batchSize === 'number' && data.batchSize > 0 ? data.batchSize : undefined;
  return { seconds: ms / 1000, batchSize: batch, from: `${String(set.set ?? 'step')} kernels, ${where}` };
}
