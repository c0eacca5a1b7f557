import { describe, expect, it } from 'vitest';
import { ExactAccumulator } from '../allreduce/exact-sum/accumulator.js';
import { maxEncodedBytes } from '../allreduce/exact-sum/wire.js';
import { protocolRefusal } from '../test-support.js';
import { decodeFrame, encodeMessage } from './codec.js';
import { MSG, type GradientMessage } from './messages.js';
import { ProtocolError, type ProtocolErrorCode } from './protocol-error.js';
import { parseCoordinatorMessage, parseWorkerMessage, type WorkerInboundLimits } from './validate.js';
import { PROTOCOL_VERSION } from './version.js';
import { wireConfig } from './wire-config.js';

const paramCount = 50;
// float32 gradients on the wire: the fast reduction (the default, exact, sends exact-sum encodings).
const star = wireConfig({ allreduce: 'star', reduction: 'fast' });
const ringConfig = wireConfig({ allreduce: 'ring' });
const limits: WorkerInboundLimits = { paramCount, trainCount: 100, testCount: 50, rows: 4, cols: 4, numClasses: 10, serveData: false, config: star };
const coordStar = { paramCount, config: star };

function goodGradient(): Record<string, unknown> {
  return { type: 'gradient', step: 1, task: 2, count: 3, lossSum: 4.5, grad: new Float32Array(paramCount).fill(0.5), computeMs: 1, busyMs: 2 };
}
function goodWork(): Record<string, unknown> {
  return { type: 'work', step: 1, epoch: 0, task: 2, params: new Float32Array(paramCount), indices: Uint32Array.from([0, 5, 99]) };
}
function goodHello(): Record<string, unknown> {
  return { type: 'hello', protocolVersion: PROTOCOL_VERSION, token: 'x', backend: 'cpu', host: 'h', pid: 1 };
}

/** Goes through the real codec, as a frame would. */
const wire = (v: unknown) => decodeFrame(encodeMessage(v as never));


const fromWorker = (v: unknown) => () => parseWorkerMessage(wire(v), coordStar);
const fromCoordinator = (v: unknown, l: WorkerInboundLimits | null = limits) => () => parseCoordinatorMessage(wire(v), l);

describe('messages from workers', () => {
  const cases: Array<[string, Record<string, unknown>, ProtocolErrorCode, RegExp]> = [
    ['a NaN in the gradient', { ...goodGradient(), grad: new Float32Array(paramCount).fill(NaN) }, 'DDP_BAD_MESSAGE', /gradient\.grad\[0\] is NaN/],
    ['an Infinity in the gradient', { ...goodGradient(), grad: Float32Array.from({ length: paramCount }, (_, i) => (i === 7 ? -Infinity : 0)) }, 'DDP_BAD_MESSAGE', /gradient\.grad\[7\] is -Infinity/],
    ['a gradient of the wrong length', { ...goodGradient(), grad: new Float32Array(paramCount - 1) }, 'DDP_BAD_MESSAGE', /expected a Float32Array of 50 values, got Float32Array of 49/],
    ['a gradient as float64', { ...goodGradient(), grad: new Float64Array(paramCount) }, 'DDP_BAD_MESSAGE', /got Float64Array/],
    ['a gradient as a plain array', { ...goodGradient(), grad: Array.from({ length: paramCount }, () => 0) }, 'DDP_BAD_MESSAGE', /got an array of 50/],
    ['a NaN loss', { ...goodGradient(), lossSum: NaN }, 'DDP_BAD_MESSAGE', /gradient\.lossSum: expected a finite number/],
    ['a fractional step', { ...goodGradient(), step: 1.5 }, 'DDP_BAD_MESSAGE', /gradient\.step: expected an integer/],
    ['a missing field', (() => { const g = goodGradient(); delete g.task; return g; })(), 'DDP_BAD_MESSAGE', /missing field 'task'/],
    ['an extra field', { ...goodGradient(), extra: 1 }, 'DDP_BAD_MESSAGE', /unexpected field 'extra'/],
    ['an unknown type', { type: 'bogus' }, 'DDP_BAD_MESSAGE', /unknown type 'bogus'/],
    ['no type', { step: 1 }, 'DDP_BAD_MESSAGE', /'type' must be a string/],
    ['an array instead of a map', [1, 2] as unknown as Record<string, unknown>, 'DDP_BAD_MESSAGE', /expected a map/],
    ['a hello of another version', { ...goodHello(), protocolVersion: PROTOCOL_VERSION + 1 }, 'DDP_VERSION', new RegExp(`worker speaks version ${PROTOCOL_VERSION + 1}, this coordinator speaks ${PROTOCOL_VERSION}`)],
    ['a hello without version', (() => { const h = goodHello(); delete h.protocolVersion; return h; })(), 'DDP_VERSION', /speaks no known version/],
    ['a hello with a numeric token', { ...goodHello(), token: 5 }, 'DDP_BAD_MESSAGE', /hello\.token/],
    ['an error with an unknown code', { type: 'error', code: 'E_WHATEVER', message: 'x' }, 'DDP_BAD_MESSAGE', /error\.code/],
  ];
  it.each(cases)('refuses %s', (_what, msg, code, pattern) => {
    const err = protocolRefusal(fromWorker(msg));
    expect(err.code).toBe(code);
    expect(err.message).toMatch(pattern);
  });

  it('accepts the well-formed versions of the same messages', () => {
    expect(parseWorkerMessage(wire(goodGradient()), coordStar).type).toBe(MSG.GRADIENT);
    expect(parseWorkerMessage(wire(goodHello()), coordStar).type).toBe(MSG.HELLO);
  });
});

describe('messages from the coordinator', () => {
  it('refuses work before the welcome', () => {
    expect(protocolRefusal(fromCoordinator(goodWork(), null)).message).toMatch(/work: received before welcome/);
  });
  it('refuses indices outside the training set', () => {
    expect(protocolRefusal(fromCoordinator({ ...goodWork(), indices: Uint32Array.from([3, 100]) })).message).toMatch(/work\.indices\[1\] = 100 is not in \[0, 99\]/);
  });
  it('refuses weights with a NaN', () => {
    const params = new Float32Array(paramCount);
    params[3] = NaN;
    expect(protocolRefusal(fromCoordinator({ ...goodWork(), params })).message).toMatch(/work\.params\[3\] is NaN/);
  });
  it('with --serve-data, train_data: refuses pixels of the wrong size, labels out of range, and chunks past the split', () => {
    const served = { ...limits, serveData: true };
    const images = new Uint8Array(3 * 16);
    const chunk = { type: 'train_data', offset: 0, images, labels: new Uint8Array(3) };
    expect(protocolRefusal(fromCoordinator({ ...chunk, images: images.subarray(1) }, served)).message).toMatch(
      /train_data\.images: expected a Uint8Array of 48 bytes, got Uint8Array of 47/,
    );
    expect(protocolRefusal(fromCoordinator({ ...chunk, labels: Uint8Array.from([1, 10, 2]) }, served)).message).toMatch(/train_data\.labels\[1\] = 10/);
    expect(protocolRefusal(fromCoordinator({ ...chunk, offset: 98 }, served)).message).toMatch(/train_data\.labels: expected a Uint8Array of 1\.\.2 labels/);
    expect(protocolRefusal(fromCoordinator(chunk)).message).toMatch(/train_data: unexpected without --serve-data/);
    expect(protocolRefusal(fromCoordinator(chunk, null)).message).toMatch(/train_data: received before welcome/);
    expect(parseCoordinatorMessage(wire(chunk), served).type).toBe(MSG.TRAIN_DATA);
  });
  it('refuses a welcome of another version with DDP_VERSION', () => {
    const err = protocolRefusal(fromCoordinator({ type: 'welcome', protocolVersion: 99 }, null));
    expect(err.code).toBe('DDP_VERSION');
  });
});

describe('--compress fp16 and ring mode', () => {
  const ringLimits = { paramCount, config: ringConfig };
  const ring: WorkerInboundLimits = { ...limits, config: ringConfig };
  const goodProgress = () => ({
    type: 'ring_progress', generation: 1, step: 4, count: 32, lossSum: 3, hash: '0123456789abcdef', bytesSent: 100,
    prepareMs: 0, computeMs: 1, allreduceMs: 1, optimizerMs: 1, cycleMs: 0,
  });

  it('with fp16, a gradient must be half bits, and a half Infinity or NaN is refused', () => {
    const fp16 = { paramCount, config: wireConfig({ allreduce: 'star', compress: 'fp16' }) };
    expect(protocolRefusal(() => parseWorkerMessage(wire(goodGradient()), fp16)).message).toMatch(/gradient\.grad: expected a Uint16Array of 50 float16 values \(--compress fp16\), got Float32Array/);
    const grad = new Uint16Array(paramCount);
    grad[5] = 0x7c00;
    expect(protocolRefusal(() => parseWorkerMessage(wire({ ...goodGradient(), grad }), fp16)).message).toMatch(/gradient\.grad\[5\] is the float16 Infinity/);
    grad[5] = 0xfe00;
    expect(protocolRefusal(() => parseWorkerMessage(wire({ ...goodGradient(), grad }), fp16)).message).toMatch(/gradient\.grad\[5\] is the float16 NaN/);
    grad[5] = 0x3c00; // 1.0
    expect(parseWorkerMessage(wire({ ...goodGradient(), grad }), fp16).type).toBe(MSG.GRADIENT);
  });

  it('ring messages are refused in star mode, and gradients and work in ring mode', () => {
    expect(protocolRefusal(fromWorker(goodProgress())).message).toMatch(/ring_progress from worker: not part of --allreduce star/);
    expect(protocolRefusal(() => parseWorkerMessage(wire(goodGradient()), ringLimits)).message).toMatch(/gradient from worker: not part of --allreduce ring/);
    expect(parseWorkerMessage(wire(goodProgress()), ringLimits).type).toBe(MSG.RING_PROGRESS);
    const ringRun = { type: 'ring_run', generation: 1, from: 0, until: 10 };
    expect(protocolRefusal(fromCoordinator(ringRun)).message).toMatch(/ring_run from coordinator: not part of --allreduce star/);
    expect(parseCoordinatorMessage(wire(ringRun), ring).type).toBe(MSG.RING_RUN);
    expect(protocolRefusal(fromCoordinator(goodWork(), ring)).message).toMatch(/work from coordinator: not part of --allreduce ring/);
  });

  it('refuses malformed ring messages, naming the field', () => {
    const cases: Array<[() => unknown, RegExp]> = [
      [() => parseWorkerMessage(wire({ ...goodProgress(), hash: 'xyz' }), ringLimits), /ring_progress\.hash: expected 16 hex digits/],
      [() => parseWorkerMessage(wire({ ...goodProgress(), lossSum: -1 }), ringLimits), /ring_progress\.lossSum: expected a finite number >= 0/],
      [() => parseWorkerMessage(wire({ type: 'ring_address', generation: 0, url: 'http://x', steps: -1 }), ringLimits), /ring_address\.url: expected ws:\/\/HOST:PORT/],
      [() => parseWorkerMessage(wire({ type: 'state', request: 1, steps: 1, hash: '0123456789abcdef', params: new Float32Array(paramCount), adamM: new Float32Array(paramCount) }), ringLimits), /adamM and adamV come together/],
      [() => parseCoordinatorMessage(wire({ type: 'ring_listen', generation: 1, position: 3, size: 3, group: 'g' }), ring), /ring_listen\.position: expected an integer in \[0, 2\]/],
      [() => parseCoordinatorMessage(wire({ type: 'ring_connect', generation: 1, urls: ['ws://a:1', 5], resume: 0 }), ring), /ring_connect\.urls\[1\]/],
      [() => parseCoordinatorMessage(wire({ type: 'ring_run', generation: 1, from: 5, until: 5 }), ring), /ring_run: until \(5\) must be greater than from \(5\)/],
      [() => parseCoordinatorMessage(wire({ type: 'replica', steps: 0, params: new Float32Array(paramCount), lr: 0 }), ring), /replica\.lr: expected a positive/],
      [() => parseCoordinatorMessage(wire({ type: 'fetch', request: 1 }), ring), /fetch: missing field 'steps'/],
    ];
    for (const [fn, pattern] of cases) {
      const err = protocolRefusal(fn);
      expect(err.code).toBe('DDP_BAD_MESSAGE');
      expect(err.message).toMatch(pattern);
    }
  });

  it('a welcome must say the allreduce mode, the compression and the reduction', () => {
    const config = { allreduce: 'tree', compress: 'none', reduction: 'fast', hashEvery: 50 };
    const welcome = {
      type: 'welcome', protocolVersion: PROTOCOL_VERSION, rank: 0, workers: 2, paramCount, heartbeatMs: 1000, config, plan: { seed: 1, batchSize: 64 }, job: { id: 'j', fingerprint: 'f' },
      data: { dataset: 'mnist', trainCount: 100, fingerprint: 'f', testCount: 50, testFingerprint: 'g', serveData: false, rows: 4, cols: 4, numClasses: 10 },
    };
    expect(protocolRefusal(fromCoordinator(welcome, null)).message).toMatch(/welcome\.config\.allreduce: expected one of star, ring, got 'tree'/);
    expect(protocolRefusal(fromCoordinator({ ...welcome, config: { ...config, allreduce: 'ring', compress: 'int8' } }, null)).message).toMatch(/welcome\.config\.compress: expected one of none, fp16/);
    expect(protocolRefusal(fromCoordinator({ ...welcome, config: { ...config, allreduce: 'star', reduction: 'sloppy' } }, null)).message).toMatch(/welcome\.config\.reduction: expected one of fast, exact/);
    expect(protocolRefusal(fromCoordinator({ ...welcome, config: { ...config, allreduce: 'ring', hashEvery: 0 } }, null)).message).toMatch(/welcome\.config\.hashEvery: expected an integer in \[1, 1000000\], got 0/);
    expect(protocolRefusal(fromCoordinator({ ...welcome, config: { ...config, allreduce: 'ring' } })).message).toMatch(/welcome: a second welcome/);
    expect(parseCoordinatorMessage(wire({ ...welcome, config: { ...config, allreduce: 'ring' } }), null).type).toBe(MSG.WELCOME);
  });

  it('with reduction exact a gradient is the bytes of an exact-sum encoding, at most maxEncodedBytes(paramCount + 1)', () => {
    const exact = { paramCount, config: wireConfig({ allreduce: 'star', reduction: 'exact' }) };
    const base = { type: 'gradient', step: 0, task: 1, count: 4, lossSum: 1, computeMs: 1, busyMs: 1 };
    const grad = new ExactAccumulator(paramCount + 1).add(Float32Array.from({ length: paramCount + 1 }, () => Math.random() - 0.5)).encode(0, paramCount + 1, 'raw');
    const back = parseWorkerMessage(decodeFrame(encodeMessage({ ...base, grad } as unknown as GradientMessage)), exact) as GradientMessage;
    expect(back.grad).toBeInstanceOf(Uint8Array);
    expect(Buffer.from(back.grad as Uint8Array).equals(Buffer.from(grad))).toBe(true);
    const f32 = encodeMessage({ ...base, grad: new Float32Array(paramCount) } as unknown as GradientMessage);
    expect(() => parseWorkerMessage(decodeFrame(f32), exact)).toThrow(/grad/);
    const huge = encodeMessage({ ...base, grad: new Uint8Array(maxEncodedBytes(paramCount + 1) + 1) } as unknown as GradientMessage);
    expect(() => parseWorkerMessage(decodeFrame(huge), exact)).toThrow(/grad/);
  });
});
