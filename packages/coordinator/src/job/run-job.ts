import {
  RunError,
  SEED_CNN_PARAM_COUNT,
  evaluateSplit,
  initSeedCnnParams,
  saveSeedCnn,
  stepsPerEpoch,
  type Dataset,
  type DoneEvent,
  type EpochEvent,
  type Evaluation,
  type Reporter,
  type StepEvent,
} from '@ddp/core';
import type { JobConfig } from './job-config.js';
import type { StepReport, Trainer, TrainerParams, TrainingState } from './trainer.js';

/** Where a run's progress stands, beyond the weights: what a checkpoint records and a resume restores. */
export interface RunPosition {
  /** Workers per range of steps (the fast reduction's result depends on it). */
  worldHistory: Array<{ fromStep: number; workers: number }>;
  /** The current epoch's training loss so far (a sum over samples) and its samples, so its epoch event comes out the same. */
  epochLossSum: number;
  epochSamples: number;
}

/** What the job loop hands a checkpoint writer (CheckpointWriter in core/checkpoint does it crash-safe, in the background). */
export interface CheckpointSink {
  /** Takes copies it may keep; returns at once. */
  schedule(state: TrainingState, position: RunPosition & { epoch: number; stepInEpoch: number }): void;
  /** Resolves when every scheduled write is done. */
  flush(): Promise<void>;
}

export interface JobResult {
  params: Float32Array;
  steps: number;
  test: Evaluation;
  samplesPerSec: number;
  trainSeconds: number;
  wallSeconds: number;
  /** Mean milliseconds per step, by phase, as the trainer measured them. */
  breakdown: Record<string, number>;
  /** Mean bytes of gradient each worker sent per step, when the trainer counted them. */
  gradientBytesPerStep?: number;
}

export interface RunJobOptions {
  backend: string;
  /** Stops the run between steps (Ctrl-C): it then evaluates and saves what it has. */
  signal?: AbortSignal;
  /** Start from these weights instead of the seeded initialisation (tests use it). */
  initialParams?: Float32Array;
  /** --resume: continue from this state (a checkpoint's), with the run's position then. */
  resume?: { state: TrainingState; position: RunPosition; path: string };
  /** Checkpoints: every `every` steps (when given) and at each epoch's end, and when a run is cut short. */
  checkpoints?: { sink: CheckpointSink; every?: number };
}

/**
 * The seed job, the same loop whatever carries the steps out (trainer.ts):
 *   1. The trainer gets the initial weights (seeded glorot-uniform) and Adam's learning rate.
 *   2. Epoch by epoch, the trainer runs the plan's steps up to the epoch's end (or --max-steps):
 *      step s uses batch s of permutation(seed, epoch); each applied step comes back as a report
 *      (loss sum, timing) and becomes a `step` event and the progress bar.
 *   3. At each epoch's end the weights are evaluated on the test split (by the workers, each a share
 *      of it, where the trainer can; else here) and saved to `out`; a run cut short (--max-steps,
 *      Ctrl-C) evaluates and saves once, at the end.
 */
export async function runJob(cfg: JobConfig, data: Dataset, trainer: Trainer, reporter: Reporter, opts: RunJobOptions): Promise<JobResult> {
  const wall0 = performance.now();
  const init = opts.resume?.state ?? initialState(opts.initialParams ? opts.initialParams.slice() : initSeedCnnParams(cfg.seed));
  if (init.params.length !== SEED_CNN_PARAM_COUNT) throw new RangeError(`initial parameters must have ${SEED_CNN_PARAM_COUNT} values`);
  const nTrain = data.train.count;
  const perEpoch = stepsPerEpoch(nTrain, cfg.batchSize);
  const totalSteps = Math.min(cfg.maxSteps ?? Infinity, perEpoch * cfg.epochs);
  if (opts.resume && init.steps > perEpoch * cfg.epochs) {
    throw new RunError('DDP_CHECKPOINT', `${opts.resume.path} holds ${init.steps} steps, more than the ${perEpoch * cfg.epochs} of ${cfg.epochs} epoch(s): raise --epochs to go on`);
  }
  reporter.event({
    event: 'start',
    backend: opts.backend,
    workers: trainer.workers,
    dataset: data.name,
    epochs: cfg.epochs,
    batchSize: cfg.batchSize,
    seed: cfg.seed,
    trainSamples: nTrain,
    testSamples: data.test.count,
    totalSteps,
    stepsPerEpoch: perEpoch,
    ...(trainer.mode !== 'local' ? { allreduce: trainer.mode } : {}),
  });
  if (opts.resume) reporter.event({ event: 'resumed', step: init.steps, epoch: Math.floor(init.steps / perEpoch), path: opts.resume.path });
  await trainer.start(init, { lr: cfg.lr });

  let trainMs = 0;
  let samples = 0;
  const phaseMs: Record<string, number> = {};
  let gradientBytes = 0;
  let countedSteps = 0;
  // A resumed epoch goes on with the loss of its steps before the checkpoint: its epoch event comes out the same.
  let epochLoss = opts.resume?.position.epochLossSum ?? 0;
  let epochSamples = opts.resume?.position.epochSamples ?? 0;
  const worldHistory = opts.resume ? opts.resume.position.worldHistory.map((w) => ({ ...w })) : [];
  const onStep = (r: StepReport) => {
    const world = r.ranks?.length ?? trainer.workers;
    if (worldHistory.at(-1)?.workers !== world) worldHistory.push({ fromStep: r.step, workers: world });
    for (const [k, v] of Object.entries(r.timing ?? {})) phaseMs[k] = (phaseMs[k] ?? 0) + v;
    if (r.gradientBytes !== undefined) {
      gradientBytes += r.gradientBytes;
      countedSteps += 1;
    }
    samples += r.samples;
    epochLoss += r.lossSum;
    epochSamples += r.samples;
    // (At an epoch's end the next epoch starts with no loss yet: that is the position there.)
    if (snapshotted && (r.step + 1) % every! === 0) positions.set(r.step + 1, (r.step + 1) % perEpoch === 0 ? { ...position(), epochLossSum: 0, epochSamples: 0 } : position());
    const loss = r.lossSum / r.samples;
    const ev: StepEvent = { event: 'step', step: r.step + 1, epoch: r.epoch + 1, loss, samples: r.samples };
    if (r.ranks) ev.ranks = r.ranks;
    if (r.gradientBytes !== undefined) ev.bytesSent = r.gradientBytes * (r.ranks?.length ?? trainer.workers);
    // The reporter draws the live line from this event (and so does `ddp train`'s launcher).
    reporter.event(ev);
  };

  let weights: TrainerParams | null = null;
  const fetchWeights = async (): Promise<TrainerParams> => {
    if (!weights) weights = await trainer.params();
    return weights;
  };
  const hashes = () => (weights?.hash ? { weightsHash: weights.hash, replicaHashes: weights.replicas ?? [] } : {});
  let lastEval: Evaluation | null = null;
  let evaluatedAtStep = -1;
  const evaluate = async (label: string): Promise<Evaluation> => {
    reporter.progress(0, data.test.count, label);
    const shared = trainer.evaluate ? await trainer.evaluate(data.test) : null;
    const r = shared ?? evaluateSplit((await fetchWeights()).params, data.test, { onBatch: (done, total) => reporter.progress(done, total, label) });
    reporter.endProgress();
    lastEval = r;
    evaluatedAtStep = trainer.steps;
    return r;
  };
  let checkpointedAt = init.steps;
  const position = () => ({ worldHistory: worldHistory.map((w) => ({ ...w })), epochLossSum: epochLoss, epochSamples });
  const schedule = (state: TrainingState, at: RunPosition) => {
    if (state.steps <= checkpointedAt) return; // written already (a snapshot and an epoch's end can meet)
    checkpointedAt = state.steps;
    opts.checkpoints!.sink.schedule(state, { ...at, epoch: Math.floor(state.steps / perEpoch), stepInEpoch: state.steps % perEpoch });
  };
  const checkpoint = async () => {
    if (!opts.checkpoints || trainer.steps <= checkpointedAt) return;
    schedule(await trainer.state(), position());
  };
  const every = opts.checkpoints?.every;
  // A trainer that hands out snapshots as it goes (ring mode) is not stopped at every checkpoint
  // step: its state comes a little after the step is committed, so the position is kept until then.
  const snapshotted = every !== undefined && trainer.snapshots !== undefined;
  const positions = new Map<number, RunPosition>();
  if (snapshotted) {
    trainer.snapshots!(every, (state) => {
      const at = positions.get(state.steps);
      for (const k of positions.keys()) if (k <= state.steps) positions.delete(k);
      if (at) schedule(state, at);
    });
  }
  let savedAtStep = -1;
  const save = async () => {
    if (!cfg.out) return;
    await saveSeedCnn((await fetchWeights()).params, cfg.out);
    savedAtStep = trainer.steps;
    reporter.event({ event: 'saved', step: trainer.steps, path: cfg.out });
  };

  for (let epoch = Math.floor(trainer.steps / perEpoch); epoch < cfg.epochs; epoch++) {
    const epoch0 = performance.now();
    const until = Math.min(totalSteps, (epoch + 1) * perEpoch);
    if (trainer.steps >= until || opts.signal?.aborted) break;
    const runStart = performance.now();
    // Runs end at each checkpoint step (--checkpoint-every) unless the trainer hands out snapshots:
    // the state there is copied (star, one process), then written in the background.
    while (trainer.steps < until && !opts.signal?.aborted) {
      const stop = every && !snapshotted ? Math.min(until, (Math.floor(trainer.steps / every) + 1) * every) : until;
      await trainer.run(stop, onStep, opts.signal);
      if (trainer.steps === stop && stop < until && stop % every! === 0) await checkpoint();
      if (trainer.steps < stop) break;
    }
    trainMs += performance.now() - runStart;
    weights = null;
    reporter.endProgress();
    if (trainer.steps < (epoch + 1) * perEpoch) break; // cut short by --max-steps or Ctrl-C: evaluate once, below
    if (cfg.evalEveryEpoch || epoch === cfg.epochs - 1) {
      await fetchWeights(); // the replicas' hashes go in the epoch event (ring mode)
      const ev = await evaluate(`evaluating epoch ${epoch + 1}`);
      const e: EpochEvent = {
        event: 'epoch',
        epoch: epoch + 1,
        trainLoss: epochLoss / epochSamples,
        testLoss: ev.loss,
        testAccuracy: ev.accuracy,
        seconds: (performance.now() - epoch0) / 1000,
      };
      reporter.event({ ...e, ...hashes() });
    }
    await save();
    epochLoss = 0;
    epochSamples = 0;
    await checkpoint();
  }

  const steps = trainer.steps;
  const final: Evaluation = evaluatedAtStep === steps && lastEval ? lastEval : await evaluate('evaluating');
  if (savedAtStep !== steps) await save();
  await checkpoint(); // a run cut short (--max-steps, Ctrl-C) can be resumed from where it stopped
  await opts.checkpoints?.sink.flush();
  const trainSeconds = trainMs / 1000;
  const breakdown: Record<string, number> = {};
  for (const [k, v] of Object.entries(phaseMs)) breakdown[k] = steps > 0 ? v / steps : 0;
  const result: JobResult = {
    params: (await fetchWeights()).params,
    steps,
    test: final,
    samplesPerSec: trainSeconds > 0 ? samples / trainSeconds : 0,
    trainSeconds,
    wallSeconds: (performance.now() - wall0) / 1000,
    breakdown,
  };
  if (countedSteps > 0) result.gradientBytesPerStep = gradientBytes / countedSteps;
  const done: DoneEvent = {
    event: 'done',
    steps,
    workers: trainer.workers,
    backend: opts.backend,
    testLoss: final.loss,
    testAccuracy: final.accuracy,
    samplesPerSec: result.samplesPerSec,
    wallSeconds: result.wallSeconds,
    trainSeconds,
    breakdown,
  };
  const bytes = result.gradientBytesPerStep !== undefined ? { gradientBytesPerStep: result.gradientBytesPerStep } : {};
  reporter.event({ ...done, ...bytes, ...hashes() });
  return result;
}

/** Step 0: the given weights, Adam's moments at zero. */
function initialState(params: Float32Array): TrainingState {
  return { steps: 0, params, adamM: new Float32Array(params.length), adamV: new Float32Array(params.length) };
}
