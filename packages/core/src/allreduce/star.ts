/**
 * Star allreduce: every rank sends its vector to rank 0, which adds them in rank order and
 * sends the sum back to everyone.
 *
 * 1. Ranks 1..N-1 send their vector to rank 0 (tag `<tag>/star/up`).
 * 2. Rank 0 starts from its own vector and adds rank 1's, then rank 2's, ... in float32, in
 *    that order whatever order they arrive in, so the sum has the same bits as one process
 *    adding the N vectors sequentially in rank order (ddp promises this).
 * 3. Rank 0 sends the sum to every other rank (tag `<tag>/star/down`); all ranks return it.
 *
 * With compress 'fp16' every contribution, rank 0's own included (so the result does not
 * depend on which rank is the root), is rounded to half; the sum is accumulated in float32,
 * rounded to half once, and rank 0 keeps that rounded sum too, so all ranks end bitwise equal.
 * With one rank nothing travels and the result is a copy of the input, uncompressed.
 *
 * Returns the SUM (callers divide) as a new array; `data` is not modified.
 */
import { resolveOptions, type AllreduceOptions, type ResolvedOptions } from './allreduce-options.js';
import { uint16ToBytes, float32ToBytes } from './codec.js';
import { decodeFp16, encodeFp16, roundToFp16InPlace } from './fp16.js';
import { addPayloadInto, decodePayload, encodePayload } from './payload.js';
import type { Transport } from './transport.js';

export function starAllreduce(t: Transport, data: Float32Array, opts: AllreduceOptions = {}): Promise<Float32Array> {
  const o = resolveOptions('starAllreduce', t, data, opts); // bad arguments throw now, not later
  if (t.size === 1) return Promise.resolve(data.slice());
  return t.rank === 0 ? reduceAtRoot(t, data, o) : contributeAndWait(t, data, o);
}

async function reduceAtRoot(t: Transport, data: Float32Array, o: ResolvedOptions): Promise<Float32Array> {
  const upTag = `${o.tag}/star/up`;
  const downTag = `${o.tag}/star/down`;
  // Post every receive at once so arrivals are not serialised behind a slow rank; the
  // no-op catch keeps a rejection we have not awaited yet from being reported as unhandled.
  const arrivals: Promise<Uint8Array>[] = [];
  for (let r = 1; r < t.size; r++) {
    const p = t.recv(r, upTag);
    p.catch(() => {});
    arrivals.push(p);
  }
  const sum = data.slice();
  if (o.compress === 'fp16') roundToFp16InPlace(sum);
  for (let r = 1; r < t.size; r++) {
    const bytes = await arrivals[r - 1]!;
    addPayloadInto(sum, bytes, o.compress, { from: r, what: `starAllreduce: contribution (tag "${upTag}")` });
  }
  let reply: Uint8Array;
  if (o.compress === 'fp16') {
    const halves = encodeFp16(sum);
    decodeFp16(halves, sum); // keep exactly what the others will decode
    reply = uint16ToBytes(halves);
  } else {
    reply = float32ToBytes(sum);
  }
  const sends: Promise<void>[] = [];
  for (let r = 1; r < t.size; r++) sends.push(t.send(r, downTag, reply));
  await Promise.all(sends);
  return sum;
}

async function contributeAndWait(t: Transport, data: Float32Array, o: ResolvedOptions): Promise<Float32Array> {
  const upTag = `${o.tag}/star/up`;
  const downTag = `${o.tag}/star/down`;
  // Post the receive first so a reply can never find us not listening; catch as above.
  const reply = t.recv(0, downTag);
  reply.catch(() => {});
  await t.send(0, upTag, encodePayload(data, o.compress));
  const bytes = await reply;
  const origin = { from: 0, what: `starAllreduce: sum (tag "${downTag}")` };
  if (o.compress === 'fp16') return decodePayload(bytes, data.length, o.compress, origin); // a fresh array
  // Owned and compact, never a view of a transport buffer.
  return decodePayload(bytes, data.length, o.compress, origin).slice();
}
