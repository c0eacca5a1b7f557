// ringAllreduce's onChunk and out options: the caller may consume each chunk of the sum as soon as
// it is final (ring mode starts Adam on it), and may give the buffer the sum goes into.
import { randomBytes } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { createMemoryTransports } from './memory-transport.js';
import { ringAllreduce } from './ring.js';

const randomVector = (n: number) => Float32Array.from(new Uint32Array(randomBytes(4 * n).buffer), (x) => x / 2 ** 32 - 0.5);

describe('ringAllreduce onChunk and out', () => {
  it.each([1, 2, 3, 4])('N = %i: the chunks handed out cover the vector once, each already final, own chunk first', async (n) => {
    const length = 1001;
    const data = Array.from({ length: n }, () => randomVector(length));
    const seen: Array<Array<{ start: number; end: number; values: Float32Array }>> = data.map(() => []);
    const outs = data.map(() => new Float32Array(length));
    const transports = createMemoryTransports(n);
    const sums = await Promise.all(
      transports.map((t, r) =>
        ringAllreduce(t, data[r]!, { out: outs[r], onChunk: (sum, start, end) => seen[r]!.push({ start, end, values: sum.slice(start, end) }) }),
      ),
    );
    for (let r = 0; r < n; r++) {
      expect(sums[r]).toBe(outs[r]); // the sum went into the buffer given
      const ranges = seen[r]!.map(({ start, end }) => [start, end] as const).sort((a, b) => a[0] - b[0]);
      let at = 0;
      for (const [start, end] of ranges) {
        expect(start).toBe(at);
        at = end;
      }
      expect(at).toBe(length);
      // What the callback saw is what the allreduce returned: the chunk was final then.
      for (const { start, values } of seen[r]!) expect(Buffer.from(values.buffer).equals(Buffer.from(sums[r]!.slice(start, start + values.length).buffer))).toBe(true);
    }
    // Every rank ends with the same bits.
    for (let r = 1; r < n; r++) expect(Buffer.from(sums[r]!.buffer).equals(Buffer.from(sums[0]!.buffer))).toBe(true);
  });

  it('refuses an out buffer of the wrong length or one that is the data itself', () => {
    const [t] = createMemoryTransports(1);
    const data = randomVector(8);
    expect(() => ringAllreduce(t!, data, { out: new Float32Array(7) })).toThrow(RangeError);
    expect(() => ringAllreduce(t!, data, { out: data })).toThrow(RangeError);
  });
});
