import {
  Adam,
  SEED_CNN_PARAM_COUNT,
  epochPermutation,
  evaluateSplit,
  globalBatch,
  initSeedCnnParams,
  saveSeedCnn,
  stepsPerEpoch,
  type Dataset,
  type DoneEvent,
  type EpochEvent,
  type Evaluation,
  type Reporter,
} from '@ddp/core';
import type { JobConfig } from './job-config.js';
import { isReplicated, type FetchedParams, type JobExecutor, type StepExecutor } from './step-executor.js';

export interface JobResult {
  params: Float32Array;
  steps: number;
  test: Evaluation;
  samplesPerSec: number;
  trainSeconds: number;
  wallSeconds: number;
  /** Mean milliseconds per step, by phase ("optimizer" is the coordinator's own Adam step in star mode, the workers' in ring mode). */
  breakdown: Record<string, number>;
  /** Mean bytes of gradient each worker sent per step, when the executor counted them. */
  gradientBytesPerStep?: number;
}

/** Ring mode adds to the epoch and done events the hash of every replica, and of the weights evaluated. */
type ReplicaFields = { weightsHash: string; replicaHashes: Array<{ rank: number; hash: string }> };

/**
 * The gradient of the mean loss: the sum divided by the batch size, rounded to float32 once (a
 * float32 sum is divided in place; a float64 one is divided, then stored as float32).
 */
export function meanGradient(sum: Float32Array | Float64Array, batchSize: number): Float32Array {
  const out = sum instanceof Float32Array ? sum : new Float32Array(sum.length);
  for (let i = 0; i < sum.length; i++) out[i] = sum[i] / batchSize;
  return out;
}

export interface RunJobOptions {
  backend: string;
  /** Stops the run between steps (Ctrl-C): it then evaluates and saves what it has. */
  signal?: AbortSignal;
  /** Start from these weights instead of the seeded initialisation (tests use it). */
  initialParams?: Float32Array;
}

/**
 * The seed job, the same loop for one process and for N workers. Per step:
 *   1. The global batch is the next slice of permutation(seed, epoch) (the last one may be partial).
 *   2. The executor returns the SUM of per-sample gradients over that batch (workers' sums added
 *      in rank order).
 *   3. The sum is divided by the batch size, giving the gradient of the mean loss, and Adam is
 *      applied once, here; the executor sends the new weights with the next step's work.
 * A replicated executor (ring mode) does 2 and 3 on the workers, which hold the weights: the loop
 * hands them the initial weights, gives each step its batch (and the next one, to prepare), and
 * fetches the weights from a worker when it evaluates or saves.
 * After each epoch the model is evaluated on the test split and saved to `out`; `maxSteps` ends
 * the run early (evaluate and save still happen).
 */
export async function runJob(
  cfg: JobConfig,
  data: Dataset,
  executor: JobExecutor,
  reporter: Reporter,
  opts: RunJobOptions,
): Promise<JobResult> {
  const wall0 = performance.now();
  const params = opts.initialParams ? opts.initialParams.slice() : initSeedCnnParams(cfg.seed);
  if (params.length !== SEED_CNN_PARAM_COUNT) throw new RangeError(`initial parameters must have ${SEED_CNN_PARAM_COUNT} values`);
  const adam = new Adam(params.length, { lr: cfg.lr });
  const nTrain = data.train.count;
  const perEpoch = stepsPerEpoch(nTrain, cfg.batchSize);
  const totalSteps = Math.min(cfg.maxSteps ?? Infinity, perEpoch * cfg.epochs);
  const replicated = isReplicated(executor) ? executor : null;
  const star = executor as StepExecutor; // used only when not replicated
  reporter.event({
    event: 'start',
    backend: opts.backend,
    workers: executor.workers,
    dataset: data.name,
    epochs: cfg.epochs,
    batchSize: cfg.batchSize,
    seed: cfg.seed,
    trainSamples: nTrain,
    testSamples: data.test.count,
    ...(executor.allreduce ? { allreduce: executor.allreduce } : {}),
  });
  if (replicated) await replicated.start(params, { lr: cfg.lr });

  let step = 0;
  let trainMs = 0;
  let samples = 0;
  const phaseMs: Record<string, number> = {};
  let gradientBytes = 0;
  let countedSteps = 0;
  // Ring mode: the weights live on the workers; `params` is refreshed from one before it is used.
  let lastHash = '';
  let fetched: FetchedParams | null = null;
  const refreshParams = async () => {
    if (!replicated || fetched?.hash === lastHash) return;
    fetched = await replicated.fetchParams();
    params.set(fetched.params);
  };
  const replicaFields = (): ReplicaFields | object => (fetched ? { weightsHash: fetched.hash, replicaHashes: fetched.replicas } : {});
  let lastEval: Evaluation | null = null;
  let evaluatedAtStep = -1;
  const evaluate = (label: string): Evaluation => {
    const r = evaluateSplit(params, data.test, {
      onBatch: (done, total) => reporter.progress(done, total, label),
    });
    reporter.endProgress();
    lastEval = r;
    evaluatedAtStep = step;
    return r;
  };
  let savedAtStep = -1;
  const save = async () => {
    if (!cfg.out) return;
    await refreshParams();
    await saveSeedCnn(params, cfg.out);
    savedAtStep = step;
    reporter.event({ event: 'checkpoint', step, path: cfg.out });
  };

  let nextPerm: Uint32Array | null = null;
  outer: for (let epoch = 0; epoch < cfg.epochs; epoch++) {
    const epoch0 = performance.now();
    const perm = nextPerm ?? epochPermutation(cfg.seed, epoch, nTrain);
    nextPerm = null;
    let epochLoss = 0;
    let epochSamples = 0;
    for (let s = 0; s < perEpoch; s++) {
      if (step >= totalSteps || opts.signal?.aborted) break outer;
      const batch = globalBatch(perm, s, cfg.batchSize);
      let r: { lossSum: number; timing?: Record<string, number>; gradientBytes?: number };
      if (replicated) {
        // The next batch, for the workers to prepare while this step's allreduce runs.
        let next: Uint32Array | undefined;
        if (step + 1 < totalSteps) {
          if (s + 1 < perEpoch) next = globalBatch(perm, s + 1, cfg.batchSize);
          else if (epoch + 1 < cfg.epochs) next = globalBatch((nextPerm = epochPermutation(cfg.seed, epoch + 1, nTrain)), 0, cfg.batchSize);
        }
        const t0 = performance.now();
        const rr = await replicated.step({ step, epoch, batch, next });
        trainMs += performance.now() - t0;
        lastHash = rr.hash;
        r = rr;
      } else {
        const t0 = performance.now();
        const rs = await star.gradientSum(params, { step, epoch, batch });
        const t1 = performance.now();
        adam.step(params, meanGradient(rs.grad, batch.length));
        const t2 = performance.now();
        trainMs += t2 - t0;
        phaseMs.optimizer = (phaseMs.optimizer ?? 0) + (t2 - t1);
        r = rs;
      }
      for (const [k, v] of Object.entries(r.timing ?? {})) phaseMs[k] = (phaseMs[k] ?? 0) + v;
      if (r.gradientBytes !== undefined) {
        gradientBytes += r.gradientBytes;
        countedSteps += 1;
      }
      samples += batch.length;
      epochLoss += r.lossSum;
      epochSamples += batch.length;
      step += 1;
      const loss = r.lossSum / batch.length;
      reporter.event({ event: 'step', step, epoch: epoch + 1, loss, samples: batch.length });
      const rate = trainMs > 0 ? (samples / trainMs) * 1000 : 0;
      reporter.progress(s + 1, perEpoch, `epoch ${epoch + 1}/${cfg.epochs}`, `loss ${loss.toFixed(4)} ${rate.toFixed(0)} samples/s`);
    }
    reporter.endProgress();
    if (epochSamples === 0) break;
    const complete = epochSamples === nTrain;
    if (!complete) break; // a run cut short by --max-steps or Ctrl-C evaluates once, below
    if (cfg.evalEveryEpoch || epoch === cfg.epochs - 1) {
      await refreshParams();
      const ev = evaluate(`evaluating epoch ${epoch + 1}`);
      const e: EpochEvent = {
        event: 'epoch',
        epoch: epoch + 1,
        trainLoss: epochLoss / epochSamples,
        testLoss: ev.loss,
        testAccuracy: ev.accuracy,
        seconds: (performance.now() - epoch0) / 1000,
      };
      reporter.event({ ...e, ...replicaFields() });
    }
    await save();
  }

  await refreshParams();
  const final: Evaluation = evaluatedAtStep === step && lastEval ? lastEval : evaluate('evaluating');
  if (savedAtStep !== step) await save();
  const trainSeconds = trainMs / 1000;
  const breakdown: Record<string, number> = {};
  for (const [k, v] of Object.entries(phaseMs)) breakdown[k] = step > 0 ? v / step : 0;
  const result: JobResult = {
    params,
    steps: step,
    test: final,
    samplesPerSec: trainSeconds > 0 ? samples / trainSeconds : 0,
    trainSeconds,
    wallSeconds: (performance.now() - wall0) / 1000,
    breakdown,
  };
  if (countedSteps > 0) result.gradientBytesPerStep = gradientBytes / countedSteps;
  const done: DoneEvent = {
    event: 'done',
    steps: step,
    workers: executor.workers,
    backend: opts.backend,
    testLoss: final.loss,
    testAccuracy: final.accuracy,
    samplesPerSec: result.samplesPerSec,
    wallSeconds: result.wallSeconds,
    trainSeconds,
    breakdown,
  };
  const bytes = result.gradientBytesPerStep !== undefined ? { gradientBytesPerStep: result.gradientBytesPerStep } : {};
  reporter.event({ ...done, ...bytes, ...replicaFields() });
  return result;
}
