import { randomBytes } from 'node:crypto';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { IdxError, parseIdx, readIdxFile } from './idx.js';
import { encodeIdx, writeIdxFile } from './idx-writer.js';

/** An IDX header written by hand (not by encodeIdx), so that the reader is checked independently. */
function header(magic: number, dims: number[]): Uint8Array {
  const out = new Uint8Array(4 + 4 * dims.length);
  const view = new DataView(out.buffer);
  view.setUint32(0, magic, false);
  dims.forEach((d, i) => view.setUint32(4 + 4 * i, d, false));
  return out;
}

function concat(...parts: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((s, p) => s + p.length, 0));
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
}

function randomDims(): [number, number, number] {
  const r = randomBytes(3);
  return [1 + (r[0] % 20), 1 + (r[1] % 9), 1 + (r[2] % 9)];
}

function catchIdx(fn: () => unknown): IdxError {
  try {
    fn();
  } catch (err) {
    expect(err).toBeInstanceOf(IdxError);
    return err as IdxError;
  }
  throw new Error('expected an IdxError, nothing was thrown');
}

let dir: string;
beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'ddp-idx-'));
});
afterAll(() => {
  rmSync(dir, { recursive: true, force: true });
});

describe('parseIdx on good data', () => {
  it('reads an images file: dims and bytes', () => {
    const dims = randomDims();
    const data = new Uint8Array(randomBytes(dims[0] * dims[1] * dims[2]));
    const parsed = parseIdx(concat(header(0x803, dims), data), 'imgs');
    expect(parsed.dims).toEqual(dims);
    expect(parsed.data).toEqual(data);
  });

  it('reads a labels file', () => {
    const n = 1 + (randomBytes(1)[0] % 50);
    const data = new Uint8Array(randomBytes(n));
    const parsed = parseIdx(concat(header(0x801, [n]), data), 'labels', 1);
    expect(parsed.dims).toEqual([n]);
    expect(parsed.data).toEqual(data);
  });

  it('accepts a file with zero samples', () => {
    expect(parseIdx(header(0x803, [0, 28, 28]), 'empty').data.length).toBe(0);
  });

  it('reads gzipped bytes (detected by the 1f 8b magic)', () => {
    const dims = randomDims();
    const data = new Uint8Array(randomBytes(dims[0] * dims[1] * dims[2]));
    const parsed = parseIdx(gzipSync(concat(header(0x803, dims), data)), 'imgs');
    expect(parsed.dims).toEqual(dims);
    expect(parsed.data).toEqual(data);
  });

  it('round-trips encodeIdx', () => {
    const dims = randomDims();
    const data = new Uint8Array(randomBytes(dims[0] * dims[1] * dims[2]));
    expect(encodeIdx(dims, data)).toEqual(concat(header(0x803, dims), data));
    expect(parseIdx(encodeIdx(dims, data), 'x').data).toEqual(data);
  });
});

describe('parseIdx on corrupt data', () => {
  it('names the file and both sizes when truncated (the message format users see)', () => {
    const bytes = concat(header(0x803, [60000, 28, 28]), new Uint8Array(1000));
    const err = catchIdx(() => parseIdx(bytes, 'train-images-idx3-ubyte'));
    expect(err.file).toBe('train-images-idx3-ubyte');
    expect(err.message).toBe(
      'train-images-idx3-ubyte: truncated: header says 60000x28x28 = 47040000 bytes of data, file has 1000',
    );
  });

  it('rejects a file one byte too short or too long', () => {
    const dims = randomDims();
    const size = dims[0] * dims[1] * dims[2];
    const good = concat(header(0x803, dims), new Uint8Array(randomBytes(size)));
    expect(catchIdx(() => parseIdx(good.subarray(0, good.length - 1), 'f')).message).toBe(
      `f: truncated: header says ${dims.join('x')} = ${size} bytes of data, file has ${size - 1}`,
    );
    expect(catchIdx(() => parseIdx(concat(good, new Uint8Array([7])), 'f')).message).toBe(
      `f: too long: header says ${dims.join('x')} = ${size} bytes of data, file has ${size + 1}`,
    );
  });

  it.each([
    ['float data type', 0x00000d03],
    ['two dimensions', 0x00000802],
    ['non-zero first byte', 0x01000803],
    ['a PNG signature', 0x89504e47],
  ])('rejects a wrong magic number (%s)', (_what, magic) => {
    const err = catchIdx(() => parseIdx(concat(header(magic, [2, 2, 2]), new Uint8Array(8)), 'bad.idx'));
    expect(err.message).toContain('bad.idx: bad magic number 0x' + magic.toString(16).padStart(8, '0'));
    expect(err.message).toContain('expected 0x00000803');
  });

  it('rejects files too short for their header', () => {
    expect(catchIdx(() => parseIdx(new Uint8Array([0, 0, 8]), 'tiny')).message).toMatch(/^tiny: too short/);
    expect(catchIdx(() => parseIdx(header(0x803, [5, 28]), 'cut')).message).toBe(
      'cut: truncated header: 3 dimensions need 16 header bytes, file has 12',
    );
  });

  it('rejects zero rows or cols', () => {
    expect(catchIdx(() => parseIdx(header(0x803, [3, 0, 28]), 'f')).message).toContain('dimension 1 (rows) is 0');
    expect(catchIdx(() => parseIdx(header(0x803, [3, 28, 0]), 'f')).message).toContain('dimension 2 (cols) is 0');
  });

  it('rejects a labels file where images are expected and vice versa', () => {
    const labels = concat(header(0x801, [4]), new Uint8Array(4));
    expect(catchIdx(() => parseIdx(labels, 'l', 3)).message).toContain('expected an IDX images file');
    const images = concat(header(0x803, [1, 2, 2]), new Uint8Array(4));
    expect(catchIdx(() => parseIdx(images, 'i', 1)).message).toContain('expected an IDX labels file');
  });

  it('reports truncated gzip data as corrupt, naming the file', () => {
    const gz = gzipSync(concat(header(0x803, [10, 28, 28]), new Uint8Array(randomBytes(7840))));
    const err = catchIdx(() => parseIdx(gz.subarray(0, gz.length >> 1), 'x.gz'));
    expect(err.file).toBe('x.gz');
    expect(err.message).toMatch(/^x\.gz: gzip data is corrupt or truncated/);
  });

  it('reports a gzipped file whose content is truncated IDX', () => {
    const gz = gzipSync(concat(header(0x801, [10]), new Uint8Array(9)));
    expect(catchIdx(() => parseIdx(gz, 'l.gz')).message).toBe(
      'l.gz: truncated: header says 10 = 10 bytes of data, file has 9',
    );
  });
});

describe('readIdxFile', () => {
  it('reads plain and gzipped files whatever their names say', () => {
    const dims = randomDims();
    const data = new Uint8Array(randomBytes(dims[0] * dims[1] * dims[2]));
    // Gzipped content under a plain name and plain content under a .gz name.
    writeIdxFile(join(dir, 'gz-inside'), dims, data, { gzip: true });
    writeIdxFile(join(dir, 'plain-inside.gz'), dims, data);
    for (const name of ['gz-inside', 'plain-inside.gz']) {
      const parsed = readIdxFile(join(dir, name));
      expect(parsed.dims).toEqual(dims);
      expect(parsed.data).toEqual(data);
    }
  });

  it('names the path of a missing file or a folder', () => {
    const missing = join(dir, 'nope-idx1-ubyte');
    const err = catchIdx(() => readIdxFile(missing));
    expect(err.file).toBe(missing);
    expect(err.message).toBe(`${missing}: no such file`);
    const sub = join(dir, 'a-folder');
    mkdirSync(sub);
    expect(catchIdx(() => readIdxFile(sub)).message).toContain('is a directory');
  });

  it('names the path of a corrupt file', () => {
    const path = join(dir, 'corrupt');
    writeFileSync(path, concat(header(0x801, [5]), new Uint8Array(3)));
    const err = catchIdx(() => readIdxFile(path));
    expect(err.file).toBe(path);
    expect(err.message).toBe(`${path}: truncated: header says 5 = 5 bytes of data, file has 3`);
  });
});
