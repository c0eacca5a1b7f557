import { randomBytes } from 'node:crypto';
import * as tf from '@tensorflow/tfjs-core';
import '@tensorflow/tfjs-backend-cpu';
import {
  MSG,
  PROTOCOL_VERSION,
  SEED_CNN_PARAM_COUNT,
  decodeFrame,
  encodeMessage,
  gatherImages,
  gatherLabels,
  gradientSum,
  initSeedCnnParams,
  parseWorkerMessage,
  splitFingerprint,
  type DataSpec,
  type GradientMessage,
  type Message,
  type Split,
  type WelcomeMessage,
  decodeFp16,
} from '@ddp/core';
import { beforeAll, describe, expect, it } from 'vitest';
import { WORKER_EXIT, WorkerSession } from './worker-session.js';

function randomSplit(count: number): Split {
  return { images: new Uint8Array(randomBytes(count * 784)), labels: new Uint8Array(randomBytes(count).map((b) => b % 10)), count, rows: 28, cols: 28 };
}

const frame = (m: Message) => encodeMessage(m);

function spec(train: Split, over: Partial<DataSpec> = {}): DataSpec {
  return { dataset: 'mnist', trainCount: train.count, fingerprint: splitFingerprint(train), serveData: false, rows: 28, cols: 28, numClasses: 10, ...over };
}

function welcome(data: DataSpec, mode: Pick<WelcomeMessage, 'allreduce' | 'compress'> = { allreduce: 'star', compress: 'none' }): Message {
  return { type: MSG.WELCOME, protocolVersion: PROTOCOL_VERSION, rank: 1, workers: 2, paramCount: SEED_CNN_PARAM_COUNT, heartbeatMs: 1000, data, reduction: 'fast', ...mode };
}

function session(train: Split) {
  return new WorkerSession({ token: 't', backend: 'cpu', host: 'h', pid: 1, loadTrain: () => train });
}

beforeAll(async () => {
  await tf.setBackend('cpu');
});

describe('WorkerSession', () => {
  it('answers a work order with the gradient sum of exactly its shard (local data and --serve-data)', () => {
    const train = randomSplit(12);
    const params = initSeedCnnParams(randomBytes(4).readUInt32LE());
    const indices = Uint32Array.from([7, 2]);
    const ref = gradientSum(params, gatherImages(train, indices), gatherLabels(train, indices), 2);

    const local = session(train);
    expect(local.hello()).toMatchObject({ type: 'hello', protocolVersion: PROTOCOL_VERSION, token: 't' });
    expect(local.receive(frame(welcome(spec(train)))).welcomed?.rank).toBe(1);
    const out = local.receive(frame({ type: MSG.WORK, step: 4, epoch: 0, task: 9, params, indices }));
    expect(out.end).toBeUndefined();
    // Through the coordinator's own validator, as it would arrive there.
    const reply = parseWorkerMessage(decodeFrame(encodeMessage(out.replies[0])), { paramCount: SEED_CNN_PARAM_COUNT }) as GradientMessage;
    expect(reply).toMatchObject({ type: 'gradient', step: 4, task: 9, count: 2 });
    expect(reply.lossSum).toBe(ref.lossSum);
    expect(reply.grad).toEqual(ref.grad);

    const served = session(randomSplit(1)); // its local data must not be used
    served.receive(frame(welcome(spec(train, { serveData: true }))));
    const images = new Uint8Array([...train.images.subarray(7 * 784, 8 * 784), ...train.images.subarray(2 * 784, 3 * 784)]);
    const labels = Uint8Array.from([train.labels[7], train.labels[2]]);
    const out2 = served.receive(frame({ type: MSG.WORK, step: 4, epoch: 0, task: 10, params, indices, images, labels }));
    expect((out2.replies[0] as GradientMessage).grad).toEqual(ref.grad);
  }, 60_000);

  it('with --compress fp16 the gradient travels as float16 bits: the sum rounded to the nearest half', () => {
    const train = randomSplit(6);
    const params = initSeedCnnParams(randomBytes(4).readUInt32LE());
    const indices = Uint32Array.from([5, 0, 3]);
    const ref = gradientSum(params, gatherImages(train, indices), gatherLabels(train, indices), 3);
    const s = session(train);
    s.receive(frame(welcome(spec(train), { allreduce: 'star', compress: 'fp16' })));
    const out = s.receive(frame({ type: MSG.WORK, step: 0, epoch: 0, task: 1, params, indices }));
    const reply = parseWorkerMessage(decodeFrame(encodeMessage(out.replies[0])), { paramCount: SEED_CNN_PARAM_COUNT, compress: 'fp16' }) as GradientMessage;
    expect(reply.grad).toBeInstanceOf(Uint16Array);
    const back = decodeFp16(reply.grad as Uint16Array);
    let worst = 0;
    for (let i = 0; i < back.length; i++) {
      // Relative 2^-11 in the normal range, absolute 2^-25 below it (subnormal halves).
      const err = Math.abs(back[i] - ref.grad[i]);
      worst = Math.max(worst, err / Math.max(Math.abs(ref.grad[i]), 2 ** -14));
    }
    expect(worst).toBeLessThanOrEqual(2 ** -11);
    expect(worst).toBeGreaterThan(0); // it did round
  }, 60_000);

  it('in ring mode, ring messages go out to the ring member and work orders are refused', () => {
    const train = randomSplit(3);
    const s = session(train);
    s.receive(frame(welcome(spec(train), { allreduce: 'ring', compress: 'none' })));
    const listen = { type: MSG.RING_LISTEN, generation: 0, position: 1, size: 2, group: 'g', resume: 0 } as const;
    expect(s.receive(frame(listen))).toEqual({ replies: [], ring: listen });
    const out = s.receive(frame({ type: MSG.WORK, step: 0, epoch: 0, task: 1, params: new Float32Array(SEED_CNN_PARAM_COUNT), indices: Uint32Array.from([0]) }));
    expect(out.end?.code).toBe('DDP_BAD_MESSAGE');
    expect(out.end?.message).toMatch(/work from coordinator: not part of --allreduce ring/);
  });

  it('answers ping with pong and ends with exit 0 on done', () => {
    const train = randomSplit(3);
    const s = session(train);
    s.receive(frame(welcome(spec(train))));
    expect(s.receive(frame({ type: MSG.PING, nonce: 77 })).replies).toEqual([{ type: 'pong', nonce: 77 }]);
    expect(s.receive(frame({ type: MSG.DONE, reason: 'finished' })).end).toEqual({ exitCode: WORKER_EXIT.DONE, message: 'done: finished' });
  });

  it('a refusal at the handshake ends with exit 3 and says why', () => {
    const s = session(randomSplit(3));
    const end = s.receive(frame({ type: MSG.ERROR, code: 'DDP_AUTH', message: 'wrong token' })).end;
    expect(end).toEqual({ exitCode: WORKER_EXIT.REFUSED, message: 'refused by the coordinator: DDP_AUTH: wrong token' });
  });

  it('refuses to train on a different copy of the data set (DDP_DATASET)', () => {
    const train = randomSplit(4);
    const other = { ...train, images: train.images.slice() };
    other.images[100] ^= 1;
    const out = session(other).receive(frame(welcome(spec(train))));
    expect(out.end?.exitCode).toBe(WORKER_EXIT.FAILED);
    expect(out.replies[0]).toMatchObject({ type: 'error', code: 'DDP_DATASET' });
    expect(out.end?.message).toMatch(/different content/);
    const short = session(randomSplit(3)).receive(frame(welcome(spec(train))));
    expect(short.end?.message).toMatch(/the coordinator has 4 training images of 28x28, this worker 3/);
  });

  it('a malformed frame from the coordinator ends the session with DDP_BAD_MESSAGE', () => {
    const train = randomSplit(3);
    const s = session(train);
    s.receive(frame(welcome(spec(train))));
    const out = s.receive(frame({ type: MSG.WORK, step: 0, epoch: 0, task: 0, params: new Float32Array(5), indices: new Uint32Array(1) }));
    expect(out.replies[0]).toMatchObject({ type: 'error', code: 'DDP_BAD_MESSAGE' });
    expect(out.end?.message).toMatch(/work\.params: expected a Float32Array of 93322 values/);
    expect(s.receive(frame({ type: MSG.PING, nonce: 1 })).replies).toEqual([]); // ended: nothing more
  });

  it('a close without done is a lost coordinator (exit 1); before the welcome with a DDP code, a refusal (exit 3)', () => {
    const train = randomSplit(3);
    const s = session(train);
    s.receive(frame(welcome(spec(train))));
    expect(s.closed(1006, '')).toEqual({ exitCode: WORKER_EXIT.FAILED, message: 'connection to the coordinator lost (code 1006)' });
    expect(session(train).closed(4001, 'DDP_AUTH')?.exitCode).toBe(WORKER_EXIT.REFUSED);
  });
});
