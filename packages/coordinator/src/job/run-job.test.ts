// The job loop with the one-process trainer on a tiny synthetic data set, against a reference
// computed here step by step (the plan's batches, core's gradientSum, core's Adam). It runs on the
// wasm backend: the cpu backend takes about 2.5 s per 2-sample gradient of the seed CNN here,
// wasm about 40 ms, and this file needs a few dozen of them.
import { randomBytes } from 'node:crypto';
import { Writable } from 'node:stream';
import {
  Adam,
  Reporter,
  TrainingPlan,
  evaluateSplit,
  gatherImages,
  gatherLabels,
  gradientSum,
  initBackend,
  initSeedCnnParams,
  type Dataset,
  type DdpEvent,
  type Split,
} from '@ddp/core';
import { beforeAll, describe, expect, it } from 'vitest';
import { randomSplit } from '@ddp/core/testing';
import type { JobConfig } from './job-config.js';
import { LocalTrainer } from './local-trainer.js';
import { runJob, type CheckpointSink } from './run-job.js';
import type { StepReport, Trainer, TrainerParams, TrainingState } from './trainer.js';


const data: Dataset = { name: 'synthetic', source: 'memory', train: randomSplit(6), test: randomSplit(4), numClasses: 10 };
const CFG: JobConfig = { dataset: 'mnist', epochs: 2, batchSize: 2, lr: 2e-3, seed: 9, evalEveryEpoch: true };

/** A reporter that writes JSON lines to memory; the events are read back from them. */
function capture(onEvent: (e: DdpEvent) => void = () => {}) {
  const events: DdpEvent[] = [];
  const out = new Writable({
    write(chunk, _enc, done) {
      for (const line of String(chunk).split('\n').filter(Boolean)) {
        const e = JSON.parse(line) as DdpEvent;
        events.push(e);
        onEvent(e);
      }
      done();
    },
  });
  const quiet = { isTTY: false, write: () => true } as unknown as NodeJS.WriteStream;
  return { reporter: new Reporter('json', out, quiet), events };
}

const bits = (a: Float32Array) => Buffer.from(a.buffer, a.byteOffset, a.byteLength);

/** The weights after each step and each step's loss sum, computed here without the trainer. */
let ref: { after: Float32Array[]; lossSums: number[] };

beforeAll(async () => {
  await initBackend('wasm');
  const plan = new TrainingPlan({ seed: CFG.seed, batchSize: CFG.batchSize, trainCount: data.train.count });
  const params = initSeedCnnParams(CFG.seed);
  const adam = new Adam(params.length, { lr: CFG.lr });
  ref = { after: [params.slice()], lossSums: [] };
  for (let step = 0; step < 6; step++) {
    const { batch } = plan.at(step);
    const r = gradientSum(params, gatherImages(data.train, batch), gatherLabels(data.train, batch), batch.length);
    adam.stepFromSum(params, r.grad, batch.length);
    ref.after.push(params.slice());
    ref.lossSums.push(r.lossSum);
  }
}, 60_000);

describe('runJob with the LocalTrainer', () => {
  it('trains the plan\'s batches as the reference does, bit for bit, with step, epoch and done events in order', async () => {
    const { reporter, events } = capture();
    const trainer = new LocalTrainer(data.train, { seed: CFG.seed, batchSize: CFG.batchSize });
    const result = await runJob(CFG, data, trainer, reporter, { backend: 'wasm' });

    expect(result.steps).toBe(6);
    expect(bits(result.params).equals(bits(ref.after[6]!))).toBe(true);
    expect(events.map((e) => e.event)).toEqual(['start', 'step', 'step', 'step', 'epoch', 'step', 'step', 'step', 'epoch', 'done']);
    expect(events[0]).toEqual({ event: 'start', backend: 'wasm', workers: 0, dataset: 'synthetic', epochs: 2, batchSize: 2, seed: 9, trainSamples: 6, testSamples: 4, totalSteps: 6, stepsPerEpoch: 3 });
    const steps = events.filter((e) => e.event === 'step');
    expect(steps).toMatchObject(ref.lossSums.map((l, s) => ({ event: 'step', step: s + 1, epoch: s < 3 ? 1 : 2, loss: l / 2, samples: 2 })));
    // One process reports its own timing as rank 0 (the timeline's one worker track).
    for (const e of steps as Array<Extract<DdpEvent, { event: 'step' }>>) {
      expect(e.ranks).toHaveLength(1);
      expect(e.ranks![0]).toMatchObject({ rank: 0, allreduceMs: 0, waitingMs: 0 });
      expect(e.ranks![0]!.computeMs).toBeGreaterThan(0);
    }
    const epochs = events.filter((e) => e.event === 'epoch') as Array<Extract<DdpEvent, { event: 'epoch' }>>;
    for (const [k, e] of epochs.entries()) {
      const test = evaluateSplit(ref.after[3 * (k + 1)]!, data.test);
      expect(e).toMatchObject({ epoch: k + 1, testLoss: test.loss, testAccuracy: test.accuracy });
      expect(e.trainLoss).toBeCloseTo(ref.lossSums.slice(3 * k, 3 * k + 3).reduce((a, b) => a + b, 0) / 6, 12);
    }
    const done = events.at(-1) as Extract<DdpEvent, { event: 'done' }>;
    expect(done).toMatchObject({ steps: 6, workers: 0, backend: 'wasm', testLoss: epochs[1]!.testLoss, testAccuracy: epochs[1]!.testAccuracy });
    expect(result.test).toEqual(evaluateSplit(ref.after[6]!, data.test));
    expect(Object.keys(result.breakdown).sort()).toEqual(['compute', 'optimizer']);
    expect(result.samplesPerSec).toBeGreaterThan(0);
  }, 60_000);

  it('--max-steps stops mid-epoch, then evaluates once', async () => {
    const { reporter, events } = capture();
    const trainer = new LocalTrainer(data.train, { seed: CFG.seed, batchSize: CFG.batchSize });
    const result = await runJob({ ...CFG, maxSteps: 4 }, data, trainer, reporter, { backend: 'wasm' });
    expect(result.steps).toBe(4);
    expect(bits(result.params).equals(bits(ref.after[4]!))).toBe(true);
    expect(events.map((e) => e.event)).toEqual(['start', 'step', 'step', 'step', 'epoch', 'step', 'done']);
    expect(events.at(-1)).toMatchObject({ event: 'done', steps: 4, testLoss: evaluateSplit(ref.after[4]!, data.test).loss });
  }, 60_000);

  it('checkpoints every N steps and at epoch ends; a run resumed from any of them ends with the same bits and the same epoch losses', async () => {
    type Saved = { state: TrainingState; position: Parameters<CheckpointSink['schedule']>[1] };
    const saved: Saved[] = [];
    const sink: CheckpointSink = { schedule: (state, position) => saved.push({ state, position }), flush: async () => {} };
    const full = capture();
    await runJob(CFG, data, new LocalTrainer(data.train, { seed: CFG.seed, batchSize: CFG.batchSize }), full.reporter, { backend: 'wasm', checkpoints: { sink, every: 2 } });
    // Every 2 steps (2, 4) and at each epoch's end (3, 6).
    expect(saved.map((c) => c.state.steps)).toEqual([2, 3, 4, 6]);
    expect(saved.map((c) => [c.position.epoch, c.position.stepInEpoch])).toEqual([[0, 2], [1, 0], [1, 1], [2, 0]]);
    for (const c of saved) expect(bits(c.state.params).equals(bits(ref.after[c.state.steps]!))).toBe(true);
    const epochsOf = (events: DdpEvent[]) => events.filter((e) => e.event === 'epoch').map((e) => (e as Extract<DdpEvent, { event: 'epoch' }>).trainLoss);

    for (const from of [saved[0]!, saved[2]!]) {
      const resumed = capture();
      const trainer = new LocalTrainer(data.train, { seed: CFG.seed, batchSize: CFG.batchSize });
      const result = await runJob(CFG, data, trainer, resumed.reporter, { backend: 'wasm', resume: { state: from.state, position: from.position, path: '/ck' } });
      expect(result.steps).toBe(6);
      expect(bits(result.params).equals(bits(ref.after[6]!))).toBe(true);
      expect(resumed.events[1]).toEqual({ event: 'resumed', step: from.state.steps, epoch: from.position.epoch, path: '/ck' });
      // Only the steps after the checkpoint run; the epoch it stopped in reports the same loss.
      expect(resumed.events.filter((e) => e.event === 'step').map((e) => (e as { step: number }).step)).toEqual([3, 4, 5, 6].slice(from.state.steps - 2));
      expect(epochsOf(resumed.events)).toEqual(epochsOf(full.events).slice(from.position.epoch));
    }
  }, 60_000);

  it('an abort stops after the step in hand and still evaluates what it has', async () => {
    const ac = new AbortController();
    const { reporter, events } = capture((e) => {
      if (e.event === 'step' && e.step === 2) ac.abort();
    });
    const trainer = new LocalTrainer(data.train, { seed: CFG.seed, batchSize: CFG.batchSize });
    const result = await runJob(CFG, data, trainer, reporter, { backend: 'wasm', signal: ac.signal });
    expect(result.steps).toBe(2);
    expect(bits(result.params).equals(bits(ref.after[2]!))).toBe(true);
    expect(events.map((e) => e.event)).toEqual(['start', 'step', 'step', 'done']);
  }, 60_000);
});

describe('runJob with any Trainer', () => {
  /** Applies nothing; reports fixed timings and bytes, and hashes as the ring trainer does. */
  class FakeTrainer implements Trainer {
    readonly mode = 'ring';
    readonly workers = 3;
    steps = 0;
    private p = new Float32Array(0);
    runs: number[] = [];
    async start(state: TrainingState): Promise<void> {
      this.p = state.params.slice();
      this.steps = state.steps;
    }
    async state(): Promise<TrainingState> {
      return { steps: this.steps, params: this.p.slice(), adamM: new Float32Array(this.p.length), adamV: new Float32Array(this.p.length) };
    }
    async run(until: number, onStep: (r: StepReport) => void): Promise<void> {
      this.runs.push(until);
      for (; this.steps < until; this.steps++) {
        onStep({ step: this.steps, epoch: Math.floor(this.steps / 3), lossSum: 1, samples: 2, timing: { compute: this.steps, allreduce: 1 }, gradientBytes: 100 * (this.steps + 1) });
      }
    }
    async params(): Promise<TrainerParams> {
      return { params: this.p, hash: 'abcdefabcdefabcd', replicas: [{ rank: 0, hash: 'abcdefabcdefabcd' }] };
    }
    async close(): Promise<void> {}
  }

  it('runs to each epoch\'s end, averages the trainer\'s timing and bytes per step, and reports the replicas\' hashes', async () => {
    const { reporter, events } = capture();
    const trainer = new FakeTrainer();
    const result = await runJob(CFG, data, trainer, reporter, { backend: 'cpu' });
    expect(trainer.runs).toEqual([3, 6]);
    expect(events[0]).toMatchObject({ event: 'start', workers: 3, allreduce: 'ring' });
    expect(result.breakdown).toEqual({ compute: (0 + 1 + 2 + 3 + 4 + 5) / 6, allreduce: 1 });
    expect(result.gradientBytesPerStep).toBe(350);
    expect(events.filter((e) => e.event === 'epoch')).toMatchObject([
      { epoch: 1, trainLoss: 0.5, weightsHash: 'abcdefabcdefabcd' },
      { epoch: 2, trainLoss: 0.5, weightsHash: 'abcdefabcdefabcd' },
    ]);
    expect(events.at(-1)).toMatchObject({
      event: 'done', steps: 6, workers: 3, gradientBytesPerStep: 350, weightsHash: 'abcdefabcdefabcd', replicaHashes: [{ rank: 0, hash: 'abcdefabcdefabcd' }],
    });
  }, 60_000);
});
