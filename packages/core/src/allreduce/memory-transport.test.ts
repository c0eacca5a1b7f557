import { describe, expect, it } from 'vitest';
import { CollectiveError } from './collective-error.js';
import { createMemoryTransports } from './memory-transport.js';

const bytes = (...xs: number[]): Uint8Array => Uint8Array.from(xs);
const list = (b: Uint8Array): number[] => [...b];

async function rejection(p: Promise<unknown>): Promise<CollectiveError> {
  try {
    await p;
  } catch (e) {
    expect(e).toBeInstanceOf(CollectiveError);
    return e as CollectiveError;
  }
  return expect.fail('expected the operation to reject');
}

describe('createMemoryTransports', () => {
  it('gives each transport its rank and the group size', () => {
    const ts = createMemoryTransports(3);
    expect(ts.map((t) => [t.rank, t.size])).toEqual([[0, 3], [1, 3], [2, 3]]);
  });

  it('buffers early messages and matches them by (from, tag), FIFO per pair', async () => {
    const [a, b, c] = createMemoryTransports(3);
    await a!.send(2, 'x', bytes(1));
    await a!.send(2, 'y', bytes(2));
    await a!.send(2, 'x', bytes(3));
    await b!.send(2, 'x', bytes(4));
    expect(list(await c!.recv(1, 'x'))).toEqual([4]);
    expect(list(await c!.recv(0, 'y'))).toEqual([2]);
    expect(list(await c!.recv(0, 'x'))).toEqual([1]);
    expect(list(await c!.recv(0, 'x'))).toEqual([3]);
  });

  it('serves receives posted before the send, in the order they were posted', async () => {
    const [a, b] = createMemoryTransports(2);
    const first = b!.recv(0, 't');
    const second = b!.recv(0, 't');
    await a!.send(1, 't', bytes(10));
    await a!.send(1, 't', bytes(20));
    expect([list(await first), list(await second)]).toEqual([[10], [20]]);
  });

  it('delivers a copy: the sender may reuse its buffer, and the receiver never aliases it', async () => {
    const [a, b] = createMemoryTransports(2);
    const buf = bytes(1, 2, 3);
    await a!.send(1, 't', buf);
    buf[0] = 99;
    const got = await b!.recv(0, 't');
    expect(list(got)).toEqual([1, 2, 3]);
    expect(got.buffer).not.toBe(buf.buffer);
  });

  it('can deliver payloads at an unaligned byteOffset, as WebSocket buffers may arrive', async () => {
    const [a, b] = createMemoryTransports(2, { unalignedPayloads: true });
    await a!.send(1, 't', bytes(5, 6, 7, 8));
    const got = await b!.recv(0, 't');
    expect(got.byteOffset % 4).not.toBe(0);
    expect(list(got)).toEqual([5, 6, 7, 8]);
  });

  it('keeps per-pair order with a delivery latency', async () => {
    const [a, b] = createMemoryTransports(2, { latencyMs: 2 });
    const got = Array.from({ length: 5 }, () => b!.recv(0, 't'));
    for (let i = 0; i < 5; i++) await a!.send(1, 't', bytes(i));
    expect((await Promise.all(got)).map((x) => x[0])).toEqual([0, 1, 2, 3, 4]);
  });

  it('rejects a receive that times out, naming the awaited rank and tag', async () => {
    const [, b] = createMemoryTransports(2, { recvTimeoutMs: 20 });
    const err = await rejection(b!.recv(0, 'late'));
    expect(err.code).toBe('RECV_TIMEOUT');
    expect(err.rank).toBe(0);
    expect(err.message).toMatch(/rank 1: no message "late" from rank 0 within 20 ms/);
  });

  it('fails the whole group when one rank dies: pending and later operations everywhere reject naming it', async () => {
    const [a, b, c] = createMemoryTransports(3);
    const pendingAtA = a!.recv(1, 't'); // waits on a live rank
    const pendingAtB = b!.recv(2, 't'); // waits on the dying rank
    c!.fail('test kill');
    for (const p of [pendingAtA, pendingAtB, a!.send(1, 't', bytes(1)), b!.recv(0, 'u'), c!.recv(0, 't')]) {
      const err = await rejection(p);
      expect(err.code).toBe('PEER_FAILED');
      expect(err.rank).toBe(2);
      expect(err.message).toMatch(/rank 2 failed \(test kill\)/);
    }
  });

  it('simulates a crash after a given number of sends', async () => {
    const [a, b] = createMemoryTransports(2, { failRank: { rank: 0, afterSends: 2 } });
    await a!.send(1, 't', bytes(1));
    await a!.send(1, 't', bytes(2));
    const err = await rejection(a!.send(1, 't', bytes(3)));
    expect([err.code, err.rank]).toEqual(['PEER_FAILED', 0]);
    expect(err.message).toMatch(/simulated crash after 2 sends/);
    expect((await rejection(b!.recv(0, 't'))).rank).toBe(0);
  });

  it('rejects bad arguments at once, saying what was wrong', () => {
    expect(() => createMemoryTransports(0)).toThrow(/size must be an integer >= 1, got 0/);
    expect(() => createMemoryTransports(2, { latencyMs: -1 })).toThrow(/latencyMs must be a finite number >= 0, got -1/);
    expect(() => createMemoryTransports(2, { failRank: { rank: 2, afterSends: 0 } })).toThrow(/failRank.rank must be an integer in \[0, 1\], got 2/);
    const [a] = createMemoryTransports(2);
    expect(() => a!.send(0, 't', bytes(1))).toThrow(/rank 0: send peer must be an integer in \[0, 1\] other than 0, got 0/);
    expect(() => a!.recv(5, 't')).toThrow(RangeError);
    expect(() => a!.send(1, 't', [1, 2] as unknown as Uint8Array)).toThrow(/payload must be a Uint8Array, got \[object Array\]/);
  });
});
