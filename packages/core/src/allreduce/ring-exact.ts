/**
 * Exact ring allreduce: the ring of ring.ts (reduce-scatter, then all-gather, same chunks, same
 * schedule), over exact partial sums (exact-sum/), so every rank ends with the correctly rounded
 * float32 of the exact sum of everything every rank added: the same bits as one ExactAccumulator
 * holding all the addends, whatever the number of ranks.
 *
 * 1. Reduce-scatter, steps s = 0..N-2 (tag `<tag>/ring-exact/rs/<s>`): rank r sends
 *    acc.encode(chunk (r-s) mod N) and adds the incoming encoding of chunk (r-s-1) mod N into its
 *    accumulator (addEncoded; the header must name exactly that chunk). Afterwards rank r holds the
 *    complete exact sum of chunk (r+1) mod N.
 * 2. The owner rounds its chunk once: acc.toFloat32(out.subarray(s, e), s, e).
 * 3. All-gather, steps s = 0..N-2 (tag `<tag>/ring-exact/ag/<s>`): float32 chunks, forwarded as the
 *    exact bytes that arrived (as in ring.ts), so every rank ends with bitwise-identical results.
 *
 * `acc` is modified (it ends holding partial sums); reset it before reusing it. Bad bytes from a
 * peer (not an encoding, the wrong range, the wrong length) reject with
 * CollectiveError('PAYLOAD_SIZE', sender). Returns `out` (a new Float32Array of acc.length by
 * default). `onChunk(sum, start, end)` as in ringAllreduce: once per chunk, as soon as it is final.
 */
import { checkTransport, resolveTag } from './allreduce-options.js';
import { CollectiveError } from './collective-error.js';
import { float32ToBytes } from './codec.js';
import { ExactAccumulator } from './exact-sum/accumulator.js';
import { ExactSumFormatError } from './exact-sum/format-error.js';
import { encodedRange, type ExactSumLayout } from './exact-sum/wire.js';
import { chunkBounds } from './chunk-bounds.js';
import { ringAllgather, ringNeighbours } from './ring.js';
import type { Transport } from './transport.js';

export interface RingExactOptions {
  /** Prefix of every message tag (default 'allreduce'). */
  tag?: string;
  /** How the exact partial sums travel (default 'packed'). */
  layout?: ExactSumLayout;
  /** Where to put the rounded sum (acc.length values); default a new array. */
  out?: Float32Array;
  /** Called with the result and a range [start, end) whose final value is in it. */
  onChunk?: (sum: Float32Array, start: number, end: number) => void;
}

export function ringAllreduceExact(t: Transport, acc: ExactAccumulator, opts: RingExactOptions = {}): Promise<Float32Array> {
  if (!(acc instanceof ExactAccumulator)) throw new TypeError('ringAllreduceExact: acc must be an ExactAccumulator');
  checkTransport('ringAllreduceExact', t);
  const tag = resolveTag('ringAllreduceExact', opts.tag);
  const layout = opts.layout ?? 'packed';
  if (layout !== 'packed' && layout !== 'raw') throw new RangeError(`ringAllreduceExact: opts.layout must be 'packed' or 'raw', got ${JSON.stringify(layout)}`);
  if (opts.out && opts.out.length !== acc.length) throw new RangeError(`ringAllreduceExact: opts.out must hold ${acc.length} values, got ${opts.out.length}`);
  const out = opts.out ?? new Float32Array(acc.length);
  if (t.size === 1) {
    acc.toFloat32(out);
    opts.onChunk?.(out, 0, out.length);
    return Promise.resolve(out);
  }
  return runRing(t, acc, out, tag, layout, opts.onChunk);
}

async function runRing(
  t: Transport, acc: ExactAccumulator, out: Float32Array, tag: string, layout: ExactSumLayout, onChunk: RingExactOptions['onChunk'],
): Promise<Float32Array> {
  const { n, r, right, left, mod } = ringNeighbours(t);
  const bounds = chunkBounds(acc.length, n);

  for (let s = 0; s < n - 1; s++) {
    const stepTag = `${tag}/ring-exact/rs/${s}`;
    const send = mod(r - s);
    const into = mod(r - s - 1);
    // encode() copies: the accumulator may change while the bytes travel.
    const [, bytes] = await Promise.all([t.send(right, stepTag, acc.encode(bounds[send]!, bounds[send + 1]!, layout)), t.recv(left, stepTag)]);
    const what = `ringAllreduceExact: reduce-scatter chunk ${into} (tag "${stepTag}")`;
    try {
      const got = encodedRange(bytes);
      if (got.start !== bounds[into] || got.end !== bounds[into + 1]) {
        throw new ExactSumFormatError(`the encoding covers [${got.start}, ${got.end}), expected [${bounds[into]}, ${bounds[into + 1]})`);
      }
      acc.addEncoded(bytes);
    } catch (err) {
      if (!(err instanceof ExactSumFormatError)) throw err;
      throw new CollectiveError('PAYLOAD_SIZE', left, `${what}: bad exact-sum payload from rank ${left}: ${err.message}`);
    }
  }

  const own = mod(r + 1);
  acc.toFloat32(out.subarray(bounds[own]!, bounds[own + 1]!), bounds[own]!, bounds[own + 1]!);
  const outgoing = float32ToBytes(out.subarray(bounds[own]!, bounds[own + 1]!)); // never written during the all-gather
  await ringAllgather(t, out, bounds, outgoing, `${tag}/ring-exact`, 'none', 'ringAllreduceExact', onChunk);
  return out;
}
