// The connection protocol with no socket: frames in, replies and outputs out. No tfjs (the members
// are tested in star/ and ring/).
import { randomBytes } from 'node:crypto';
import {
  MSG,
  PROTOCOL_VERSION,
  SEED_CNN_PARAM_COUNT,
  encodeMessage,
  splitFingerprint,
  wireConfig,
  type DataSpec,
  type JobIdentity,
  type Message,
  type Split,
  type WelcomeMessage,
  type WireConfig,
} from '@ddp/core';
import { describe, expect, it } from 'vitest';
import { randomSplit } from '@ddp/core/testing';
import { WORKER_EXIT, WorkerSession } from './worker-session.js';


const frame = (m: Message) => encodeMessage(m);

function spec(train: Split, over: Partial<DataSpec> = {}): DataSpec {
  return { dataset: 'mnist', trainCount: train.count, fingerprint: splitFingerprint(train), testCount: 10, testFingerprint: 'unused: the tests load no test split', serveData: false, rows: 28, cols: 28, numClasses: 10, ...over };
}

const JOB: JobIdentity = { id: 'mnist-1', fingerprint: 'ab'.repeat(32) };

function welcome(data: DataSpec, config: WireConfig = wireConfig({ allreduce: 'star' }), job: JobIdentity = JOB): WelcomeMessage {
  return { type: MSG.WELCOME, protocolVersion: PROTOCOL_VERSION, rank: 1, workers: 2, paramCount: SEED_CNN_PARAM_COUNT, heartbeatMs: 1000, data, config, plan: { seed: 17, batchSize: 4 }, job };
}

function session(train: Split | (() => Split), job?: JobIdentity) {
  const loads: Array<{ spec: DataSpec; dir: string | undefined }> = [];
  const s = new WorkerSession({
    token: 't', backend: 'cpu', host: 'h', pid: 1, dataDir: undefined, job,
    loadTrain: (spec, dir) => {
      loads.push({ spec, dir });
      return typeof train === 'function' ? train() : train;
    },
  });
  return Object.assign(s, { loads });
}

/** The split's samples [from, to) as one train_data chunk. */
function chunk(train: Split, from: number, to: number): Message {
  return { type: MSG.TRAIN_DATA, offset: from, images: train.images.slice(from * 784, to * 784), labels: train.labels.slice(from, to) };
}

const listen = { type: MSG.RING_LISTEN, generation: 0, position: 1, size: 2, group: 'g' } as const;

describe('WorkerSession', () => {
  it('says hello, and once welcomed with its data loaded and checked it is ready: the welcome (config, plan) and the split', () => {
    const train = randomSplit(5);
    const s = session(train);
    expect(s.hello()).toEqual({ type: 'hello', protocolVersion: PROTOCOL_VERSION, token: 't', backend: 'cpu', host: 'h', pid: 1 });
    const w = welcome(spec(train, { dataDir: '/data/here', limitTrain: 5 }), wireConfig({ allreduce: 'ring', compress: 'fp16', hashEvery: 9 }));
    const out = s.receive(frame(w));
    expect(out.replies).toEqual([]);
    expect(out.end).toBeUndefined();
    expect(out.welcomed).toEqual(w);
    expect(out.ready?.welcome).toEqual(w);
    expect(out.ready?.welcome.config).toEqual({ allreduce: 'ring', compress: 'fp16', reduction: 'fast', hashEvery: 9 });
    expect(out.ready?.welcome.plan).toEqual({ seed: 17, batchSize: 4 });
    expect(out.ready?.train).toBe(train);
    expect(s.loads).toEqual([{ spec: w.data, dir: '/data/here' }]);
    expect(s.welcome).toEqual(w);
  });

  it('mode messages go out as `member`: work in star mode, the ring messages in ring mode; the other mode\'s are refused', () => {
    const train = randomSplit(3);
    const work = { type: MSG.WORK, step: 2, epoch: 0, task: 5, params: new Float32Array(SEED_CNN_PARAM_COUNT), indices: Uint32Array.from([2, 0]) } as const;

    const star = session(train);
    star.receive(frame(welcome(spec(train))));
    expect(star.receive(frame(work))).toEqual({ replies: [], member: work });
    const refusedRing = star.receive(frame(listen));
    expect(refusedRing.end).toMatchObject({ exitCode: WORKER_EXIT.FAILED, code: 'DDP_BAD_MESSAGE' });
    expect(refusedRing.end?.message).toMatch(/ring_listen from coordinator: not part of --allreduce star/);

    const ring = session(train);
    ring.receive(frame(welcome(spec(train), wireConfig({ allreduce: 'ring' }))));
    const run = { type: MSG.RING_RUN, generation: 0, from: 0, until: 3 } as const;
    const fetch = { type: MSG.FETCH, request: 1, steps: 0, optimizer: true } as const;
    for (const m of [listen, run, { type: MSG.RING_STOP, generation: 0 } as const, fetch]) expect(ring.receive(frame(m))).toEqual({ replies: [], member: m });
    const refusedWork = ring.receive(frame(work));
    expect(refusedWork.replies).toEqual([{ type: 'error', code: 'DDP_BAD_MESSAGE', message: expect.stringMatching(/work from coordinator: not part of --allreduce ring/) }]);
    expect(refusedWork.end?.code).toBe('DDP_BAD_MESSAGE');
  });

  it('--serve-data: assembles the split from the train_data chunks in order, ready once the last one is in (the local copy is not loaded)', () => {
    const train = randomSplit(7);
    const s = session(() => {
      throw new Error('must not load');
    });
    const w = welcome(spec(train, { serveData: true }));
    const first = s.receive(frame(w));
    expect(first).toEqual({ replies: [], welcomed: w });
    expect(s.receive(frame(chunk(train, 0, 3)))).toEqual({ replies: [] });
    expect(s.receive(frame(chunk(train, 3, 4)))).toEqual({ replies: [] });
    const done = s.receive(frame(chunk(train, 4, 7)));
    expect(done.replies).toEqual([]);
    expect(done.ready?.welcome).toEqual(w);
    const got = done.ready!.train;
    expect({ count: got.count, rows: got.rows, cols: got.cols }).toEqual({ count: 7, rows: 28, cols: 28 });
    expect(Buffer.from(got.images).equals(Buffer.from(train.images))).toBe(true);
    expect(Buffer.from(got.labels).equals(Buffer.from(train.labels))).toBe(true);
    expect(s.loads).toEqual([]);
    // A chunk after the split was complete is a protocol violation.
    const late = s.receive(frame(chunk(train, 0, 1)));
    expect(late.end).toMatchObject({ code: 'DDP_BAD_MESSAGE', message: 'DDP_BAD_MESSAGE: train_data after the training split was complete' });
  });

  it('--serve-data: a split that does not match the fingerprint ends the session with DDP_DATASET', () => {
    const train = randomSplit(4);
    const s = session(train);
    s.receive(frame(welcome(spec(train, { serveData: true }))));
    const sent = { ...train, images: train.images.slice() };
    sent.images[5 + 784 * 3] ^= 0x40;
    s.receive(frame(chunk(sent, 0, 2)));
    const out = s.receive(frame(chunk(sent, 2, 4)));
    expect(out.end).toMatchObject({ exitCode: WORKER_EXIT.FAILED, code: 'DDP_DATASET' });
    expect(out.replies).toEqual([{ type: 'error', code: 'DDP_DATASET', message: expect.stringMatching(/^the training data sent by the coordinator does not match its fingerprint/) }]);
    expect(out.ready).toBeUndefined();
  });

  it('--serve-data: a chunk out of order ends the session with DDP_DATASET, naming the offsets', () => {
    const train = randomSplit(4);
    const s = session(train);
    s.receive(frame(welcome(spec(train, { serveData: true }))));
    s.receive(frame(chunk(train, 0, 2)));
    const out = s.receive(frame(chunk(train, 3, 4)));
    expect(out.end?.code).toBe('DDP_DATASET');
    expect(out.end?.message).toBe('DDP_DATASET: train_data: samples from 3 arrived, expected from 2');
  });

  it('--serve-data: a mode message before the split is complete ends the session with DDP_BAD_MESSAGE', () => {
    const train = randomSplit(4);
    const s = session(train);
    s.receive(frame(welcome(spec(train, { serveData: true }), wireConfig({ allreduce: 'ring' }))));
    s.receive(frame(chunk(train, 0, 2)));
    expect(s.receive(frame({ type: MSG.PING, nonce: 3 })).replies).toEqual([{ type: 'pong', nonce: 3 }]); // pings are fine meanwhile
    const out = s.receive(frame(listen));
    expect(out.member).toBeUndefined();
    expect(out.end).toMatchObject({ code: 'DDP_BAD_MESSAGE', message: 'DDP_BAD_MESSAGE: ring_listen before the training split was complete (--serve-data)' });
    expect(out.replies).toEqual([{ type: 'error', code: 'DDP_BAD_MESSAGE', message: 'ring_listen before the training split was complete (--serve-data)' }]);
  });

  it('train_data without --serve-data is refused (DDP_BAD_MESSAGE)', () => {
    const train = randomSplit(2);
    const s = session(train);
    s.receive(frame(welcome(spec(train))));
    expect(s.receive(frame(chunk(train, 0, 1))).end?.message).toMatch(/train_data: unexpected without --serve-data/);
  });

  it('answers ping with pong and ends with exit 0 on done', () => {
    const train = randomSplit(3);
    const s = session(train);
    s.receive(frame(welcome(spec(train))));
    expect(s.receive(frame({ type: MSG.PING, nonce: 77 })).replies).toEqual([{ type: 'pong', nonce: 77 }]);
    expect(s.receive(frame({ type: MSG.DONE, reason: 'finished' })).end).toEqual({ exitCode: WORKER_EXIT.DONE, message: 'done: finished' });
    expect(s.end).toEqual({ exitCode: WORKER_EXIT.DONE, message: 'done: finished' });
  });

  it('a refusal at the handshake ends with exit 3 and says why; an error later, with exit 1', () => {
    const s = session(randomSplit(3));
    const end = s.receive(frame({ type: MSG.ERROR, code: 'DDP_AUTH', message: 'wrong token' })).end;
    expect(end).toEqual({ exitCode: WORKER_EXIT.REFUSED, message: 'refused by the coordinator: DDP_AUTH: wrong token' });
    const train = randomSplit(3);
    const later = session(train);
    later.receive(frame(welcome(spec(train), wireConfig({ allreduce: 'ring' }))));
    expect(later.receive(frame({ type: MSG.ERROR, code: 'DDP_MISMATCH', message: 'Mismatched replicas' })).end).toEqual({
      exitCode: WORKER_EXIT.FAILED,
      message: 'the coordinator ended the connection: DDP_MISMATCH: Mismatched replicas',
    });
  });

  it('refuses to train on a different copy of the data set (DDP_DATASET), or one it cannot load', () => {
    const train = randomSplit(4);
    const other = { ...train, images: train.images.slice() };
    other.images[100] ^= 1;
    const out = session(other).receive(frame(welcome(spec(train))));
    expect(out.end?.exitCode).toBe(WORKER_EXIT.FAILED);
    expect(out.replies[0]).toMatchObject({ type: 'error', code: 'DDP_DATASET' });
    expect(out.end?.message).toMatch(/different content/);
    expect(out.ready).toBeUndefined();
    const short = session(randomSplit(3)).receive(frame(welcome(spec(train))));
    expect(short.end?.message).toMatch(/the coordinator has 4 training images of 28x28, this worker 3/);
    const missing = session(() => {
      throw new Error('no such file');
    }).receive(frame(welcome(spec(train, { dataDir: '/nowhere' }))));
    expect(missing.end?.code).toBe('DDP_DATASET');
    expect(missing.end?.message).toMatch(/cannot load mnist from \/nowhere: no such file \(or let the coordinator send the pixels: --serve-data\)/);
  });

  it('a welcome for another model size ends the session (DDP_BAD_MESSAGE)', () => {
    const train = randomSplit(2);
    const out = session(train).receive(frame({ ...welcome(spec(train)), paramCount: 10 }));
    expect(out.end?.code).toBe('DDP_BAD_MESSAGE');
    expect(out.end?.message).toMatch(/the coordinator's model has 10 parameters, this worker's seed CNN has 93322/);
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

  it('a close without done or a close status of the coordinator\'s is a lost coordinator (exit 1, `lost`); before the welcome with a DDP code, a refusal (exit 3)', () => {
    const train = randomSplit(3);
    const s = session(train);
    s.receive(frame(welcome(spec(train))));
    expect(s.closed(1006, '')).toEqual({ exitCode: WORKER_EXIT.FAILED, message: 'lost the coordinator (the connection closed: code 1006)', lost: true });
    const restarting = session(train);
    restarting.receive(frame(welcome(spec(train))));
    expect(restarting.closed(1012, 'restart')).toMatchObject({ exitCode: WORKER_EXIT.FAILED, lost: true });
    expect(session(train).closed(4001, 'DDP_AUTH')).toEqual({
      exitCode: WORKER_EXIT.REFUSED,
      message: 'the coordinator closed the connection before the handshake ended (DDP_AUTH)',
    });
    // Gone before the welcome: also a lost coordinator (whether that is retried is rejoin.ts's call).
    expect(session(train).closed(1006, '')).toEqual({ exitCode: WORKER_EXIT.FAILED, message: 'the coordinator closed the connection before the handshake ended (code 1006)', lost: true });
  });

  it('a close with the coordinator\'s own status (a DDP code, or a normal close) is not a lost coordinator', () => {
    const train = randomSplit(3);
    for (const code of [1000, 4005, 4008]) {
      const s = session(train);
      s.receive(frame(welcome(spec(train))));
      const end = s.closed(code, '');
      expect(end?.exitCode).toBe(WORKER_EXIT.FAILED);
      expect(end?.lost).toBeUndefined();
    }
    // After done, the close changes nothing.
    const done = session(train);
    done.receive(frame(welcome(spec(train))));
    done.receive(frame({ type: MSG.DONE, reason: 'finished' }));
    expect(done.closed(1006, '')).toBeNull();
    expect(done.end).toEqual({ exitCode: WORKER_EXIT.DONE, message: 'done: finished' });
  });

  it('rejoining: the hello names the job of the first welcome (the coordinator refuses another job); the first hello names none', () => {
    expect(session(randomSplit(1)).hello()).not.toHaveProperty('job');
    expect(session(randomSplit(1), JOB).hello()).toEqual({ type: 'hello', protocolVersion: PROTOCOL_VERSION, token: 't', backend: 'cpu', host: 'h', pid: 1, job: JOB });
    // Its refusal is a refusal: exit 3.
    const s = session(randomSplit(1), JOB);
    expect(s.receive(frame({ type: MSG.ERROR, code: 'DDP_JOB_CHANGED', message: 'this coordinator serves another job' })).end).toEqual({
      exitCode: WORKER_EXIT.REFUSED,
      message: 'refused by the coordinator: DDP_JOB_CHANGED: this coordinator serves another job',
    });
  });

  it('rejoining: a welcome of the same job is taken; another job id or fingerprint ends with DDP_JOB_CHANGED and exit 3, before any data is loaded', () => {
    const train = randomSplit(3);
    const same = session(train, { ...JOB });
    const ok = same.receive(frame(welcome(spec(train))));
    expect(ok.welcomed).toBeDefined();
    expect(ok.ready).toBeDefined();
    for (const other of [{ ...JOB, id: 'mnist-2' }, { ...JOB, fingerprint: 'cd'.repeat(32) }]) {
      const s = session(train, JOB);
      const out = s.receive(frame(welcome(spec(train), undefined, other)));
      expect(out.end).toMatchObject({ exitCode: WORKER_EXIT.REFUSED, code: 'DDP_JOB_CHANGED' });
      expect(out.end?.message).toMatch(/^DDP_JOB_CHANGED: the coordinator now serves another job \(job \S+, fingerprint \w+…\) than the one this worker joined \(job mnist-1, fingerprint abababababab…\)/);
      expect(out.end?.message).toContain(`job ${other.id}`);
      expect(out.replies).toEqual([{ type: 'error', code: 'DDP_JOB_CHANGED', message: expect.stringContaining('another job') }]);
      expect(out.welcomed).toBeUndefined();
      expect(out.ready).toBeUndefined();
      expect(s.loads).toEqual([]);
      expect(s.welcome).toBeNull();
    }
    // Without a job to hold to (the first connection), any job is taken.
    expect(session(train).receive(frame(welcome(spec(train), undefined, { id: 'x', fingerprint: 'y' }))).ready).toBeDefined();
  });
});
