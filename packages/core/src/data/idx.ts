// Reader for the IDX format of MNIST-style data sets (http://yann.lecun.com/exdb/mnist/):
// a 4-byte magic (0x00, 0x00, data type, dimension count), one big-endian uint32 per
// dimension, then the data. ddp only reads unsigned bytes: images (3 dims) and labels (1 dim).
import { readFileSync } from 'node:fs';
import { gunzipSync } from 'node:zlib';

/** A bad or unreadable IDX file; `file` is the name or path the caller gave. */
export class IdxError extends Error {
  readonly file: string;
  constructor(file: string, problem: string) {
    super(`${file}: ${problem}`);
    this.name = 'IdxError';
    this.file = file;
  }
}

export interface IdxContent {
  dims: number[];
  data: Uint8Array;
}

const UBYTE_TYPE = 0x08;
/** Dimension counts ddp understands: 1 = labels (n), 3 = images (n, rows, cols). */
const KNOWN_DIM_COUNTS: Record<number, string> = { 1: 'labels', 3: 'images' };

function hex32(bytes: Uint8Array): string {
  const view = new DataView(bytes.buffer, bytes.byteOffset, 4);
  return '0x' + view.getUint32(0, false).toString(16).padStart(8, '0');
}

function isGzip(bytes: Uint8Array): boolean {
  return bytes.length >= 2 && bytes[0] === 0x1f && bytes[1] === 0x8b;
}

function gunzip(bytes: Uint8Array, file: string): Uint8Array {
  try {
    const out = gunzipSync(bytes);
    return new Uint8Array(out.buffer, out.byteOffset, out.byteLength);
  } catch (err) {
    // zlib says e.g. "unexpected end of file" for a cut-off download.
    const reason = err instanceof Error ? err.message : String(err);
    throw new IdxError(file, `gzip data is corrupt or truncated (${reason})`);
  }
}

/**
 * Parses an IDX file of unsigned bytes, plain or gzipped (detected by the 1f 8b magic).
 * `expectedDimCount` (1 for labels, 3 for images) rejects a file of the other kind.
 * The returned `data` is a view into the (decompressed) bytes, not a copy.
 */
export function parseIdx(bytes: Uint8Array, file: string, expectedDimCount?: 1 | 3): IdxContent {
  if (isGzip(bytes)) bytes = gunzip(bytes, file);

  if (bytes.length < 4) {
    throw new IdxError(file, `too short for an IDX header: need at least 4 bytes, file has ${bytes.length}`);
  }
  const magic = hex32(bytes);
  const dimCount = bytes[3];
  if (bytes[0] !== 0 || bytes[1] !== 0 || bytes[2] !== UBYTE_TYPE || !(dimCount in KNOWN_DIM_COUNTS)) {
    throw new IdxError(
      file,
      `bad magic number ${magic}: expected 0x00000803 (uint8 images) or 0x00000801 (uint8 labels)`,
    );
  }
  if (expectedDimCount !== undefined && dimCount !== expectedDimCount) {
    throw new IdxError(
      file,
      `expected an IDX ${KNOWN_DIM_COUNTS[expectedDimCount]} file (magic 0x0000080${expectedDimCount}), ` +
        `got ${KNOWN_DIM_COUNTS[dimCount]} (magic ${magic})`,
    );
  }

  const headerBytes = 4 + 4 * dimCount;
  if (bytes.length < headerBytes) {
    throw new IdxError(
      file,
      `truncated header: ${dimCount} dimensions need ${headerBytes} header bytes, file has ${bytes.length}`,
    );
  }
  const view = new DataView(bytes.buffer, bytes.byteOffset, headerBytes);
  const dims: number[] = [];
  for (let i = 0; i < dimCount; i++) dims.push(view.getUint32(4 + 4 * i, false));
  // The sample count may be zero; a sample with no pixels may not.
  for (let i = 1; i < dimCount; i++) {
    if (dims[i] === 0) {
      throw new IdxError(file, `bad dimensions ${dims.join('x')}: dimension ${i} (${i === 1 ? 'rows' : 'cols'}) is 0`);
    }
  }

  const dataBytes = dims.reduce((a, b) => a * b, 1);
  const actual = bytes.length - headerBytes;
  if (actual !== dataBytes) {
    const what = actual < dataBytes ? 'truncated' : 'too long';
    throw new IdxError(
      file,
      `${what}: header says ${dims.join('x')} = ${dataBytes} bytes of data, file has ${actual}`,
    );
  }
  return { dims, data: new Uint8Array(bytes.buffer, bytes.byteOffset + headerBytes, dataBytes) };
}

/** Reads and parses an IDX file; every failure, including a missing file, is an IdxError. */
export function readIdxFile(path: string, expectedDimCount?: 1 | 3): IdxContent {
  let bytes: Uint8Array;
  try {
    bytes = readFileSync(path);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ENOENT') throw new IdxError(path, 'no such file');
    if (code === 'EISDIR') throw new IdxError(path, 'is a directory, expected an IDX file');
    if (code === 'EACCES') throw new IdxError(path, 'permission denied');
    throw new IdxError(path, `cannot read: ${err instanceof Error ? err.message : String(err)}`);
  }
  return parseIdx(bytes, path, expectedDimCount);
}
