// Turning sample indices into model inputs: pixels scaled to [0, 1] (the same for train and
// test, a mistake of the original Keras program) and labels as int32 class ids.
import type { Split } from './datasets.js';

/** PIXEL_SCALE[p] = p / 255 in float32: a lookup gives exactly the division, faster. */
const PIXEL_SCALE = Float32Array.from({ length: 256 }, (_, p) => p / 255);

function badIndex(where: string, indices: ArrayLike<number>, i: number, count: number): RangeError {
  return new RangeError(`${where}: indices[${i}] = ${String(indices[i])} is not a sample index in [0, ${count - 1}]`);
}

/**
 * Raw uint8 pixels (any number of images, row-major) as model inputs: p / 255 in float32, exactly
 * as gatherImages scales the training and test images. For images that come from elsewhere (ddp predict).
 */
export function scalePixels(bytes: Uint8Array): Float32Array {
  const out = new Float32Array(bytes.length);
  for (let i = 0; i < bytes.length; i++) out[i] = PIXEL_SCALE[bytes[i]];
  return out;
}

/**
 * The images at `indices`, as n*rows*cols float32 pixels / 255, row-major
 * (an NHWC tensor [n, rows, cols, 1]).
 */
export function gatherImages(split: Split, indices: ArrayLike<number>): Float32Array {
  const pixels = split.rows * split.cols;
  const n = indices.length;
  const out = new Float32Array(n * pixels);
  const src = split.images;
  for (let i = 0; i < n; i++) {
    const idx = indices[i];
    // `>>> 0` differs from idx for negatives, fractions and NaN.
    if (idx >>> 0 !== idx || idx >= split.count) throw badIndex('gatherImages', indices, i, split.count);
    const from = idx * pixels;
    const to = i * pixels;
    for (let p = 0; p < pixels; p++) out[to + p] = PIXEL_SCALE[src[from + p]];
  }
  return out;
}

/** The labels at `indices` as int32 class ids. */
export function gatherLabels(split: Split, indices: ArrayLike<number>): Int32Array {
  const n = indices.length;
  const out = new Int32Array(n);
  const src = split.labels;
  for (let i = 0; i < n; i++) {
    const idx = indices[i];
    if (idx >>> 0 !== idx || idx >= split.count) throw badIndex('gatherLabels', indices, i, split.count);
    out[i] = src[idx];
  }
  return out;
}

/** A shard's model inputs: its indices, pixels scaled to [0, 1] and int32 labels. */
export interface ShardInputs {
  indices: Uint32Array;
  images: Float32Array;
  labels: Int32Array;
}

/** THE way a shard's inputs are gathered from a split, for every mode and the evaluation. */
export function gatherShard(split: Split, indices: Uint32Array): ShardInputs {
  return { indices, images: gatherImages(split, indices), labels: gatherLabels(split, indices) };
}
