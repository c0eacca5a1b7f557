/**
 * Against a real coordinator process (star mode): malformed, oversized, wrong-version and
 * unauthenticated connections are refused with a clear error and a close status, a member that sends a
 * malformed gradient is disconnected mid-run, and through all of it the coordinator keeps serving its
 * real worker and completes the run.
 */
import { PROTOCOL_VERSION, SEED_CNN_PARAM_COUNT, decodeFrame, encodeMessage, type Message } from '@ddp/core';
import { describe, expect, it } from 'vitest';
import { WebSocket } from 'ws';
import { bitwiseEqual, readWeights, startCoordinator, startWorker, stepNumbers, tmpDir } from './distributed-helpers.js';
import { loadTrain, referenceStart, referenceSteps } from './reference.js';

type Frame = Record<string, unknown>;

interface Peer {
  ws: WebSocket;
  frames: Frame[];
  closed: Promise<{ code: number; reason: string }>;
  send(m: Frame | Uint8Array | string): void;
}

async function connect(url: string): Promise<Peer> {
  const ws = new WebSocket(url, { perMessageDeflate: false });
  await new Promise<void>((resolve, reject) => {
    ws.once('open', () => resolve());
    ws.once('error', reject);
  });
  ws.on('error', () => {});
  const frames: Frame[] = [];
  ws.on('message', (d) => frames.push(decodeFrame(d as Buffer) as Frame));
  const closed = new Promise<{ code: number; reason: string }>((resolve) => ws.once('close', (code, r) => resolve({ code, reason: r.toString() })));
  return {
    ws,
    frames,
    closed,
    send: (m) => (typeof m === 'string' ? ws.send(m) : ws.send(m instanceof Uint8Array ? m : encodeMessage(m as unknown as Message), { binary: true })),
  };
}

const hello = (token: string, over: Frame = {}): Frame => ({ type: 'hello', protocolVersion: PROTOCOL_VERSION, token, backend: 'test', host: 'e2e', pid: process.pid, ...over });
const TOKEN = 'e2e-protocol-token';
const STEPS = 10;
// --reduction fast: the weights are checked against the in-process fast reference (float32 gradients on the wire).
const JOB = ['--allreduce', 'star', '--max-steps', String(STEPS), '--batch-size', '64', '--seed', '42', '--limit-train', '6400', '--limit-test', '200', '--backend', 'wasm', '--reduction', 'fast'];

describe('a real coordinator refuses bad peers and goes on serving', () => {
  it('refuses unauthenticated, wrong-version, malformed and oversized connections; drops a member with a bad gradient; completes the run', async () => {
    const out = tmpDir();
    const { coord, url } = await startCoordinator(['--workers', '2', ...JOB, '--out', out], { DDP_TOKEN: TOKEN });
    const real = startWorker(url, ['--backend', 'wasm'], { DDP_TOKEN: TOKEN });
    await coord.waitForEvent((e) => e.event === 'worker_joined');

    const cases: Array<[string, Frame | Uint8Array | string, string | null, number, RegExp]> = [
      ['no token', hello(''), 'DDP_AUTH', 4001, /requires a token/],
      ['a wrong token', hello('guess'), 'DDP_AUTH', 4001, /wrong token/],
      ['another protocol version', hello(TOKEN, { protocolVersion: PROTOCOL_VERSION + 1 }), 'DDP_VERSION', 4002, /protocol version mismatch/],
      ['undecodable bytes (a truncated map)', new Uint8Array([0x82, 0xa4, 0x74]), 'DDP_BAD_MESSAGE', 4000, /undecodable frame of 3 bytes/],
      ['a hello with a missing field', { type: 'hello', protocolVersion: PROTOCOL_VERSION, token: TOKEN }, 'DDP_BAD_MESSAGE', 4000, /hello: missing field 'backend'/],
      // One gradient's worth plus 64 KB: over maxPayload. ws closes with 1009 before anything else.
      ['an oversized frame', new Uint8Array(SEED_CNN_PARAM_COUNT * 4 + 65536), null, 1009, /./],
    ];
    for (const [what, first, code, closeCode, pattern] of cases) {
      const peer = await connect(url);
      peer.send(first);
      const closed = await peer.closed;
      expect(closed.code, what).toBe(closeCode);
      if (code) {
        expect(peer.frames, what).toHaveLength(1);
        expect(peer.frames[0], what).toMatchObject({ type: 'error', code });
        expect(String(peer.frames[0].message), what).toMatch(pattern);
      }
    }

    // The ddp worker itself, with a wrong token: a clear message and exit code 3.
    const refused = await startWorker(url, ['--backend', 'wasm'], { DDP_TOKEN: 'wrong' }).exit;
    expect(refused.code).toBe(3);

    // A member that authenticates properly, then answers its first work order with a short gradient.
    const bad = await connect(url);
    bad.ws.on('message', (d) => {
      const m = decodeFrame(d as Buffer) as Frame;
      if (m.type === 'work') {
        bad.send({ type: 'gradient', step: m.step, task: m.task, count: (m.indices as Uint32Array).length, lossSum: 1, grad: new Float32Array(10), computeMs: 1, busyMs: 1 });
      }
    });
    bad.send(hello(TOKEN));
    const badClose = await bad.closed;
    expect(badClose.code).toBe(4000);
    expect(bad.frames.find((f) => f.type === 'error')).toMatchObject({ code: 'DDP_BAD_MESSAGE' });

    const c = await coord.exit;
    expect(c.code, coord.stderr()).toBe(0);
    expect((await real.exit).code).toBe(0);
    expect(stepNumbers(coord.events())).toEqual(Array.from({ length: STEPS }, (_, i) => i + 1));
    const lost = coord.events().filter((e) => e.event === 'worker_lost');
    expect(lost).toHaveLength(1);
    expect(lost[0]).toMatchObject({ step: 1, workers: 1, code: 'DDP_BAD_MESSAGE' });
    expect(String(lost[0].reason)).toMatch(/^gradient\.grad: expected a Float32Array of 93322 values, got Float32Array of 10/);
    // Each refusal is logged on the coordinator's stderr with its code.
    const log = coord.stderr();
    for (const code of ['DDP_AUTH', 'DDP_VERSION', 'DDP_BAD_MESSAGE', 'DDP_TOO_LARGE']) expect(log).toMatch(new RegExp(`refused a connection from .*: ${code}`));

    // Step 1 ran as 2 shards (the bad member's recomputed by the real worker), the rest as 1.
    const train = loadTrain(6400);
    const ref = await referenceStart(42);
    await referenceSteps(ref, train, 42, 1, 2);
    await referenceSteps(ref, train, 42, STEPS - 1, 1);
    expect(bitwiseEqual(readWeights(out), ref.params)).toBe(true);
  }, 180_000);

  it('ddp worker says why it was refused and exits 3; without a coordinator it gives up after --connect-timeout', async () => {
    const { coord, url } = await startCoordinator(['--workers', '1', ...JOB], { DDP_TOKEN: TOKEN });
    const w = startWorker(url, [], { DDP_TOKEN: 'not-it' });
    expect((await w.exit).code).toBe(3);
    expect(w.stderr()).toMatch(/ddp worker: refused by the coordinator: DDP_AUTH: wrong token/);
    coord.proc.kill('SIGKILL');
    await coord.exit;
    const t0 = Date.now();
    const orphan = startWorker(url, ['--connect-timeout', '1.5']);
    expect((await orphan.exit).code).toBe(1);
    expect(Date.now() - t0).toBeGreaterThanOrEqual(1400);
    expect(orphan.stderr()).toMatch(/could not connect to ws:\/\/127\.0\.0\.1:\d+ within 2 s \(--connect-timeout\); last error: ECONNREFUSED/);
  }, 60_000);
});
