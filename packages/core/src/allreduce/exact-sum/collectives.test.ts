import { describe, expect, it } from 'vitest';
import { createRng, type Rng } from '../../data/random.js';
import { chunkBounds } from '../chunk-bounds.js';
import { ExactAccumulator } from './accumulator.js';
import type { ExactSumLayout } from './wire.js';
import { addends, type SampleKind } from './sample-data.js';

/**
 * The use the module is for, simulated in memory: micro-shard gradients spread over any number
 * of ranks, reduced in star (every rank's partial sum to a root) or ring (reduce-scatter of
 * encoded chunk partial sums, then the float32 chunks all-gathered) schedules, must give the
 * bits of one process summing every micro-shard.
 */

/** Which rank computes each micro-shard: round robin, contiguous blocks, or at random. */
function assign(rng: Rng, shards: number, ranks: number, how: 'roundRobin' | 'blocks' | 'random'): number[][] {
  const out: number[][] = Array.from({ length: ranks }, () => []);
  for (let s = 0; s < shards; s++) {
    const r = how === 'roundRobin' ? s % ranks : how === 'blocks' ? Math.floor((s * ranks) / shards) : rng.nextBelow(ranks);
    out[r]!.push(s);
  }
  return out;
}

function localSums(shardGrads: Float32Array[], owned: number[][], n: number): ExactAccumulator[] {
  return owned.map((list) => {
    const acc = new ExactAccumulator(n);
    for (const s of list) acc.add(shardGrads[s]!);
    return acc;
  });
}

function star(locals: ExactAccumulator[], n: number, rng: Rng, layout: ExactSumLayout): Float32Array {
  const root = new ExactAccumulator(n).merge(locals[0]!); // the root's own
  const arrivals = locals.slice(1).map((acc) => acc.encode(0, n, layout));
  for (let i = arrivals.length - 1; i > 0; i--) {
    const j = rng.nextBelow(i + 1);
    [arrivals[i], arrivals[j]] = [arrivals[j]!, arrivals[i]!];
  }
  for (const bytes of arrivals) root.addEncoded(bytes); // in arrival order, whatever it is
  return root.toFloat32();
}

/** Ring with ring.ts's schedule: rank r sends chunk (r - s) mod N at step s and adds chunk (r - s - 1). */
function ring(locals: ExactAccumulator[], n: number, layout: ExactSumLayout): Float32Array[] {
  const N = locals.length;
  const mod = (x: number): number => ((x % N) + N) % N;
  const bounds = chunkBounds(n, N);
  for (let s = 0; s < N - 1; s++) {
    const sent = locals.map((acc, r) => acc.encode(bounds[mod(r - s)]!, bounds[mod(r - s) + 1]!, layout));
    locals.forEach((acc, r) => acc.addEncoded(sent[mod(r - 1)]!));
  }
  // rank r owns chunk r + 1 complete: round it once, and everyone copies the float32 bits
  const results = locals.map(() => new Float32Array(n));
  for (let r = 0; r < N; r++) {
    const c = mod(r + 1);
    const rounded = locals[r]!.toFloat32(undefined, bounds[c]!, bounds[c + 1]!);
    for (const out of results) out.set(rounded, bounds[c]!);
  }
  return results;
}

describe('exact sums in star and ring schedules over any number of ranks', () => {
  for (const kind of ['gradient', 'mixed', 'cancelling'] as SampleKind[]) {
    it(`${kind}: 1 to 8 ranks, star and ring, any shard placement: the bits of one process`, () => {
      const rng = createRng(77);
      const n = 97; // not a multiple of the rank counts: uneven ring chunks
      const shards = 16; // e.g. a global batch of 256 in micro-shards of 16
      const shardGrads = addends(rng, kind, n, shards);
      const one = new ExactAccumulator(n);
      for (const g of shardGrads) one.add(g);
      const want = Buffer.from(one.toFloat32().buffer);

      // A plain float32 ring over these ranks does depend on the rank count (the control).
      let plainDiffers = false;
      for (let ranks = 1; ranks <= 8; ranks++) {
        for (const how of ['roundRobin', 'blocks', 'random'] as const) {
          const owned = assign(rng, shards, ranks, how);
          const layout: ExactSumLayout = rng.nextFloat() < 0.5 ? 'raw' : 'packed';
          const context = `${kind}: ${ranks} ranks, ${how}, ${layout}`;
          expect(Buffer.from(star(localSums(shardGrads, owned, n), n, rng, layout).buffer).equals(want), `${context}, star`).toBe(true);
          for (const [r, result] of ring(localSums(shardGrads, owned, n), n, layout).entries()) {
            expect(Buffer.from(result.buffer).equals(want), `${context}, ring, rank ${r}`).toBe(true);
          }
          const plain = new Float32Array(n);
          for (const list of owned) {
            const part = new Float32Array(n);
            for (const s of list) for (let i = 0; i < n; i++) part[i] += shardGrads[s]![i]!;
            for (let i = 0; i < n; i++) plain[i] += part[i]!;
          }
          if (!Buffer.from(plain.buffer).equals(want)) plainDiffers = true;
        }
      }
      expect(plainDiffers, 'plain float32 partial sums differ from the one-process sum somewhere').toBe(true);
    });
  }

  it('a member leaving mid-way: its shards re-done elsewhere give the same bits', () => {
    // Ranks keep exact partial sums; when rank 2 of 4 is lost, its shards are summed again by
    // the survivors (any split), and the result is still the one-process sum.
    const rng = createRng(78);
    const n = 64;
    const shardGrads = addends(rng, 'mixed', n, 12);
    const all = new ExactAccumulator(n);
    for (const g of shardGrads) all.add(g);
    const owned = assign(rng, 12, 4, 'roundRobin');
    const lost = owned[2]!;
    const survivors = [owned[0]!, owned[1]!, owned[3]!];
    lost.forEach((s, k) => survivors[k % 3]!.push(s));
    const result = star(localSums(shardGrads, survivors, n), n, rng, 'packed');
    expect(Buffer.from(result.buffer).equals(Buffer.from(all.toFloat32().buffer))).toBe(true);
  });
});
