// The ring executor over real sockets, with scripted in-process workers that speak the ring
// protocol (no tfjs, no peer links: their "replica" is a small vector whose first value counts the
// steps applied, so equal step counts give equal hashes, as real replicas do).
import {
  MSG,
  PROTOCOL_VERSION,
  decodeFrame,
  encodeMessage,
  replicaHash,
  type DataSpec,
  type DdpEvent,
  type Message,
  type RingListenMessage,
  type RingWorkMessage,
} from '@ddp/core';
import { afterEach, describe, expect, it } from 'vitest';
import { WebSocket } from 'ws';
import { CoordinatorServer } from './coordinator-server.js';
import { RingExecutor } from './ring-executor.js';

const P = 32;
const DATA: DataSpec = { dataset: 'mnist', trainCount: 1000, fingerprint: 'f', serveData: false, rows: 28, cols: 28, numClasses: 10 };
type Frame = Record<string, unknown>;

interface Script {
  /** Called on each ring_work; return 'result' (default), 'fail' (ring_failed), 'close' (drop the socket) or 'silent'. */
  onWork?(msg: RingWorkMessage, me: FakeWorker): 'result' | 'fail' | 'close' | 'silent';
  /** Added to the replica after each step: a non-zero value makes this replica diverge. */
  drift?: number;
}

interface FakeWorker {
  rank: number;
  steps: number;
  params: Float32Array;
  received: Frame[];
  /** Steps this replica rolled back on a ring_listen. */
  rolledBack: number;
  ws: WebSocket;
  closed: Promise<number>;
  /** The kinds of messages received, in order. */
  kinds(): string[];
}

async function fakeWorker(port: number, script: Script = {}): Promise<FakeWorker> {
  const ws = new WebSocket(`ws://127.0.0.1:${port}`, { perMessageDeflate: false });
  await new Promise<void>((resolve, reject) => {
    ws.once('open', () => resolve());
    ws.once('error', reject);
  });
  ws.on('error', () => {});
  const send = (m: Message | Frame) => ws.readyState === ws.OPEN && ws.send(encodeMessage(m as Message), { binary: true });
  let before: Float32Array | null = null;
  const me: FakeWorker = {
    rank: -1,
    steps: -1,
    params: new Float32Array(P),
    received: [],
    rolledBack: 0,
    ws,
    closed: new Promise((resolve) => ws.once('close', (code) => resolve(code))),
    kinds: () => me.received.map((m) => String(m.type)),
  };
  const welcomed = new Promise<void>((resolve) => {
    ws.on('message', (data) => {
      const m = decodeFrame(data as Buffer) as Frame;
      if (m.type === 'ping') return send({ type: 'pong', nonce: m.nonce as number });
      me.received.push(m);
      switch (m.type) {
        case 'welcome':
          me.rank = m.rank as number;
          return resolve();
        case 'replica':
          me.steps = m.steps as number;
          me.params = (m.params as Float32Array).slice();
          return;
        case 'ring_listen': {
          const l = m as unknown as RingListenMessage;
          if (me.steps === l.resume + 1 && before) {
            me.params = before; // roll back the uncommitted step
            me.rolledBack += 1;
          }
          me.steps = l.resume;
          return send({ type: MSG.RING_ADDRESS, generation: l.generation, url: `ws://127.0.0.1:${10000 + me.rank}` });
        }
        case 'ring_connect':
          return send({ type: MSG.RING_READY, generation: m.generation as number });
        case 'ring_work': {
          const w = m as unknown as RingWorkMessage;
          const what = script.onWork?.(w, me) ?? 'result';
          if (what === 'close') return ws.terminate();
          if (what === 'silent') return;
          if (what === 'fail') return send({ type: MSG.RING_FAILED, generation: w.generation, step: w.step, code: 'PEER_FAILED', position: 0, message: 'a neighbour failed' });
          before = me.params.slice();
          me.params[0] += 1;
          me.params[1] += script.drift ?? 0;
          me.steps += 1;
          return send({
            type: MSG.RING_RESULT, generation: w.generation, step: w.step, task: w.task, count: w.indices.length, lossSum: w.indices.length,
            hash: replicaHash(me.params), bytesSent: 8 * P, prepareMs: 0, computeMs: 1, allreduceMs: 1, optimizerMs: 0, busyMs: 2, aheadMs: 0, cycleMs: 0,
          });
        }
        case 'fetch':
          return send({
            type: MSG.STATE, request: m.request as number, steps: me.steps, hash: replicaHash(me.params), params: me.params,
            ...(m.optimizer ? { adamM: new Float32Array(P).fill(0.5), adamV: new Float32Array(P).fill(0.25) } : {}),
          });
      }
    });
  });
  send({ type: 'hello', protocolVersion: PROTOCOL_VERSION, token: 'secret', backend: 'fake', host: 'test', pid: 1 });
  await welcomed;
  return me;
}

let servers: CoordinatorServer[] = [];
afterEach(async () => {
  await Promise.all(servers.map((s) => s.close()));
  servers = [];
});

async function setup(maxWorkers: number, opts: Partial<ConstructorParameters<typeof RingExecutor>[1]> = {}) {
  const server = new CoordinatorServer({ port: 0, token: 'secret', maxWorkers, paramCount: P, data: DATA, heartbeatMs: 50, allreduce: 'ring' });
  servers.push(server);
  const events: DdpEvent[] = [];
  const notes: string[] = [];
  const executor = new RingExecutor(server, { workerTimeoutMs: 1000, onEvent: (e) => events.push(e), onInfo: (m) => notes.push(m), formTimeoutMs: 5000, ...opts });
  const port = await server.listen();
  return { server, executor, port, events, notes };
}

const batch = (n: number, from = 0) => Uint32Array.from({ length: n }, (_, i) => from + i);
const sortByRank = (ws: FakeWorker[]) => [...ws].sort((a, b) => a.rank - b.rank);

describe('RingExecutor', () => {
  it('hands out the replica, forms the ring with the members\' addresses, runs steps, fetches the weights', async () => {
    const { executor, port } = await setup(2);
    const workers = sortByRank(await Promise.all([fakeWorker(port), fakeWorker(port)]));
    await executor.waitForWorkers(2, 1000);
    const init = Float32Array.from({ length: P }, (_, i) => i / 7);
    await executor.start(init, { lr: 0.001 });
    const r0 = await executor.step({ step: 0, epoch: 0, batch: batch(64), next: batch(64, 64) });
    const r1 = await executor.step({ step: 1, epoch: 0, batch: batch(64, 64) });
    expect(r0.lossSum).toBe(64);
    expect(r1.hash).not.toBe(r0.hash);
    for (const w of workers) {
      expect(w.kinds()).toEqual(['welcome', 'replica', 'ring_listen', 'ring_connect', 'ring_work', 'ring_work']);
      const listen = w.received[2] as unknown as RingListenMessage;
      expect(listen).toMatchObject({ generation: 0, position: w.rank, size: 2, resume: 0 });
      expect(w.received[3]).toMatchObject({ generation: 0, urls: ['ws://127.0.0.1:10000', 'ws://127.0.0.1:10001'] });
      const work = w.received[4] as unknown as RingWorkMessage;
      expect(Array.from(work.indices)).toEqual(Array.from(batch(32, 32 * w.rank)));
      expect(Array.from(work.next!)).toEqual(Array.from(batch(32, 64 + 32 * w.rank)));
      expect(work.batchSize).toBe(64);
    }
    const fetched = await executor.fetchParams();
    expect(fetched.hash).toBe(r1.hash);
    expect(fetched.params[0]).toBe(init[0] + 2);
    expect(fetched.replicas).toEqual([{ rank: 0, hash: r1.hash }, { rank: 1, hash: r1.hash }]);
    expect(r1.gradientBytes).toBe(8 * P);
  });

  it('replicas that diverge: the step fails with "Mismatched replicas" and every worker gets DDP_MISMATCH', async () => {
    const { executor, port } = await setup(2);
    const workers = await Promise.all([fakeWorker(port), fakeWorker(port, { drift: 1e-3 })]);
    await executor.waitForWorkers(2, 1000);
    await executor.start(new Float32Array(P), { lr: 0.001 });
    await expect(executor.step({ step: 0, epoch: 0, batch: batch(8) })).rejects.toThrow(/Mismatched replicas after step 1: the workers' weights differ \(rank 0: [0-9a-f]{16}; rank 1: [0-9a-f]{16}\).*\(backends: rank 0: fake, rank 1: fake\)/);
    for (const w of workers) {
      expect(await w.closed).toBe(4008);
      expect(w.received.find((m) => m.type === 'error')).toMatchObject({ code: 'DDP_MISMATCH' });
    }
  });

  it('a member lost mid-step after another applied it: re-formed without it, resume rolls the step back, redone once', async () => {
    let killed = false;
    const { executor, port, events, notes } = await setup(3);
    const workers = sortByRank(
      await Promise.all([
        fakeWorker(port),
        fakeWorker(port, { onWork: (w) => (w.step === 1 && !killed ? 'fail' : 'result') }),
        fakeWorker(port, { onWork: (w) => (w.step === 1 ? ((killed = true), 'close') : 'result') }),
      ]),
    );
    await executor.waitForWorkers(3, 1000);
    await executor.start(new Float32Array(P), { lr: 0.001 });
    await executor.step({ step: 0, epoch: 0, batch: batch(63) });
    const r = await executor.step({ step: 1, epoch: 0, batch: batch(64, 63) });
    const lost = events.filter((e) => e.event === 'worker_lost');
    expect(lost).toHaveLength(1);
    expect(lost[0]).toMatchObject({ step: 2, workers: 2 });
    const survivors = workers.filter((w) => w.rank !== (lost[0] as { rank: number }).rank);
    // The script-less worker applied step 1 before the ring broke, and rolled it back.
    expect(survivors.map((w) => w.rolledBack).sort()).toEqual([0, 1]);
    for (const w of survivors) {
      expect(w.steps).toBe(2); // step 1 applied exactly once (a survivor that had applied it rolled it back first)
      const listens = w.received.filter((m) => m.type === 'ring_listen') as unknown as RingListenMessage[];
      expect(listens.at(-1)).toMatchObject({ size: 2, resume: 1 });
      const redo = (w.received.filter((m) => m.type === 'ring_work') as unknown as RingWorkMessage[]).at(-1)!;
      expect(redo.step).toBe(1);
      expect(redo.indices.length).toBe(32);
    }
    expect(r.hash).toBe(replicaHash(survivors[0]!.params));
    expect(notes.some((n) => /step 2: .*re-forming the ring and redoing the step/.test(n))).toBe(true);
    expect((await executor.fetchParams()).params[0]).toBe(2);
  });

  it.each(['ring_listen', 'ring_connect'])('a worker dying on %s while the ring forms: formed again without it, the step runs once', async (dieOn) => {
    const { executor, port, events } = await setup(4);
    const workers = await Promise.all([fakeWorker(port), fakeWorker(port), fakeWorker(port)]);
    await executor.waitForWorkers(3, 1000);
    await executor.start(new Float32Array(P), { lr: 0.001 });
    await executor.step({ step: 0, epoch: 0, batch: batch(9) });
    // A fourth joins; the ring is formed again at the next step, and one of the old members dies in it.
    const late = await fakeWorker(port);
    const victim = sortByRank(workers)[1]!;
    // It dies right after answering that message (its protocol handler was registered first).
    victim.ws.on('message', (data) => {
      if ((decodeFrame(data as Buffer) as Frame).type === dieOn) victim.ws.terminate();
    });
    const r = await executor.step({ step: 1, epoch: 0, batch: batch(9, 9) });
    expect(events.filter((e) => e.event === 'worker_lost')).toMatchObject([{ rank: victim.rank, step: 2 }]);
    const alive = [...workers, late].filter((w) => w !== victim);
    for (const w of alive) expect(w.steps).toBe(2);
    expect(r.hash).toBe(replicaHash(alive[0]!.params));
  });

  it('a ring that keeps failing with nobody lost fails the run after maxAttempts', async () => {
    const { executor, port } = await setup(2, { maxAttempts: 2 });
    await Promise.all([fakeWorker(port), fakeWorker(port, { onWork: () => 'fail' })]);
    await executor.waitForWorkers(2, 1000);
    await executor.start(new Float32Array(P), { lr: 0.001 });
    await expect(executor.step({ step: 0, epoch: 0, batch: batch(8) })).rejects.toThrow(/step 1 failed 2 times in a row with no worker lost; last: the allreduce of ring 1 failed at rank \d \(PEER_FAILED/);
  });

  it('a worker that joins later gets the replica, with Adam state, from a member and joins the ring at the next step', async () => {
    const { executor, port, notes } = await setup(3);
    await Promise.all([fakeWorker(port), fakeWorker(port)]);
    await executor.waitForWorkers(2, 1000);
    await executor.start(new Float32Array(P), { lr: 0.001 });
    await executor.step({ step: 0, epoch: 0, batch: batch(10) });
    const late = await fakeWorker(port);
    expect(late.rank).toBe(2);
    const r = await executor.step({ step: 1, epoch: 0, batch: batch(9) });
    const replica = late.received.find((m) => m.type === 'replica')!;
    expect(replica.steps).toBe(1);
    expect(replica.adamM).toBeInstanceOf(Float32Array);
    expect(late.kinds()).toEqual(['welcome', 'replica', 'ring_listen', 'ring_connect', 'ring_work']);
    expect(late.received[2]).toMatchObject({ generation: 1, position: 2, size: 3, resume: 1 });
    expect(r.hash).toBe(replicaHash(late.params));
    expect(notes).toContain('rank(s) 2 got the replica after step 1 and join the ring');
  });
});
