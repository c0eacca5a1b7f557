// Writes uint8 IDX files: the inverse of idx.ts, for synthetic data sets in tests and benchmarks.
import { writeFileSync } from 'node:fs';
import { gzipSync } from 'node:zlib';

/** Encodes `data` with dims [n] (labels) or [n, rows, cols] (images) as uint8 IDX bytes. */
export function encodeIdx(dims: readonly number[], data: Uint8Array): Uint8Array {
  if (dims.length !== 1 && dims.length !== 3) {
    throw new RangeError(`encodeIdx: dims must have 1 (labels) or 3 (images) entries, got ${dims.length}`);
  }
  for (const d of dims) {
    if (!Number.isInteger(d) || d < 0 || d > 0xffffffff) {
      throw new RangeError(`encodeIdx: dims must be uint32 integers, got [${dims.join(', ')}]`);
    }
  }
  const size = dims.reduce((a, b) => a * b, 1);
  if (size !== data.length) {
    throw new RangeError(`encodeIdx: dims ${dims.join('x')} = ${size} bytes, data has ${data.length}`);
  }
  const header = 4 + 4 * dims.length;
  const out = new Uint8Array(header + size);
  const view = new DataView(out.buffer);
  view.setUint32(0, 0x00000800 | dims.length, false);
  dims.forEach((d, i) => view.setUint32(4 + 4 * i, d, false));
  out.set(data, header);
  return out;
}

/** Writes an IDX file, gzipped when `gzip` is set (the caller picks the file name, e.g. `X.gz`). */
export function writeIdxFile(path: string, dims: readonly number[], data: Uint8Array, opts: { gzip?: boolean } = {}): void {
  const bytes = encodeIdx(dims, data);
  writeFileSync(path, opts.gzip ? gzipSync(bytes) : bytes);
}
