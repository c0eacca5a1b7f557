import { randomInt } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { createRng } from '../data/random.js';
import { CollectiveError } from './collective-error.js';
import { ExactAccumulator } from './exact-sum/accumulator.js';
import { addends } from './exact-sum/sample-data.js';
import { createMemoryTransports } from './memory-transport.js';
import { ringAllreduce } from './ring.js';
import { ringAllreduceExact } from './ring-exact.js';
import type { Transport } from './transport.js';

const bits = (a: Float32Array) => Buffer.from(a.buffer, a.byteOffset, a.byteLength);

/** Micro-shard vectors spread over `ranks` in contiguous blocks of random sizes (some ranks may get none). */
function spread(shards: Float32Array[], ranks: number, seed: number): Float32Array[][] {
  const rng = createRng(seed);
  const cuts = Array.from({ length: ranks - 1 }, () => rng.nextBelow(shards.length + 1)).sort((a, b) => a - b);
  const edges = [0, ...cuts, shards.length];
  return Array.from({ length: ranks }, (_, r) => shards.slice(edges[r], edges[r + 1]));
}

describe('ringAllreduceExact over the in-memory transport', () => {
  const seed = randomInt(1, 2 ** 31);
  it(`gives every rank the bits of one ExactAccumulator holding every addend, for 1-8 ranks and both layouts (seed ${seed})`, async () => {
    for (const kind of ['gradient', 'cancelling', 'mixed'] as const) {
      const length = 1 + randomInt(0, 3000);
      const shards = addends(createRng(seed), kind, length, 24);
      const one = new ExactAccumulator(length);
      for (const s of shards) one.add(s);
      const expected = one.toFloat32();
      for (let n = 1; n <= 8; n++) {
        for (const layout of ['packed', 'raw'] as const) {
          const owned = spread(shards, n, seed + n);
          const ts = createMemoryTransports(n, { latencyMs: n % 2 });
          const results = await Promise.all(ts.map((t, r) => {
            const acc = new ExactAccumulator(length);
            for (const s of owned[r]!) acc.add(s);
            const ranges: Array<[number, number]> = [];
            return ringAllreduceExact(t, acc, { layout, tag: 'g', onChunk: (_s, a, b) => ranges.push([a, b]) }).then((out) => {
              expect(ranges.reduce((k, [a, b]) => k + b - a, 0)).toBe(length); // every chunk reported once
              return out;
            });
          }));
          for (const out of results) expect(bits(out).equals(bits(expected)), `${kind}, ${n} ranks, ${layout}`).toBe(true);
        }
      }
    }
  });

  it('control: the float32 ring on the same data differs from the exact sum (the test can fail)', async () => {
    const length = 2000;
    const shards = addends(createRng(seed), 'cancelling', length, 24);
    const one = new ExactAccumulator(length);
    for (const s of shards) one.add(s);
    const owned = spread(shards, 5, seed);
    const ts = createMemoryTransports(5);
    const fast = await Promise.all(ts.map((t, r) => {
      const local = new Float32Array(length);
      for (const s of owned[r]!) for (let i = 0; i < length; i++) local[i]! += s[i]!;
      return ringAllreduce(t, local);
    }));
    expect(bits(fast[0]!).equals(bits(one.toFloat32()))).toBe(false);
  });

  it('a peer sending bytes that are not an encoding of the expected chunk fails with PAYLOAD_SIZE naming it', async () => {
    for (const bad of ['garbage', 'wrong-range'] as const) {
      const [a, b] = createMemoryTransports(2, { recvTimeoutMs: 300 });
      const liar: Transport = {
        rank: b!.rank,
        size: b!.size,
        send: (to, tag, bytes) => b!.send(to, tag, bad === 'garbage' ? new Uint8Array(bytes.length).fill(7) : new ExactAccumulator(10).encode(0, 3)),
        recv: (from, tag) => b!.recv(from, tag),
      } as Transport;
      const res = await Promise.allSettled([ringAllreduceExact(a!, new ExactAccumulator(10)), ringAllreduceExact(liar, new ExactAccumulator(10))]);
      const err = (res[0] as PromiseRejectedResult).reason;
      expect(err).toBeInstanceOf(CollectiveError);
      expect(err).toMatchObject({ code: 'PAYLOAD_SIZE', rank: 1 });
    }
  });
});
