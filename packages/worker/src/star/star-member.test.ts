// The star member wired as run-worker.ts wires it (the session's `ready` output and its `member`
// messages), on the tfjs cpu backend, against core's gradient functions called directly.
import { randomBytes } from 'node:crypto';
import * as tf from '@tensorflow/tfjs-core';
import '@tensorflow/tfjs-backend-cpu';
import {
  MSG,
  PROTOCOL_VERSION,
  SEED_CNN_PARAM_COUNT,
  decodeFp16,
  decodeFrame,
  encodeMessage,
  evaluateRange,
  gatherImages,
  gatherLabels,
  gradientSum,
  ExactAccumulator,
  EXACT_LENGTH,
  EXACT_LOSS,
  initSeedCnnParams,
  parseWorkerMessage,
  splitFingerprint,
  wireConfig,
  type DataSpec,
  type GradientMessage,
  type Message,
  type ProtocolErrorCode,
  type Split,
  type WireConfig,
  type WelcomeMessage,
  type WorkMessage,
  type WorkerToCoordinator,
} from '@ddp/core';
import { beforeAll, describe, expect, it } from 'vitest';
import { randomSplit } from '@ddp/core/testing';
import { WorkerSession } from '../session/worker-session.js';
import { StarMember } from './star-member.js';


const train = randomSplit(12);
const params = initSeedCnnParams(randomBytes(4).readUInt32LE());
const indices = Uint32Array.from([7, 2]);
let ref: { lossSum: number; grad: Float32Array };

beforeAll(async () => {
  await tf.setBackend('cpu');
  ref = gradientSum(params, gatherImages(train, indices), gatherLabels(train, indices), 2);
}, 60_000);

function spec(over: Partial<DataSpec> = {}): DataSpec {
  return { dataset: 'mnist', trainCount: train.count, fingerprint: splitFingerprint(train), testCount: 10, testFingerprint: 'unused: the tests load no test split', serveData: false, rows: 28, cols: 28, numClasses: 10, ...over };
}

/** A session welcomed with `config`, and its star member (the split comes local, or in train_data chunks). */
function starMember(config: WireConfig, opts: { serve?: boolean } = {}) {
  const sent: WorkerToCoordinator[] = [];
  const failures: Array<{ code: ProtocolErrorCode; message: string }> = [];
  const local = opts.serve ? randomSplit(1) : train; // with --serve-data the local copy must not be used
  const session = new WorkerSession({ token: 't', backend: 'cpu', host: 'h', pid: 1, loadTrain: () => local });
  const welcome: Message = {
    type: MSG.WELCOME, protocolVersion: PROTOCOL_VERSION, rank: 0, workers: 1, paramCount: SEED_CNN_PARAM_COUNT, heartbeatMs: 1000,
    data: spec({ serveData: opts.serve === true }), config, plan: { seed: 1, batchSize: 2 }, job: { id: 'j', fingerprint: 'unspecified' },
  };
  let out = session.receive(encodeMessage(welcome));
  if (opts.serve) {
    out = session.receive(encodeMessage({ type: MSG.TRAIN_DATA, offset: 0, images: train.images.subarray(0, 5 * 784), labels: train.labels.subarray(0, 5) }));
    expect(out.ready).toBeUndefined();
    out = session.receive(encodeMessage({ type: MSG.TRAIN_DATA, offset: 5, images: train.images.subarray(5 * 784), labels: train.labels.subarray(5) }));
  }
  expect(out.ready).toBeDefined();
  const member = new StarMember({ ...out.ready!, send: (m) => sent.push(m), fail: (code, message) => failures.push({ code, message }) });
  /** Sends a work order through the session to the member; returns the reply as the coordinator's validator reads it. */
  const work = (w: Omit<WorkMessage, 'type' | 'params'>): GradientMessage => {
    const o = session.receive(encodeMessage({ type: MSG.WORK, params, ...w }));
    expect(o.member).toBeDefined();
    const receivedAt = performance.now();
    member.handle(o.member as WorkMessage, receivedAt);
    expect(failures).toEqual([]);
    expect(sent).toHaveLength(1);
    return parseWorkerMessage(decodeFrame(encodeMessage(sent.pop()!)), { paramCount: SEED_CNN_PARAM_COUNT, config }) as GradientMessage;
  };
  return { member, work, sent, failures, session };
}

const bits = (a: ArrayBufferView) => Buffer.from(a.buffer, a.byteOffset, a.byteLength);

describe('StarMember', () => {
  it('answers a work order with the gradient SUM of exactly its shard, from local data or the served split (--reduction fast: float32)', () => {
    for (const serve of [false, true]) {
      const { work } = starMember(wireConfig({ allreduce: 'star', reduction: 'fast' }), { serve });
      const reply = work({ step: 4, epoch: 0, task: 9, indices });
      expect(reply).toMatchObject({ type: 'gradient', step: 4, task: 9, count: 2 });
      expect(reply.lossSum).toBe(ref.lossSum);
      expect(reply.grad).toBeInstanceOf(Float32Array);
      expect(bits(reply.grad).equals(bits(ref.grad))).toBe(true);
      expect(reply.computeMs).toBeGreaterThan(0);
      expect(reply.busyMs).toBeGreaterThanOrEqual(reply.computeMs);
    }
  }, 60_000);

  it('with --compress fp16 the gradient travels as float16 bits: the sum rounded to the nearest half', () => {
    const { work } = starMember(wireConfig({ allreduce: 'star', compress: 'fp16' }));
    const reply = work({ step: 0, epoch: 0, task: 1, indices });
    expect(reply.grad).toBeInstanceOf(Uint16Array);
    const back = decodeFp16(reply.grad as Uint16Array);
    let worst = 0;
    for (let i = 0; i < back.length; i++) {
      // Relative 2^-11 in the normal range, absolute 2^-25 below it (subnormal halves).
      const err = Math.abs(back[i]! - ref.grad[i]!);
      worst = Math.max(worst, err / Math.max(Math.abs(ref.grad[i]!), 2 ** -14));
    }
    expect(worst).toBeLessThanOrEqual(2 ** -11);
    expect(worst).toBeGreaterThan(0); // it did round
    expect(reply.lossSum).toBe(ref.lossSum);
  }, 60_000);

  it('with --reduction exact the answer is the exact-sum encoding of the shard\'s micro-shard gradient and loss sums', () => {
    const { work } = starMember(wireConfig({ allreduce: 'star', reduction: 'exact' }));
    const reply = work({ step: 0, epoch: 0, task: 2, indices });
    expect(reply.grad).toBeInstanceOf(Uint8Array);
    const sums = ExactAccumulator.fromEncoded(reply.grad as Uint8Array);
    expect(sums.length).toBe(EXACT_LENGTH);
    // One micro-shard (2 samples): its exact sum is gradientSum's float32 result itself.
    const rounded = sums.toFloat32();
    expect(bits(rounded.subarray(0, EXACT_LOSS)).equals(bits(ref.grad))).toBe(true);
    expect(rounded[EXACT_LOSS]).toBe(ref.lossSum);
    expect(reply.lossSum).toBe(ref.lossSum);
  }, 60_000);

  it('an empty shard (a batch smaller than the worker count) is a zero sum with count 0 (--reduction fast: float32)', () => {
    const { work } = starMember(wireConfig({ allreduce: 'star', reduction: 'fast' }));
    const reply = work({ step: 1, epoch: 0, task: 3, indices: new Uint32Array(0) });
    expect(reply).toMatchObject({ count: 0, lossSum: 0, computeMs: 0 });
    expect((reply.grad as Float32Array).every((x) => x === 0)).toBe(true);
    expect(reply.grad.length).toBe(SEED_CNN_PARAM_COUNT);
  });

  it('once closed it answers nothing', () => {
    const { member, sent, session } = starMember(wireConfig({ allreduce: 'star' }));
    member.close();
    const o = session.receive(encodeMessage({ type: MSG.WORK, step: 0, epoch: 0, task: 1, params, indices }));
    member.handle(o.member as WorkMessage, performance.now());
    expect(sent).toEqual([]);
  });

  it('evaluates its share of the test split at the weights sent along: each batch\'s loss sum, as core evaluates it', () => {
    const test = randomSplit(7);
    const sent: WorkerToCoordinator[] = [];
    const failures: string[] = [];
    const welcome = { type: MSG.WELCOME, protocolVersion: PROTOCOL_VERSION, rank: 0, workers: 1, paramCount: SEED_CNN_PARAM_COUNT, heartbeatMs: 1000,
      data: spec({ testCount: 7 }), config: wireConfig({ allreduce: 'star' }), plan: { seed: 1, batchSize: 2 } } as WelcomeMessage;
    const member = new StarMember({ welcome, train, test, send: (m) => sent.push(m), fail: (_c, m) => failures.push(m) });
    member.handle({ type: MSG.EVALUATE, request: 3, steps: 0, params, start: 2, end: 7 }, performance.now());
    expect(failures).toEqual([]);
    const reply = parseWorkerMessage(decodeFrame(encodeMessage(sent[0]!)), { paramCount: SEED_CNN_PARAM_COUNT, config: wireConfig({ allreduce: 'star' }) });
    const expected = evaluateRange(params, test, 2, 7);
    expect(reply).toMatchObject({ type: 'evaluation', request: 3, batches: 1, correct: expected.correct });
    expect(bits((reply as { lossSums: Float64Array }).lossSums).equals(bits(expected.lossSums))).toBe(true);
    // Without a test split (a worker fed by --serve-data) it is a fault of the worker, said so.
    const bare = new StarMember({ welcome, train, test: null, send: (m) => sent.push(m), fail: (_c, m) => failures.push(m) });
    bare.handle({ type: MSG.EVALUATE, request: 4, steps: 0, params, start: 0, end: 7 }, performance.now());
    expect(failures).toEqual(['evaluate: this worker has no test split']);
  }, 60_000);
});
