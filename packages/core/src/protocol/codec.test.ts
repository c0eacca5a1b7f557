import { randomBytes } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { decodeFrame, encodeMessage } from './codec.js';
import {
  MSG,
  type GradientMessage,
  type Message,
  type ReplicaMessage,
  type RingProgressMessage,
  type StateMessage,
  type TrainDataMessage,
  type WelcomeMessage,
  type WorkMessage,
} from './messages.js';
import { encodeFp16 } from '../allreduce/fp16.js';
import { replicaHash } from './replica-hash.js';
import { ProtocolError } from './protocol-error.js';
import { parseCoordinatorMessage, parseWorkerMessage, type WorkerInboundLimits } from './validate.js';
import { PROTOCOL_VERSION } from './version.js';
import { wireConfig } from './wire-config.js';

/** Random float32 values over many magnitudes, both signs, including subnormals and ±0. */
function randomFloats(n: number): Float32Array {
  const out = new Float32Array(n);
  const bits = new Uint32Array(out.buffer);
  bits.set(new Uint32Array(randomBytes(n * 4).buffer));
  for (let i = 0; i < n; i++) {
    // Keep finite: an all-ones exponent is Inf/NaN, which the protocol rejects on purpose.
    if (((bits[i] >>> 23) & 0xff) === 0xff) bits[i] &= 0xbfffffff;
  }
  out[0] = -0;
  return out;
}

function randomIndices(n: number, below: number): Uint32Array {
  const out = new Uint32Array(randomBytes(n * 4).buffer);
  for (let i = 0; i < n; i++) out[i] %= below;
  return out;
}

const sameBits = (a: Float32Array, b: Float32Array) => expect(new Uint32Array(b.buffer, b.byteOffset, b.length)).toEqual(new Uint32Array(a.buffer, a.byteOffset, a.length));

describe('codec round trip', () => {
  const paramCount = 1000 + (randomBytes(2).readUInt16LE() % 5000);
  const star = { paramCount, config: wireConfig({ allreduce: 'star', reduction: 'fast' }) }; // float32 gradients
  const limits: WorkerInboundLimits = { paramCount, trainCount: 60000, testCount: 50, rows: 28, cols: 28, numClasses: 10, serveData: false, config: star.config };

  it('gradient: the Float32Array comes back bit for bit, as a Float32Array', () => {
    const msg: GradientMessage = {
      type: MSG.GRADIENT, step: 12, task: 40, count: 21, lossSum: 37.25, grad: randomFloats(paramCount), computeMs: 8.5, busyMs: 9.75,
    };
    const back = parseWorkerMessage(decodeFrame(encodeMessage(msg)), star) as GradientMessage;
    expect(back.grad).toBeInstanceOf(Float32Array);
    sameBits(msg.grad as Float32Array, back.grad as Float32Array);
    expect({ ...back, grad: null }).toEqual({ ...msg, grad: null });
  });

  it('work: weights and indices come back exactly', () => {
    const msg: WorkMessage = {
      type: MSG.WORK, step: 3, epoch: 1, task: 9, params: randomFloats(paramCount), indices: randomIndices(33, 60000),
    };
    const back = parseCoordinatorMessage(decodeFrame(encodeMessage(msg)), limits) as WorkMessage;
    sameBits(msg.params, back.params);
    expect(back.indices).toBeInstanceOf(Uint32Array);
    expect(back.indices).toEqual(msg.indices);
  });

  it('train_data with --serve-data: pixels and labels come back exactly', () => {
    const n = 17;
    const labels = new Uint8Array(randomBytes(n).map((b) => b % 10));
    const msg: TrainDataMessage = { type: MSG.TRAIN_DATA, offset: 59983, images: new Uint8Array(randomBytes(n * 784)), labels };
    const back = parseCoordinatorMessage(decodeFrame(encodeMessage(msg)), { ...limits, serveData: true }) as TrainDataMessage;
    expect(back.images).toBeInstanceOf(Uint8Array);
    expect(back).toEqual(msg);
  });

  it('a Float32Array at an unaligned offset inside a larger buffer (as ws delivers frames) decodes aligned', () => {
    const grad = randomFloats(paramCount);
    const frame = encodeMessage({ type: MSG.GRADIENT, step: 0, task: 0, count: 1, lossSum: 1, grad, computeMs: 0, busyMs: 0 });
    const pool = new Uint8Array(frame.length + 3);
    pool.set(frame, 3);
    const back = parseWorkerMessage(decodeFrame(pool.subarray(3)), star) as GradientMessage;
    sameBits(grad, back.grad as Float32Array);
  });

  it('the small messages round-trip', () => {
    const welcome: WelcomeMessage = {
      type: MSG.WELCOME, protocolVersion: PROTOCOL_VERSION, rank: 2, workers: 3, paramCount, heartbeatMs: 1000,
      data: { dataset: 'mnist', limitTrain: 512, trainCount: 512, fingerprint: 'ab'.repeat(32), testCount: 50, testFingerprint: 'cd'.repeat(32), serveData: false, rows: 28, cols: 28, numClasses: 10 },
      config: wireConfig({ allreduce: 'ring', compress: 'fp16', hashEvery: 7 }),
      plan: { seed: 3, batchSize: 96 },
      job: { id: 'j', fingerprint: 'unspecified' },
    };
    const fromCoordinator: Message[] = [
      { type: MSG.PING, nonce: 7 },
      { type: MSG.DONE, reason: 'finished' },
      { type: MSG.ERROR, code: 'DDP_AUTH', message: 'wrong token' },
    ];
    expect(parseCoordinatorMessage(decodeFrame(encodeMessage(welcome)), null)).toEqual(welcome);
    for (const m of fromCoordinator) expect(parseCoordinatorMessage(decodeFrame(encodeMessage(m)), limits)).toEqual(m);
    const hello: Message = { type: MSG.HELLO, protocolVersion: PROTOCOL_VERSION, token: 't0k', backend: 'wasm', host: 'h', pid: 42 };
    expect(parseWorkerMessage(decodeFrame(encodeMessage(hello)), star)).toEqual(hello);
    expect(parseWorkerMessage(decodeFrame(encodeMessage({ type: MSG.PONG, nonce: 7 })), star)).toEqual({ type: MSG.PONG, nonce: 7 });
  });

  it('gradient with --compress fp16: the Uint16Array of half bits comes back exactly, as a Uint16Array', () => {
    const grad = encodeFp16(randomFloats(paramCount).map((x) => x % 60000));
    const msg: GradientMessage = { type: MSG.GRADIENT, step: 1, task: 2, count: 3, lossSum: 4, grad, computeMs: 1, busyMs: 2 };
    const frame = encodeMessage(msg);
    const back = parseWorkerMessage(decodeFrame(frame), { paramCount, config: wireConfig({ allreduce: 'star', compress: 'fp16' }) }) as GradientMessage;
    expect(back.grad).toBeInstanceOf(Uint16Array);
    expect(back.grad).toEqual(grad);
    // Half the bytes of the float32 message (plus the same small header).
    const f32 = encodeMessage({ ...msg, grad: randomFloats(paramCount) });
    expect(f32.byteLength - frame.byteLength).toBe(paramCount * 2);
  });

  it('ring messages with tensors round-trip bit for bit: replica, state, ring_progress', () => {
    const ring: WorkerInboundLimits = { ...limits, config: wireConfig({ allreduce: 'ring' }) };
    const ringCoord = { paramCount, config: ring.config };
    const replica: ReplicaMessage = { type: MSG.REPLICA, steps: 7, params: randomFloats(paramCount), lr: 1e-3, adamM: randomFloats(paramCount), adamV: randomFloats(paramCount) };
    const r = parseCoordinatorMessage(decodeFrame(encodeMessage(replica)), ring) as ReplicaMessage;
    sameBits(replica.params, r.params);
    sameBits(replica.adamM!, r.adamM!);
    sameBits(replica.adamV!, r.adamV!);
    expect(r.steps).toBe(7);
    const params = randomFloats(paramCount);
    const state: StateMessage = { type: MSG.STATE, request: 3, steps: 10, hash: replicaHash(params), params };
    const s = parseWorkerMessage(decodeFrame(encodeMessage(state)), ringCoord) as StateMessage;
    sameBits(params, s.params);
    expect(s.hash).toBe(replicaHash(s.params));
    const progress: RingProgressMessage = {
      type: MSG.RING_PROGRESS, generation: 2, step: 9, count: 32, lossSum: 70.5, hash: state.hash, bytesSent: 1234,
      prepareMs: 0, computeMs: 30.5, allreduceMs: 1.25, optimizerMs: 0.75, cycleMs: 35,
    };
    expect(parseWorkerMessage(decodeFrame(encodeMessage(progress)), ringCoord)).toEqual(progress);
  });

  it('undecodable bytes are DDP_BAD_MESSAGE, not a library exception', () => {
    const frame = encodeMessage({ type: MSG.PONG, nonce: 1 });
    for (const broken of [frame.subarray(0, frame.length - 1), new Uint8Array([...frame, 0]), new Uint8Array([0xc1])]) {
      let err: unknown;
      try {
        parseWorkerMessage(decodeFrame(broken), star);
      } catch (e) {
        err = e;
      }
      expect(err).toBeInstanceOf(ProtocolError);
      expect((err as ProtocolError).code).toBe('DDP_BAD_MESSAGE');
    }
  });
});
