/**
 * WsTransport over real sockets on 127.0.0.1: the shared Transport conformance suite
 * (core/src/allreduce/transport-conformance.ts) for N = 2..4, with the default chunk size and with
 * 1 KiB chunks (so messages travel in many frames); the allreduce conformance for N = 2..4
 * (bitwise the result the same algorithm gives over the in-memory transport, which core's suite
 * checks against the float64 sum, plus our own float64 bound); and what only sockets have: links,
 * topologies, handshakes, malformed frames, heartbeats, closing.
 */
import { CollectiveError, createMemoryTransports, ringAllreduce, starAllreduce, type AllreduceOptions, type Transport } from '@ddp/core';
import { transportConformance, type MakeConformanceGroup } from '@ddp/core/testing';
import { createHash } from 'node:crypto';
import { createServer, type AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { WebSocket } from 'ws';
import { createLocalPeerGroup } from './local-peer-group.js';
import { PeerEndpoint } from './peer-endpoint.js';
import { helloHeaders } from './peer-handshake.js';
import { decodeHeaderFrame, encodeDataHeader, FRAME_KIND } from './peer-frame.js';
import { PEER_CLOSE, type WsTransport } from './ws-transport.js';

/** A full mesh, so that every member can reach every other as the suite expects. */
const wsGroup =
  (chunkBytes?: number): MakeConformanceGroup =>
  async (n, { recvTimeoutMs }) => {
    const ts = await createLocalPeerGroup(n, { topology: 'full', recvTimeoutMs, chunkBytes });
    return {
      transports: ts,
      kill: (rank) => ts[rank]!.destroy(),
      close: async () => {
        await Promise.all(ts.map((t) => t.close()));
      },
    };
  };

transportConformance('WebSocket', wsGroup());
transportConformance('WebSocket (1 KiB chunks)', wsGroup(1024));

type Allreduce = (t: Transport, data: Float32Array, opts?: AllreduceOptions) => Promise<Float32Array>;
const ALGOS: Record<'star' | 'ring', Allreduce> = { star: starAllreduce, ring: ringAllreduce };

function randomInputs(ranks: number, length: number): Float32Array[] {
  return Array.from({ length: ranks }, () => {
    const x = new Float32Array(length);
    for (let i = 0; i < length; i++) x[i] = (Math.random() - 0.5) * 10 ** (-3 + 5 * Math.random());
    return x;
  });
}

const bits = (a: Float32Array) => new Uint32Array(a.buffer, a.byteOffset, a.length);
function firstMismatch(a: Float32Array, b: Float32Array): number {
  if (a.length !== b.length) return Math.min(a.length, b.length);
  const [x, y] = [bits(a), bits(b)];
  for (let i = 0; i < x.length; i++) if (x[i] !== y[i]) return i;
  return -1;
}

async function settleAll<T>(ps: Promise<T>[]): Promise<PromiseSettledResult<T>[]> {
  return Promise.allSettled(ps);
}

function expectRejection(s: PromiseSettledResult<unknown>, code: string, rank: number, text?: RegExp): CollectiveError {
  expect(s.status).toBe('rejected');
  const err = (s as PromiseRejectedResult).reason as CollectiveError;
  expect(err).toBeInstanceOf(CollectiveError);
  expect([err.code, err.rank], err.message).toEqual([code, rank]);
  if (text) expect(err.message).toMatch(text);
  return err;
}

describe.each([2, 3, 4])('allreduce conformance over WebSockets, N = %i', (n) => {
  let group: WsTransport[];
  // N = 3 uses the smallest chunk so that every vector above 256 floats travels in many frames.
  beforeAll(async () => {
    group = await createLocalPeerGroup(n, { topology: ['ring', 'star'], chunkBytes: n === 3 ? 1024 : undefined });
  });
  afterAll(async () => {
    await Promise.all(group.map((t) => t.close()));
  });

  const cases: Array<['star' | 'ring', 'none' | 'fp16', number]> = [];
  for (const algo of ['star', 'ring'] as const) for (const compress of ['none', 'fp16'] as const) for (const len of [1, 7, 93322, 100003]) cases.push([algo, compress, len]);

  it.each(cases)('%s %s length %i: same bits on every rank as over the in-memory transport', async (algo, compress, length) => {
    const inputs = randomInputs(n, length);
    const copies = inputs.map((x) => x.slice());
    const got = await Promise.all(group.map((t, r) => ALGOS[algo](t, inputs[r]!, { compress })));
    const mem = createMemoryTransports(n);
    const want = await Promise.all(mem.map((t, r) => ALGOS[algo](t, copies[r]!, { compress })));
    inputs.forEach((x, r) => expect(firstMismatch(x, copies[r]!), `rank ${r}'s input was modified`).toBe(-1));
    got.forEach((res, r) => expect(firstMismatch(res, want[0]!), `${algo} ${compress} N=${n} length=${length}: rank ${r} first differing index`).toBe(-1));
    // Independent check against the float64 sum: (N-1) u S for float32, plus 2^-11 per fp16 rounding.
    const u = 2 ** -24;
    for (let i = 0; i < length; i += Math.max(1, Math.floor(length / 5000))) {
      let sum = 0;
      let abs = 0;
      for (const x of copies) {
        sum += x[i]!;
        abs += Math.abs(x[i]!);
      }
      const tol = 1.01 * (compress === 'fp16' ? (n + 1) * (2 ** -11 * abs + 2 ** -25) + (n - 1) * u * abs : (n - 1) * u * abs);
      if (Math.abs(got[0]![i]! - sum) > tol) expect.fail(`element ${i}: ${got[0]![i]} vs float64 ${sum}, tolerance ${tol}`);
    }
  });
});

describe('WsTransport links', () => {
  it('keeps frames that arrive in the same TCP read as the upgrade answer', async () => {
    // A listener (rank 0) that answers the upgrade and sends a whole message in one write, as a
    // fast peer on another process can: the dialler must already be listening when ws emits them.
    const frame = (payload: Uint8Array): Buffer => Buffer.concat([Buffer.from([0x82, payload.byteLength]), payload]); // FIN+binary, unmasked, < 126 bytes
    const server = createServer((socket) => {
      socket.once('data', (req) => {
        const key = /sec-websocket-key: (\S+)/i.exec(req.toString())![1]!;
        const accept = createHash('sha1').update(`${key}258EAFA5-E914-47DA-95CA-C5AB0DC85B11`).digest('base64');
        socket.write(
          Buffer.concat([
            Buffer.from(`HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: ${accept}\r\nX-Ddp-Peer-Rank: 0\r\n\r\n`),
            frame(encodeDataHeader('early', 3)),
            frame(Uint8Array.of(7, 8, 9)),
          ]),
        );
      });
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    const ep = await PeerEndpoint.listen({ rank: 1, size: 2, token: 't', topology: 'ring', recvTimeoutMs: 3000 });
    const t = await ep.connect([`ws://127.0.0.1:${(server.address() as AddressInfo).port}`, ep.url]);
    expect([...(await t.recv(0, 'early'))]).toEqual([7, 8, 9]);
    t.destroy();
    await ep.close();
    server.close();
  });
});

describe('WsTransport failures', () => {
  it('fails every rank, including those not linked to it, when a member dies mid-ring', async () => {
    const ts = await createLocalPeerGroup(4, { topology: 'ring' });
    const inputs = randomInputs(4, 5000);
    // Rank 2 never joins the allreduce and then dies; rank 0 is not linked to rank 2.
    const running = settleAll([0, 1, 3].map((r) => ringAllreduce(ts[r]!, inputs[r]!)));
    await new Promise((r) => setTimeout(r, 100));
    ts[2]!.destroy();
    const settled = await running;
    for (const s of settled) expectRejection(s, 'PEER_FAILED', 2, /rank 2 failed/);
    expect(((settled[0] as PromiseRejectedResult).reason as Error).message).toMatch(/^rank 0 recv\(from 3, "allreduce\/ring\/rs\/\d"\): rank 2 failed \(its link to rank [13] was lost: close code 1006/);
    await expect(ts[0]!.send(1, 'later', new Uint8Array(1))).rejects.toMatchObject({ code: 'PEER_FAILED', rank: 2 });
    await Promise.all(ts.map((t) => t.close()));
  });

  it('fails the group when a peer closes its transport while another waits for it, and not before', async () => {
    const ts = await createLocalPeerGroup(2, { topology: 'ring' });
    await ts[1]!.send(0, 'last words', Uint8Array.of(42));
    await ts[1]!.close();
    expect([...(await ts[0]!.recv(1, 'last words'))]).toEqual([42]); // sent before the close: still delivered
    await expect(ts[0]!.recv(1, 'more')).rejects.toMatchObject({ code: 'PEER_FAILED', rank: 1, message: expect.stringMatching(/closed its transport while rank 0 waited for "more"/) });
    await expect(ts[1]!.recv(0, 'x')).rejects.toMatchObject({ code: 'TRANSPORT_CLOSED', rank: 1 });
    await ts[0]!.close();
  });

  it('rejects a dialler with the wrong token, and the listener times out saying so', async () => {
    const common = { size: 2, group: 'g', topology: 'ring' as const, connectTimeoutMs: 1500 };
    const e0 = await PeerEndpoint.listen({ ...common, rank: 0, token: 'right' });
    const e1 = await PeerEndpoint.listen({ ...common, rank: 1, token: 'wrong' });
    const urls = [e0.url, e1.url];
    const [s0, s1] = await settleAll([e0.connect(urls), e1.connect(urls)]);
    expectRejection(s1!, 'PEER_FAILED', 0, /rank 0 at ws:\/\/127\.0\.0\.1:\d+\/ refused the link: HTTP 401: wrong or missing token/);
    expectRejection(s0!, 'RECV_TIMEOUT', 1, /no link to rank\(s\) 1 within 1500 ms; refused meanwhile: .*wrong or missing token/);
    await Promise.all([e0.close(), e1.close()]);
  });

  it('refuses a member of another group and a dialler that reached the wrong rank', async () => {
    const e0 = await PeerEndpoint.listen({ rank: 0, size: 3, token: 't', group: 'job-1', topology: 'full', connectTimeoutMs: 1000 });
    const other = await PeerEndpoint.listen({ rank: 1, size: 3, token: 't', group: 'job-2', topology: 'full', connectTimeoutMs: 1000 });
    const s = await settleAll([other.connect([e0.url, other.url, 'ws://127.0.0.1:9'])]);
    expectRejection(s[0]!, 'PEER_FAILED', 0, /HTTP 409: group 'job-2' of size 3, but rank 0 is in group 'job-1'/);
    // A stale address list: rank 2 dials rank 1's slot but reaches rank 0.
    const e2 = await PeerEndpoint.listen({ rank: 2, size: 3, token: 't', group: 'job-1', topology: 'ring', connectTimeoutMs: 1000 });
    const s2 = await settleAll([e2.connect([e0.url, e0.url, e2.url])]);
    expectRejection(s2[0]!, 'PEER_FAILED', 1, /answered as rank 0, not 1|HTTP 409/);
    await Promise.all([e0.close(), other.close(), e2.close()]);
  });

  /** Dials `ep` as `rank` with good credentials and returns the raw socket. */
  async function rawPeer(ep: PeerEndpoint, rank: number, size: number, token: string, opts: { autoPong?: boolean } = {}): Promise<WebSocket> {
    const ws = new WebSocket(ep.url, { headers: helloHeaders({ token, rank, size, group: 'raw' }), autoPong: opts.autoPong ?? true });
    await new Promise((resolve, reject) => {
      ws.once('open', resolve);
      ws.once('error', reject);
    });
    return ws;
  }

  it('fails the group, naming the sender, on a malformed frame and on an oversized message, and tells the sender so', async () => {
    for (const [what, frame, code, text] of [
      ['garbage', Uint8Array.of(9, 9, 9), 'PEER_FAILED', /rank 1 failed \(it sent rank 0 a malformed frame: header frame of 3 bytes/],
      ['unknown kind', Uint8Array.of(7, 0, 0, 0, 0, 0, 0, 0), 'PEER_FAILED', /malformed frame: unknown frame kind 7/],
      ['oversized', encodeDataHeader('big', 4097), 'PAYLOAD_SIZE', /rank 1 announced a message "big" of 4097 bytes to rank 0, over the limit of 4096/],
    ] as const) {
      const ep = await PeerEndpoint.listen({ rank: 0, size: 2, token: 't', group: 'raw', maxMessageBytes: 4096 });
      const connecting = ep.connect([ep.url, 'ws://unused']);
      const raw = await rawPeer(ep, 1, 2, 't');
      const t = await connecting;
      const told: Buffer[] = [];
      raw.on('message', (data: Buffer) => told.push(data));
      const closed = new Promise<number>((resolve) => raw.once('close', (closeCode: number) => resolve(closeCode)));
      const pending = t.recv(1, 'anything');
      raw.send(frame);
      const [s] = await settleAll([pending]);
      expectRejection(s!, code, 1, text);
      // The failed member passes the failure on before closing the link: a FAILURE frame naming
      // the sender, then close code 4000 (what its other peers, were there any, would get too).
      expect(await closed, `${what}: close code`).toBe(PEER_CLOSE.GROUP_FAILED);
      expect(told.length, `${what}: frames the sender was told`).toBe(1);
      expect(decodeHeaderFrame(told[0]!), what).toMatchObject({ kind: FRAME_KIND.FAILURE, code, rank: 1 });
      raw.terminate();
      await ep.close();
    }
  });

  it('fails the group when a linked peer stops answering heartbeats', async () => {
    const ep = await PeerEndpoint.listen({ rank: 0, size: 2, token: 't', group: 'raw', heartbeatMs: 50 });
    const connecting = ep.connect([ep.url, 'ws://unused']);
    const raw = await rawPeer(ep, 1, 2, 't', { autoPong: false });
    const t = await connecting;
    const [s] = await settleAll([t.recv(1, 'never')]);
    expectRejection(s!, 'PEER_FAILED', 1, /rank 1 failed \(silent for \d+ ms on its link to rank 0; heartbeat every 50 ms\)/);
    raw.terminate();
    await ep.close();
  });

  it('rejects a pending connect at once when the endpoint is closed, and stops dialling', async () => {
    // Were it to wait for the connect timeout instead, it would end with 'PEER_FAILED' (unreachable),
    // and only after 60 s, past this test's own time limit.
    const ep = await PeerEndpoint.listen({ rank: 1, size: 2, token: 't', connectTimeoutMs: 60_000 });
    const dead = await PeerEndpoint.listen({ rank: 0, size: 2, token: 't' });
    const url = dead.url;
    await dead.close(); // nobody listens there any more: rank 1 keeps retrying
    const linking = ep.connect([url, ep.url]);
    await new Promise((r) => setTimeout(r, 100));
    await ep.close();
    await expect(linking).rejects.toMatchObject({ code: 'TRANSPORT_CLOSED', rank: 1, message: 'rank 1: the endpoint was closed while linking up' });
  });

  it('throws at once on caller mistakes', async () => {
    const ts = await createLocalPeerGroup(4, { topology: 'ring' });
    expect(() => ts[0]!.send(2, 'x', new Uint8Array(1))).toThrow(/send to rank 2, but this group links rank 0 only to 1, 3/);
    expect(() => ts[0]!.send(1, 'x', [1, 2] as unknown as Uint8Array)).toThrow(TypeError);
    expect(() => ts[0]!.send(1, 'x'.repeat(2000), new Uint8Array(1))).toThrow(/tag must be 1..1024 UTF-8 bytes/);
    await expect(PeerEndpoint.listen({ rank: 4, size: 4, token: 't' })).rejects.toThrow(/rank must be an integer in \[0, 3\], got 4/);
    await expect(PeerEndpoint.listen({ rank: 0, size: 2, token: 't', chunkBytes: 10 })).rejects.toThrow(/chunkBytes must be an integer in \[1024/);
    await expect(PeerEndpoint.listen({ rank: 0, size: 2, token: 't', host: '0.0.0.0' })).rejects.toThrow(/needs advertiseHost/);
    await Promise.all(ts.map((t) => t.close()));
  });
});
