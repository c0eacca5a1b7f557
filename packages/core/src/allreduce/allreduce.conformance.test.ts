/**
 * One conformance suite for every allreduce: {star, ring} x {none, fp16} x N = 1..8 ranks x
 * lengths {1, 7, 93322 (the seed CNN), 100003 (odd, divisible by none of 2..8)}, on fresh
 * random inputs each run (the seed is in every failure message).
 *
 * Checked for each case:
 * - every rank returns bitwise the same vector;
 * - it is close to the float64 sum of the inputs. Bounds, with S = sum over ranks of |x_r| per
 *   element and u = 2^-24 (float32 unit roundoff):
 *     none: N-1 float32 additions, each off by at most u * (partial sum) <= u * S:  (N-1) u S
 *     fp16: additionally every rounding to half (N inputs or hops, plus the final one) is off by
 *           at most 2^-11 |value| + 2^-25 (the latter for the subnormal range):
 *           (N+1) (2^-11 S + 2^-25) + (N-1) u S
 *   (times 1.01 for the rounding of the bound itself); with N = 1 the result must be exact;
 * - it equals, bit for bit, the documented summation order: star adds in rank order 0, 1, ...,
 *   ring adds chunk c in the order c, c+1, ..., c-1 (mod N), each with the fp16 roundings the
 *   algorithm documents. Star's order is what ddp promises; ring's pins its schedule.
 */
import { describe, expect, it } from 'vitest';
import type { AllreduceOptions, Compression } from './allreduce-options.js';
import { chunkBounds } from './chunk-bounds.js';
import { CollectiveError } from './collective-error.js';
import { roundToFp16InPlace } from './fp16.js';
import { createMemoryTransports, type MemoryTransportOptions } from './memory-transport.js';
import { ringAllreduce } from './ring.js';
import { starAllreduce } from './star.js';
import type { Transport } from './transport.js';

type Allreduce = (t: Transport, data: Float32Array, opts?: AllreduceOptions) => Promise<Float32Array>;
const algorithms: Record<'star' | 'ring', Allreduce> = { star: starAllreduce, ring: ringAllreduce };

const u32 = (a: Float32Array): Uint32Array => new Uint32Array(a.buffer, a.byteOffset, a.length);

function mulberry32(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** Gaussian values with magnitudes spread over 10^-5..10^2, so fp16 sees subnormals too. */
function randomInputs(seed: number, ranks: number, length: number): Float32Array[] {
  const rand = mulberry32(seed);
  return Array.from({ length: ranks }, () => {
    const x = new Float32Array(length);
    for (let i = 0; i < length; i++) {
      const g = Math.sqrt(-2 * Math.log(1 - rand())) * Math.cos(2 * Math.PI * rand());
      x[i] = g * 10 ** (-5 + 7 * rand());
    }
    return x;
  });
}

const rounded = (x: Float32Array, compress: Compression): Float32Array =>
  compress === 'fp16' ? roundToFp16InPlace(x.slice()) : x.slice();

/** Star's promise: start from rank 0 and add ranks 1, 2, ... in float32. */
function rankOrderSum(inputs: Float32Array[], compress: Compression): Float32Array {
  if (inputs.length === 1) return inputs[0]!.slice();
  const sum = rounded(inputs[0]!, compress);
  for (let r = 1; r < inputs.length; r++) {
    const x = rounded(inputs[r]!, compress);
    for (let i = 0; i < sum.length; i++) sum[i] = Math.fround(sum[i]! + x[i]!);
  }
  return compress === 'fp16' ? roundToFp16InPlace(sum) : sum;
}

/** Ring's schedule: chunk c starts at rank c; each hop sends (fp16: rounds) the partial sum, the next rank adds its own. */
function ringOrderSum(inputs: Float32Array[], compress: Compression): Float32Array {
  const n = inputs.length;
  if (n === 1) return inputs[0]!.slice();
  const bounds = chunkBounds(inputs[0]!.length, n);
  const out = new Float32Array(inputs[0]!.length);
  for (let c = 0; c < n; c++) {
    const [lo, hi] = [bounds[c]!, bounds[c + 1]!];
    const acc = inputs[c]!.slice(lo, hi);
    for (let k = 1; k < n; k++) {
      const own = inputs[(c + k) % n]!.subarray(lo, hi);
      if (compress === 'fp16') roundToFp16InPlace(acc);
      for (let i = 0; i < acc.length; i++) acc[i] = Math.fround(acc[i]! + own[i]!);
    }
    out.set(compress === 'fp16' ? roundToFp16InPlace(acc) : acc, lo);
  }
  return out;
}

function firstBitMismatch(a: Float32Array, b: Float32Array): number {
  const [x, y] = [u32(a), u32(b)];
  for (let i = 0; i < x.length; i++) if (x[i] !== y[i]) return i;
  return x.length === y.length ? -1 : x.length;
}

function checkAgainstFloat64(result: Float32Array, inputs: Float32Array[], compress: Compression, where: string): void {
  const n = inputs.length;
  const u = 2 ** -24;
  let worst = 0; // largest error / tolerance seen
  let worstAt = -1;
  for (let i = 0; i < result.length; i++) {
    let sum = 0;
    let abs = 0;
    for (let r = 0; r < n; r++) {
      sum += inputs[r]![i]!;
      abs += Math.abs(inputs[r]![i]!);
    }
    const err = Math.abs(result[i]! - sum);
    if (n === 1) {
      if (err !== 0) expect.fail(`${where}: one rank must return its input exactly; element ${i}: ${result[i]} vs ${sum}`);
      continue;
    }
    const tol =
      1.01 * (compress === 'fp16' ? (n + 1) * (2 ** -11 * abs + 2 ** -25) + (n - 1) * u * abs : (n - 1) * u * abs);
    if (err > tol) expect.fail(`${where}: element ${i} = ${result[i]}, float64 sum ${sum}, error ${err} > tolerance ${tol}`);
    if (tol > 0 && err / tol > worst) [worst, worstAt] = [err / tol, i];
  }
  expect(worstAt === -1 || worst <= 1, where).toBe(true);
}

async function runAll(algo: Allreduce, inputs: Float32Array[], opts: AllreduceOptions, transport: MemoryTransportOptions = {}): Promise<Float32Array[]> {
  const ts = createMemoryTransports(inputs.length, transport);
  return Promise.all(ts.map((t, r) => algo(t, inputs[r]!, opts)));
}

const cases: Array<[string, 'star' | 'ring', Compression, number, number]> = [];
for (const algo of ['star', 'ring'] as const)
  for (const compress of ['none', 'fp16'] as const)
    for (let n = 1; n <= 8; n++)
      for (const length of [1, 7, 93322, 100003]) cases.push([`${algo} ${compress} N=${n} length=${length}`, algo, compress, n, length]);

describe.each(cases)('%s', (_name, algoName, compress, n, length) => {
  it('returns the same bits on every rank, within the bound of the float64 sum, in the documented order', async () => {
    const seed = (Math.random() * 2 ** 32) >>> 0;
    const where = `${algoName} ${compress} N=${n} length=${length} seed=${seed}`;
    const inputs = randomInputs(seed, n, length);
    const copies = inputs.map((x) => x.slice());
    // Odd group sizes get unaligned payloads, as WebSocket frames may arrive.
    const results = await runAll(algorithms[algoName], inputs, { compress }, { unalignedPayloads: n % 2 === 1 });

    inputs.forEach((x, r) => expect(firstBitMismatch(x, copies[r]!), `${where}: rank ${r}'s input was modified`).toBe(-1));
    results.forEach((res, r) => {
      expect(res.length, where).toBe(length);
      expect(firstBitMismatch(res, results[0]!), `${where}: rank ${r} differs from rank 0 at this index`).toBe(-1);
    });
    checkAgainstFloat64(results[0]!, inputs, compress, where);
    const expected = algoName === 'star' ? rankOrderSum(inputs, compress) : ringOrderSum(inputs, compress);
    expect(firstBitMismatch(results[0]!, expected), `${where}: first index that differs from the ${algoName} order`).toBe(-1);
  });
});

describe.each(['star', 'ring'] as const)('%s allreduce', (algoName) => {
  const algo = algorithms[algoName];

  it('gives the same bits with a delivery latency and repeated calls sharing a tag', async () => {
    const seed = (Math.random() * 2 ** 32) >>> 0;
    const ts = createMemoryTransports(4, { latencyMs: 1 });
    for (const compress of ['none', 'fp16'] as const) {
      for (let call = 0; call < 3; call++) {
        const inputs = randomInputs(seed + call, 4, 1001);
        const results = await Promise.all(ts.map((t, r) => algo(t, inputs[r]!, { compress })));
        const want = algoName === 'star' ? rankOrderSum(inputs, compress) : ringOrderSum(inputs, compress);
        results.forEach((res, r) => expect(firstBitMismatch(res, want), `seed ${seed} call ${call} rank ${r}`).toBe(-1));
      }
    }
  });

  it('runs two allreduces at once over one transport when their tags differ', async () => {
    const seed = (Math.random() * 2 ** 32) >>> 0;
    const ts = createMemoryTransports(3);
    const a = randomInputs(seed, 3, 50);
    const b = randomInputs(seed + 1, 3, 50);
    const both = await Promise.all(ts.flatMap((t, r) => [algo(t, a[r]!, { tag: 'a' }), algo(t, b[r]!, { tag: 'b' })]));
    const [wantA, wantB] = algoName === 'star' ? [rankOrderSum(a, 'none'), rankOrderSum(b, 'none')] : [ringOrderSum(a, 'none'), ringOrderSum(b, 'none')];
    both.forEach((res, k) => expect(firstBitMismatch(res, k % 2 === 0 ? wantA : wantB), `seed ${seed} result ${k}`).toBe(-1));
  });

  const want = (inputs: Float32Array[], compress: Compression): Float32Array =>
    algoName === 'star' ? rankOrderSum(inputs, compress) : ringOrderSum(inputs, compress);

  /** Every rank either rejects with an error naming `dead`, or finished before the death with the right sum. */
  function expectFailureNaming(settled: PromiseSettledResult<Float32Array>[], dead: number, inputs: Float32Array[], compress: Compression): void {
    const rejected = settled.filter((s): s is PromiseRejectedResult => s.status === 'rejected');
    expect(rejected.length).toBeGreaterThan(0);
    expect(settled[dead]!.status).toBe('rejected');
    for (const s of settled) if (s.status === 'fulfilled') expect(firstBitMismatch(s.value, want(inputs, compress))).toBe(-1);
    for (const s of rejected) {
      expect(s.reason).toBeInstanceOf(CollectiveError);
      expect(s.reason.code).toBe('PEER_FAILED');
      expect(s.reason.rank).toBe(dead);
      expect(s.reason.message).toContain(`rank ${dead} failed`);
    }
  }

  // Deaths at several points: star leaves send once, the star root sends N-1 = 3 replies, ring
  // ranks send 2(N-1) = 6 chunks. No receive timeout is set, so only the failure signal can
  // end the waits; a hang would fail the test by vitest's timeout.
  const deaths: Array<[number, number]> =
    algoName === 'star'
      ? [[2, 0], [0, 0], [0, 2]]
      : [[2, 0], [2, 1], [2, 4], [0, 3]];
  it.each(deaths)('rejects on every unfinished rank with an error naming rank %i when it dies after %i sends', async (dead, afterSends) => {
    const inputs = randomInputs(1, 4, 1000);
    const ts = createMemoryTransports(4, { failRank: { rank: dead, afterSends } });
    const settled = await Promise.allSettled(ts.map((t, r) => algo(t, inputs[r]!, { compress: 'fp16' })));
    expectFailureNaming(settled, dead, inputs, 'fp16');
    if (afterSends === 0) expect(settled.every((s) => s.status === 'rejected')).toBe(true); // nobody can finish without its vector
  });

  it('rejects when a rank is killed from outside while messages are in flight', async () => {
    const inputs = randomInputs(2, 5, 20_000);
    const ts = createMemoryTransports(5, { latencyMs: 5 });
    const running = Promise.allSettled(ts.map((t, r) => algo(t, inputs[r]!)));
    setTimeout(() => ts[3]!.fail('killed by test'), 7); // after the first messages land, before the last
    const settled = await running;
    expectFailureNaming(settled, 3, inputs, 'none');
    for (const s of settled) if (s.status === 'rejected') expect(s.reason.message).toMatch(/rank 3 failed \(killed by test\)/);
  });

  it('times out, naming the awaited rank, when a rank never joins', async () => {
    const inputs = randomInputs(3, 3, 10);
    const ts = createMemoryTransports(3, { recvTimeoutMs: 50 });
    const settled = await Promise.allSettled([algo(ts[0]!, inputs[0]!), algo(ts[1]!, inputs[1]!)]); // rank 2 stays silent
    expect(settled.map((s) => s.status)).toEqual(['rejected', 'rejected']);
    const errors = settled.map((s) => (s as PromiseRejectedResult).reason as CollectiveError);
    for (const e of errors) expect(e.code).toBe('RECV_TIMEOUT');
    // Rank 0 waits on rank 2 directly in both algorithms (star: its contribution; ring: left neighbour).
    expect(errors[0]!.rank).toBe(2);
    expect(errors[0]!.message).toMatch(/rank 0: no message ".*" from rank 2 within 50 ms/);
  });

  it('reports a rank whose vector has another length, naming it', async () => {
    const ts = createMemoryTransports(3, { recvTimeoutMs: 100 });
    const lengths = [12, 12, 11];
    const settled = await Promise.allSettled(ts.map((t, r) => algo(t, new Float32Array(lengths[r]!))));
    // Rank 0 receives directly from rank 2 in both algorithms (star: its contribution; ring: its
    // left neighbour's first chunk, cut 3 floats long instead of 4), so it must name rank 2.
    const first = settled[0]!;
    expect(first.status).toBe('rejected');
    const err = (first as PromiseRejectedResult).reason as CollectiveError;
    expect([err.code, err.rank]).toEqual(['PAYLOAD_SIZE', 2]);
    expect(err.message).toMatch(
      algoName === 'star'
        ? /^starAllreduce: contribution \(tag "allreduce\/star\/up"\) from rank 2: got 44 bytes, expected 48 \(12 elements/
        : /^ringAllreduce: reduce-scatter chunk 2 \(tag "allreduce\/ring\/rs\/0"\) from rank 2: got 12 bytes, expected 16 \(4 elements/,
    );
    // Nobody returns a result built from mismatched vectors.
    expect(settled.every((s) => s.status === 'rejected')).toBe(true);
  });

  it('throws at once on bad arguments, saying what was wrong', () => {
    const [t] = createMemoryTransports(2);
    expect(() => algo(t!, [1, 2] as unknown as Float32Array)).toThrow(TypeError);
    expect(() => algo(t!, new Float32Array(2), { compress: 'bf16' as Compression })).toThrow(/opts.compress must be 'none' or 'fp16', got "bf16"/);
    expect(() => algo(t!, new Float32Array(2), { tag: '' })).toThrow(/opts.tag must be a non-empty string/);
    expect(() => algo({ rank: 3, size: 2 } as Transport, new Float32Array(2))).toThrow(/transport.rank must be an integer in \[0, 1\], got 3/);
  });
});
