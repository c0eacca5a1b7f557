/**
 * The in-memory transport: the shared Transport conformance suite (transport-conformance.ts), plain
 * and with a delivery latency and unaligned payloads, then what only this transport has: its
 * ways of making things go wrong on purpose, and its option checks.
 */
import { describe, expect, it } from 'vitest';
import { CollectiveError } from './collective-error.js';
import { createMemoryTransports, type MemoryTransportOptions } from './memory-transport.js';
import { transportConformance, type MakeConformanceGroup } from './transport-conformance.js';

const memoryGroup =
  (opts: MemoryTransportOptions): MakeConformanceGroup =>
  async (n, { recvTimeoutMs }) => {
    const ts = createMemoryTransports(n, { ...opts, recvTimeoutMs });
    return { transports: ts, kill: (rank) => ts[rank]!.fail('killed by the conformance suite'), close: async () => {} };
  };

for (const [name, opts] of [
  ['memory', {}],
  ['memory (1 ms latency, unaligned payloads)', { latencyMs: 1, unalignedPayloads: true }],
] as const) {
  transportConformance(name, memoryGroup(opts));
}

const bytes = (...xs: number[]): Uint8Array => Uint8Array.from(xs);

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
  it('can deliver payloads at an unaligned byteOffset, as WebSocket buffers may arrive', async () => {
    const [a, b] = createMemoryTransports(2, { unalignedPayloads: true });
    await a!.send(1, 't', bytes(5, 6, 7, 8));
    const got = await b!.recv(0, 't');
    expect(got.byteOffset % 4).not.toBe(0);
    expect([...got]).toEqual([5, 6, 7, 8]);
  });

  it('names the dead rank and the reason given to fail() on every member', async () => {
    const [a, b, c] = createMemoryTransports(3);
    const pending = a!.recv(1, 't');
    c!.fail('test kill');
    for (const p of [pending, b!.send(0, 't', bytes(1)), c!.recv(0, 't')]) {
      const err = await rejection(p);
      expect([err.code, err.rank]).toEqual(['PEER_FAILED', 2]);
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
    expect(() => createMemoryTransports(2, { recvTimeoutMs: Number.NaN })).toThrow(/recvTimeoutMs must be a finite number >= 0, got NaN/);
    expect(() => createMemoryTransports(2, { failRank: { rank: 2, afterSends: 0 } })).toThrow(/failRank.rank must be an integer in \[0, 1\], got 2/);
    const [a] = createMemoryTransports(2);
    expect(() => a!.send(0, 't', bytes(1))).toThrow(/rank 0: send peer must be an integer in \[0, 1\] other than 0, got 0/);
    expect(() => a!.send(1, 't', [1, 2] as unknown as Uint8Array)).toThrow(/payload must be a Uint8Array, got \[object Array\]/);
  });
});
