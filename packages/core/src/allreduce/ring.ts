/**
 * Ring allreduce (reduce-scatter, then all-gather), bandwidth-optimal: each rank sends and
 * receives 2(N-1)/N of the vector in total, in 2(N-1) steps.
 *
 * The vector is cut into N chunks by chunkBounds; rank r sends to r+1 and receives from r-1.
 * 1. Reduce-scatter, steps s = 0..N-2 (tag `<tag>/ring/rs/<s>`): rank r sends chunk (r-s) mod N
 *    and adds the incoming chunk (r-s-1) mod N into its own copy. Afterwards rank r holds the
 *    complete sum of chunk (r+1) mod N, added in the order c, c+1, ..., c-1 (mod N) of ranks.
 * 2. All-gather, steps s = 0..N-2 (tag `<tag>/ring/ag/<s>`): rank r sends the complete chunk it
 *    got last (its own at s = 0) and stores the incoming chunk (r-s) mod N. Chunks are copied,
 *    never re-added, and forwarded as the exact bytes that arrived, so every rank ends with
 *    bitwise-identical results.
 *
 * With compress 'fp16' every chunk travels as half: partial sums are rounded at each hop of
 * the reduce-scatter and accumulated in float32; the owner of a complete chunk rounds it to
 * half once and keeps the rounded values itself, so all ranks still end bitwise identical.
 * With one rank nothing travels and the result is a copy of the input, uncompressed.
 *
 * Unlike starAllreduce, the summation order differs per chunk (a rotation of rank order), so
 * the result may differ from the rank-order sum in the last bits.
 *
 * Returns the SUM (callers divide) as a new array, or in `opts.out`; `data` is not modified.
 *
 * `opts.onChunk(sum, start, end)` is called once for each chunk as soon as its final value is in
 * the result: the chunk this rank completes in the reduce-scatter right after its all-gather send
 * has gone out (so work done there overlaps the wait for the others' chunks), the others as they
 * arrive. A caller can start consuming the sum (an optimizer step, say) before the allreduce ends.
 */
import { resolveOptions, type AllreduceOptions, type Compression, type ResolvedOptions } from './allreduce-options.js';
import { chunkBounds } from './chunk-bounds.js';
import { float32ToBytes, uint16ToBytes } from './codec.js';
import { decodeFp16, encodeFp16 } from './fp16.js';
import { addPayloadInto, decodePayload, encodePayload } from './payload.js';
import type { Transport } from './transport.js';

export interface RingOptions extends AllreduceOptions {
  /** Where to put the sum (same length as the data, not the data itself); default a new array. */
  out?: Float32Array;
  /** Called with the result and a range [start, end) whose final sum is in it (see above). */
  onChunk?: (sum: Float32Array, start: number, end: number) => void;
}

export function ringAllreduce(t: Transport, data: Float32Array, opts: RingOptions = {}): Promise<Float32Array> {
  const o = resolveOptions('ringAllreduce', t, data, opts); // bad arguments throw now, not later
  if (opts.out && (opts.out.length !== data.length || opts.out.buffer === data.buffer)) {
    throw new RangeError(`ringAllreduce: opts.out must be a separate Float32Array of ${data.length} values`);
  }
  const acc = opts.out ?? new Float32Array(data.length);
  acc.set(data);
  if (t.size === 1) {
    opts.onChunk?.(acc, 0, acc.length);
    return Promise.resolve(acc);
  }
  return runRing(t, acc, o, opts.onChunk);
}

async function runRing(t: Transport, acc: Float32Array, o: ResolvedOptions, onChunk?: RingOptions['onChunk']): Promise<Float32Array> {
  const { n, r, right, left, mod } = ringNeighbours(t);
  const bounds = chunkBounds(acc.length, n);
  const chunk = (c: number): Float32Array => acc.subarray(bounds[c]!, bounds[c + 1]!);

  for (let s = 0; s < n - 1; s++) {
    const tag = `${o.tag}/ring/rs/${s}`;
    const target = chunk(mod(r - s - 1));
    // The chunk sent is not touched in this step, and the send has resolved before the next,
    // so sending a view of `acc` is safe under the Transport contract.
    const [, bytes] = await Promise.all([t.send(right, tag, encodePayload(chunk(mod(r - s)), o.compress)), t.recv(left, tag)]);
    addPayloadInto(target, bytes, o.compress, { from: left, what: `ringAllreduce: reduce-scatter chunk ${mod(r - s - 1)} (tag "${tag}")` });
  }

  const owned = chunk(mod(r + 1));
  let outgoing: Uint8Array;
  if (o.compress === 'fp16') {
    const halves = encodeFp16(owned);
    decodeFp16(halves, owned); // the owner keeps what everyone else will decode
    outgoing = uint16ToBytes(halves);
  } else {
    outgoing = float32ToBytes(owned); // the owned chunk is never written during the all-gather
  }
  await ringAllgather(t, acc, bounds, outgoing, `${o.tag}/ring`, o.compress, 'ringAllreduce', onChunk);
  return acc;
}

/** Where rank r sits in a ring of t.size: the rank it sends to, the one it hears from, and index arithmetic mod N. */
export function ringNeighbours(t: Transport) {
  const n = t.size;
  const r = t.rank;
  const mod = (x: number): number => ((x % n) + n) % n;
  return { n, r, right: (r + 1) % n, left: (r + n - 1) % n, mod };
}

/**
 * The all-gather phase (steps s = 0..N-2, tag `<tagBase>/ag/<s>`): rank r sends `outgoing`, the
 * bytes of its complete chunk (r+1) mod N, then forwards each chunk exactly as it arrived and
 * stores the incoming chunk (r-s) mod N into `sum`. Chunks are copied, never re-added, so every rank
 * ends with bitwise-identical results. onChunk as in ringAllreduce.
 */
export async function ringAllgather(
  t: Transport,
  sum: Float32Array,
  bounds: readonly number[],
  outgoing: Uint8Array,
  tagBase: string,
  compress: Compression,
  caller: string,
  onChunk?: (sum: Float32Array, start: number, end: number) => void,
): Promise<void> {
  const { n, r, right, left, mod } = ringNeighbours(t);
  const own = mod(r + 1);
  for (let s = 0; s < n - 1; s++) {
    const tag = `${tagBase}/ag/${s}`;
    const c = mod(r - s);
    const target = sum.subarray(bounds[c]!, bounds[c + 1]!);
    const exchange = Promise.all([t.send(right, tag, outgoing), t.recv(left, tag)]);
    // The owned chunk is final and on its way: its consumer runs while the others' chunks travel.
    if (s === 0) onChunk?.(sum, bounds[own]!, bounds[own + 1]!);
    const [, bytes] = await exchange;
    target.set(decodePayload(bytes, target.length, compress, { from: left, what: `${caller}: all-gather chunk ${c} (tag "${tag}")` }));
    outgoing = bytes; // forward the exact bytes: no re-encoding, no re-adding
    onChunk?.(sum, bounds[c]!, bounds[c + 1]!);
  }
}
