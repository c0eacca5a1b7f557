// Every message, from its one declaration (MESSAGES): a valid example survives the real codec and its
// parser unchanged, and each declared field is refused when missing, unexpected or of the wrong type,
// with an error naming the message and the field.
import { describe, expect, it } from 'vitest';
import { ExactAccumulator } from '../allreduce/exact-sum/accumulator.js';
import { protocolRefusal } from '../test-support.js';
import { decodeFrame, encodeMessage } from './codec.js';
import { MESSAGES, MSG, type CoordinatorInboundLimits, type GradientMessage, type Message, type MessageOf, type MessageType, type WorkerInboundLimits } from './messages.js';
import { ProtocolError } from './protocol-error.js';
import { parseCoordinatorMessage, parseWorkerMessage } from './validate.js';
import { PROTOCOL_VERSION } from './version.js';
import { wireConfig, type WireConfig } from './wire-config.js';

const paramCount = 37;
// float32 gradients on the wire: the fast reduction (the default, exact, sends exact-sum encodings).
const star = wireConfig({ allreduce: 'star', reduction: 'fast' });
const ring = wireConfig({ allreduce: 'ring' });

/** Distinct finite float32 values, with -0 and a subnormal among them. */
const floats = (n: number, seed = 1) => Float32Array.from({ length: n }, (_, i) => (i === 0 ? -0 : i === 1 ? 1e-40 : Math.sin(i * seed) * 10 ** ((i % 9) - 4)));
const hash = '0123456789abcdef';

/** One valid example of every message (the table is typed: a message missing here does not compile). */
const EXAMPLES: { [K in MessageType]: MessageOf<K> } = {
  hello: { type: MSG.HELLO, protocolVersion: PROTOCOL_VERSION, token: 't0k', backend: 'wasm', host: 'box', pid: 4242, job: { id: 'mnist-7', fingerprint: 'ef'.repeat(32) }, rankHint: { from: 'JOB_COMPLETION_INDEX', index: 2 } },
  welcome: {
    type: MSG.WELCOME, protocolVersion: PROTOCOL_VERSION, rank: 2, workers: 3, paramCount, heartbeatMs: 1000,
    data: { dataset: 'mnist', dataDir: '/data', limitTrain: 100, trainCount: 100, fingerprint: 'ab'.repeat(32), testCount: 50, testFingerprint: 'cd'.repeat(32), serveData: true, rows: 4, cols: 4, numClasses: 10 },
    config: wireConfig({ allreduce: 'ring', compress: 'fp16', hashEvery: 7 }),
    plan: { seed: 0xfffffffe, batchSize: 96 },
    job: { id: 'mnist-7', fingerprint: 'ef'.repeat(32) },
  },
  train_data: { type: MSG.TRAIN_DATA, offset: 97, images: Uint8Array.from({ length: 3 * 16 }, (_, i) => (i * 37) & 255), labels: Uint8Array.from([9, 0, 4]) },
  work: { type: MSG.WORK, step: 2 ** 40 + 3, epoch: 1, task: 9, params: floats(paramCount), indices: Uint32Array.from([0, 99, 42]) },
  gradient: { type: MSG.GRADIENT, step: 12, task: 40, count: 21, lossSum: 37.25, grad: floats(paramCount, 3), computeMs: 8.5, busyMs: 9.75 },
  ping: { type: MSG.PING, nonce: 0xffffffff },
  pong: { type: MSG.PONG, nonce: 0 },
  done: { type: MSG.DONE, reason: 'finished' },
  error: { type: MSG.ERROR, code: 'DDP_MISMATCH', message: 'replicas differ at step 5' },
  replica: { type: MSG.REPLICA, steps: 7, params: floats(paramCount), lr: 1e-3, adamM: floats(paramCount, 2), adamV: floats(paramCount, 5).map(Math.abs) },
  ring_listen: { type: MSG.RING_LISTEN, generation: 3, size: 4, position: 3, group: 'job-1/3' },
  ring_address: { type: MSG.RING_ADDRESS, generation: 3, url: 'ws://127.0.0.1:40123', steps: -1 },
  ring_connect: { type: MSG.RING_CONNECT, generation: 3, urls: ['ws://10.0.0.1:1', 'wss://h:2'], resume: 12 },
  ring_ready: { type: MSG.RING_READY, generation: 3 },
  ring_run: { type: MSG.RING_RUN, generation: 3, from: 12, until: 100 },
  ring_progress: {
    type: MSG.RING_PROGRESS, generation: 3, step: 12, count: 32, lossSum: 70.5, hash, bytesSent: 2 ** 36,
    prepareMs: 0, computeMs: 30.5, allreduceMs: 1.25, optimizerMs: 0.75, cycleMs: 35,
  },
  ring_failed: { type: MSG.RING_FAILED, generation: 3, step: -1, code: 'CONNECT', position: -1, message: 'ECONNREFUSED' },
  ring_stop: { type: MSG.RING_STOP, generation: 3 },
  ring_stopped: { type: MSG.RING_STOPPED, generation: 3, steps: 12 },
  evaluate: { type: MSG.EVALUATE, request: 2, steps: 11, params: floats(paramCount), start: 0, end: 50 },
  evaluation: { type: MSG.EVALUATION, request: 2, batches: 2, lossSums: Float64Array.from([1.5, 2.25]), correct: 40 },
  fetch: { type: MSG.FETCH, request: 5, steps: 11, optimizer: true },
  state: { type: MSG.STATE, request: 5, steps: 11, hash, params: floats(paramCount), adamM: floats(paramCount, 2), adamV: floats(paramCount, 4) },
};

/** The examples' mode: ring messages need ring mode, work and gradient star mode. */
const configFor = (type: MessageType): WireConfig => (MESSAGES[type].mode === 'ring' ? ring : star);
const workerLimits = (config: WireConfig): WorkerInboundLimits => ({ paramCount, trainCount: 100, testCount: 50, rows: 4, cols: 4, numClasses: 10, serveData: true, config });
const coordinatorLimits = (config: WireConfig): CoordinatorInboundLimits => ({ paramCount, config });

/** Through the real codec and the parser of the receiving side (the welcome before any limits). */
function receive(raw: unknown, type: MessageType, config = configFor(type)): Message {
  const decoded = decodeFrame(encodeMessage(raw as Message));
  if (MESSAGES[type].from === 'worker') return parseWorkerMessage(decoded, coordinatorLimits(config));
  return parseCoordinatorMessage(decoded, type === MSG.WELCOME ? null : workerLimits(config));
}


/** Same value, and every typed array of the same class with the same bits (so -0 stays -0). */
function expectIntact(back: unknown, sent: unknown, path: string): void {
  if (ArrayBuffer.isView(sent)) {
    expect(back, path).toBeInstanceOf(sent.constructor);
    const bits = (v: ArrayBufferView) => new Uint8Array(v.buffer, v.byteOffset, v.byteLength);
    expect(bits(back as ArrayBufferView), path).toEqual(bits(sent));
  } else if (sent !== null && typeof sent === 'object' && !Array.isArray(sent)) {
    expect(Object.keys(back as object).sort(), path).toEqual(Object.keys(sent).sort());
    for (const [k, v] of Object.entries(sent)) expectIntact((back as Record<string, unknown>)[k], v, `${path}.${k}`);
  } else {
    expect(back, path).toStrictEqual(sent);
  }
}

const TYPES = Object.keys(EXAMPLES) as MessageType[];
/** Fields that the version rule reads before any field check (their faults are DDP_VERSION). */
const versioned = (type: MessageType, field: string) => (type === MSG.HELLO || type === MSG.WELCOME) && field === 'protocolVersion';

describe('the message table', () => {
  it('declares every MSG type, and each has an example here', () => {
    expect(Object.keys(MESSAGES).sort()).toEqual(Object.values(MSG).sort());
    expect(TYPES.sort()).toEqual(Object.values(MSG).sort());
  });
});

describe.each(TYPES)('%s', (type) => {
  const example = EXAMPLES[type] as unknown as Record<string, unknown>;
  const fields = Object.keys(MESSAGES[type].fields);

  it('a valid example round-trips through encodeMessage/decodeFrame and the parser unchanged', () => {
    const back = receive(example, type);
    expectIntact(back, example, type);
    expect(back).toStrictEqual(example);
  });

  it.each(fields)(`refuses a missing, an unexpected and a wrong-typed field: ${type}.%s`, (name) => {
    const { [name]: _dropped, ...without } = example;
    const optional = MESSAGES[type].fields[name as never as keyof (typeof MESSAGES)[typeof type]['fields']] as { optional: boolean };
    if (optional.optional) {
      // Absent is fine for an optional field, unless a rule pairs it (adamM with adamV).
      if (/^adam[MV]$/.test(name)) expect(protocolRefusal(() => receive(without, type)).message).toMatch(`${type}: adamM and adamV come together or not at all`);
      else expect(receive(without, type)).toStrictEqual(without);
    } else if (versioned(type, name)) {
      expect(protocolRefusal(() => receive(without, type)).code).toBe('DDP_VERSION');
    } else {
      expect(protocolRefusal(() => receive(without, type)).message).toBe(`${type}: missing field '${name}'`);
    }
    const wrongs = [null, typeof example[name] === 'string' ? 7 : 'seven', [1, 2]];
    for (const wrong of wrongs) {
      const err = protocolRefusal(() => receive({ ...example, [name]: wrong }, type));
      if (versioned(type, name)) expect(err.code).toBe('DDP_VERSION');
      else {
        expect(err.code).toBe('DDP_BAD_MESSAGE');
        expect(err.message).toMatch(new RegExp(`^${type}\\.${name}(\\[\\d+\\])?: expected `));
      }
    }
  });

  it('refuses an unexpected field, naming it', () => {
    const err = protocolRefusal(() => receive({ ...example, [`${fields[0]}X`]: 1 }, type));
    expect(err.code).toBe('DDP_BAD_MESSAGE');
    expect(err.message).toBe(`${type}: unexpected field '${fields[0]}X'`);
  });
});

describe('nested maps (welcome.data, welcome.config, welcome.plan, welcome.job)', () => {
  const welcome = EXAMPLES.welcome as unknown as Record<string, Record<string, unknown>>;
  const cases = (['data', 'config', 'plan', 'job'] as const).flatMap((map) => Object.keys(welcome[map]).map((name) => [map, name] as const));
  it.each(cases)('welcome.%s.%s: missing, wrong-typed and unexpected are refused naming the path', (map, name) => {
    const { [name]: _dropped, ...without } = welcome[map];
    const optional = map === 'data' && (name === 'dataDir' || name === 'limitTrain');
    if (optional) expect(receive({ ...welcome, [map]: without }, MSG.WELCOME)).toStrictEqual({ ...welcome, [map]: without });
    else expect(protocolRefusal(() => receive({ ...welcome, [map]: without }, MSG.WELCOME)).message).toBe(`welcome.${map}: missing field '${name}'`);
    for (const wrong of [null, typeof welcome[map][name] === 'string' ? 7 : 'seven']) {
      expect(protocolRefusal(() => receive({ ...welcome, [map]: { ...welcome[map], [name]: wrong } }, MSG.WELCOME)).message).toMatch(new RegExp(`^welcome\\.${map}\\.${name}: expected `));
    }
    expect(protocolRefusal(() => receive({ ...welcome, [map]: { ...welcome[map], extra: 1 } }, MSG.WELCOME)).message).toBe(`welcome.${map}: unexpected field 'extra'`);
  });

  it('welcome.job: an id of 1 to 64 characters, a fingerprint of 1 to 128', () => {
    const job = (id: string, fingerprint: string) => receive({ ...welcome, job: { id, fingerprint } }, MSG.WELCOME);
    expect((job('x', 'y') as unknown as typeof welcome).job).toEqual({ id: 'x', fingerprint: 'y' });
    expect((job('i'.repeat(64), 'f'.repeat(128)) as unknown as typeof welcome).job).toEqual({ id: 'i'.repeat(64), fingerprint: 'f'.repeat(128) });
    expect(protocolRefusal(() => job('', 'y')).message).toBe("welcome.job.id: expected a non-empty string, got ''");
    expect(protocolRefusal(() => job('x', '')).message).toBe("welcome.job.fingerprint: expected a non-empty string, got ''");
    expect(protocolRefusal(() => job('i'.repeat(65), 'y')).message).toMatch(/^welcome\.job\.id: expected a non-empty string of at most 64 characters/);
    expect(protocolRefusal(() => job('x', 'f'.repeat(129))).message).toMatch(/^welcome\.job\.fingerprint: expected a non-empty string of at most 128 characters/);
    const { job: _dropped, ...without } = welcome;
    expect(protocolRefusal(() => receive(without, MSG.WELCOME)).message).toBe("welcome: missing field 'job'");
  });
});

describe('float vectors: a NaN is refused naming its index', () => {
  const vectors = TYPES.flatMap((type) =>
    Object.entries(EXAMPLES[type])
      .filter(([, v]) => v instanceof Float32Array)
      .map(([name]) => [type, name] as const),
  );
  it('covers every Float32Array field of the examples', () => {
    expect(vectors.map(([t, n]) => `${t}.${n}`).sort()).toEqual(
      ['evaluate.params', 'gradient.grad', 'replica.adamM', 'replica.adamV', 'replica.params', 'state.adamM', 'state.adamV', 'state.params', 'work.params'].sort(),
    );
  });
  it.each(vectors)('%s.%s', (type, name) => {
    for (const i of [0, 17, paramCount - 1]) {
      const v = (EXAMPLES[type] as unknown as Record<string, Float32Array>)[name].slice();
      v[i] = NaN;
      expect(protocolRefusal(() => receive({ ...EXAMPLES[type], [name]: v }, type)).message).toBe(`${type}.${name}[${i}] is NaN, expected a finite number`);
    }
  });

  it('gradient.grad as an exact-sum encoding (--reduction exact) and as float16 bits (--compress fp16)', () => {
    const exact = wireConfig({ allreduce: 'star', reduction: 'exact' });
    const acc = new ExactAccumulator(paramCount + 1).add(floats(paramCount + 1)).add(floats(paramCount + 1));
    for (const layout of ['packed', 'raw'] as const) {
      const enc = acc.encode(0, paramCount + 1, layout); // may be a view of a larger buffer
      const g = { ...EXAMPLES.gradient, grad: enc };
      const back = receive(g, MSG.GRADIENT, exact) as GradientMessage;
      expect(back.grad).toBeInstanceOf(Uint8Array);
      expect(Buffer.from(back.grad as Uint8Array).equals(Buffer.from(enc))).toBe(true);
    }
    expect(protocolRefusal(() => receive({ ...EXAMPLES.gradient, grad: new Float64Array(paramCount) }, MSG.GRADIENT, exact)).message).toMatch(/gradient\.grad/);

    const fp16 = wireConfig({ allreduce: 'star', compress: 'fp16' });
    const halves = Uint16Array.from({ length: paramCount }, (_, i) => (i * 997) & 0x7bff);
    const g16 = { ...EXAMPLES.gradient, grad: halves };
    expectIntact(receive(g16, MSG.GRADIENT, fp16), g16, 'gradient');
    const nan16 = halves.slice();
    nan16[4] = 0x7e00;
    expect(protocolRefusal(() => receive({ ...g16, grad: nan16 }, MSG.GRADIENT, fp16)).message).toBe('gradient.grad[4] is the float16 NaN 0x7e00, expected a finite number');
  });
});

describe('when a message may come', () => {
  it('coordinator messages other than welcome, error and done are refused before the welcome; a second welcome is refused', () => {
    for (const type of TYPES.filter((t) => MESSAGES[t].from === 'coordinator' && MESSAGES[t].stage === 'welcomed')) {
      const decoded = decodeFrame(encodeMessage(EXAMPLES[type]));
      expect(protocolRefusal(() => parseCoordinatorMessage(decoded, null)).message).toBe(`${type}: received before welcome`);
    }
    expect(parseCoordinatorMessage(decodeFrame(encodeMessage(EXAMPLES.done)), null)).toStrictEqual(EXAMPLES.done);
    expect(parseCoordinatorMessage(decodeFrame(encodeMessage(EXAMPLES.error)), null)).toStrictEqual(EXAMPLES.error);
    expect(protocolRefusal(() => parseCoordinatorMessage(decodeFrame(encodeMessage(EXAMPLES.welcome)), workerLimits(ring))).message).toBe('welcome: a second welcome on the same connection');
  });

  it('every mode-bound message is refused in the other mode, from either side', () => {
    for (const type of TYPES.filter((t) => MESSAGES[t].mode !== undefined)) {
      const other = MESSAGES[type].mode === 'ring' ? star : ring;
      expect(protocolRefusal(() => receive(EXAMPLES[type], type, other)).message).toBe(`${type} from ${MESSAGES[type].from}: not part of --allreduce ${other.allreduce}`);
    }
  });

  it('a side refuses the other side\'s messages as unknown types', () => {
    expect(protocolRefusal(() => parseWorkerMessage(decodeFrame(encodeMessage(EXAMPLES.welcome)), coordinatorLimits(star))).message).toMatch(/message from worker: unknown type 'welcome' \(expected one of hello, /);
    expect(protocolRefusal(() => parseCoordinatorMessage(decodeFrame(encodeMessage(EXAMPLES.hello)), null)).message).toMatch(/message from coordinator: unknown type 'hello'/);
    expect(protocolRefusal(() => parseWorkerMessage({ type: 'constructor' }, coordinatorLimits(star))).message).toMatch(/unknown type 'constructor'/);
  });
});

describe('cross-field rules', () => {
  const served = workerLimits(star);
  const parse = (m: unknown) => () => parseCoordinatorMessage(decodeFrame(encodeMessage(m as Message)), served);
  it('train_data: the chunk ends inside the split, and the pixels match the labels', () => {
    expect(protocolRefusal(parse({ ...EXAMPLES.train_data, offset: 98 })).message).toBe('train_data.labels: expected a Uint8Array of 1..2 labels, got Uint8Array of 3 elements');
    expect(protocolRefusal(parse({ ...EXAMPLES.train_data, offset: 100 })).message).toBe('train_data.offset: expected an integer in [0, 99], got 100');
    expect(protocolRefusal(parse({ ...EXAMPLES.train_data, labels: new Uint8Array(0), images: new Uint8Array(0) })).message).toBe('train_data.labels: expected a Uint8Array of 1..3 labels, got Uint8Array of 0 elements');
    expect(protocolRefusal(parse({ ...EXAMPLES.train_data, images: null })).message).toBe('train_data.images: expected a Uint8Array of 48 bytes, got null');
    expect(protocolRefusal(parse({ ...EXAMPLES.train_data, images: new Uint8Array(47) })).message).toBe('train_data.images: expected a Uint8Array of 48 bytes, got Uint8Array of 47 elements');
    expect(protocolRefusal(() => parseCoordinatorMessage(decodeFrame(encodeMessage(EXAMPLES.train_data)), { ...served, serveData: false })).message).toBe('train_data: unexpected without --serve-data');
  });
  it('ring_listen.position is below size; ring_run.until is past from; adamM and adamV come together', () => {
    const r = workerLimits(ring);
    const p = (m: unknown) => () => parseCoordinatorMessage(decodeFrame(encodeMessage(m as Message)), r);
    expect(protocolRefusal(p({ ...EXAMPLES.ring_listen, size: 3 })).message).toBe('ring_listen.position: expected an integer in [0, 2], got 3');
    expect(protocolRefusal(p({ ...EXAMPLES.ring_listen, size: 3, position: 'first' })).message).toBe("ring_listen.position: expected an integer in [0, 2], got a string of 5 characters");
    expect(protocolRefusal(p({ ...EXAMPLES.ring_run, until: 12 })).message).toBe('ring_run: until (12) must be greater than from (12)');
    const { adamV: _v, ...onlyM } = EXAMPLES.replica;
    expect(protocolRefusal(p(onlyM)).message).toBe('replica: adamM and adamV come together or not at all');
    const { adamM: _m, adamV: _w, ...neither } = EXAMPLES.replica;
    expect(parseCoordinatorMessage(decodeFrame(encodeMessage(neither)), r)).toStrictEqual(neither);
  });
  it('a hello of another version is DDP_VERSION before any field is looked at', () => {
    const err = protocolRefusal(() => parseWorkerMessage(decodeFrame(encodeMessage({ type: 'hello', protocolVersion: 3, tokn: 1 } as never)), coordinatorLimits(star)));
    expect(err.code).toBe('DDP_VERSION');
    expect(err.message).toContain(`worker speaks version 3, this coordinator speaks ${PROTOCOL_VERSION}`);
  });
});
