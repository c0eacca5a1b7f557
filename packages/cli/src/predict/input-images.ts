// The input images of `ddp predict`: PNG files or IDX images files, turned into 28x28 uint8
// grayscale images in MNIST's convention (white digit on a black background). The model input is
// then made by core's scalePixels (p / 255), exactly as in training.
//
// PNG decisions (also in the --help text):
// - Any PNG colour type and bit depth (pngjs gives 8-bit RGBA for all of them).
// - Colour becomes gray by luminance, Y = 0.299 R + 0.587 G + 0.114 B (ITU-R BT.601, as PIL's "L"
//   mode); a gray PNG keeps its values exactly.
// - Transparency is composited onto the background: black, or white with --invert (the image is
//   then black on white), so a transparent pixel always ends up as background (0).
// - --invert maps v to 255 - v, for dark digits on a light background.
// - Sizes other than 28x28 are refused unless --resize is given; then the image is stretched to
//   28x28 by area averaging (each output pixel is the mean of the source area it covers; the aspect
//   ratio is not kept and no centring is done).
// - The result is rounded to integers 0..255, like an IDX image, so a PNG written from an IDX image
//   predicts exactly like the IDX image.
import { readFileSync } from 'node:fs';
import { IMAGE_SIZE, parseIdx } from '@ddp/core';
import { PNG } from 'pngjs';
import { UsageError } from '../args.js';

export interface InputImage {
  /** The file as given on the command line. */
  input: string;
  /** 0 for a PNG; the sample index in an IDX file. */
  index: number;
  format: 'png' | 'idx';
  /** IMAGE_SIZE * IMAGE_SIZE gray values, row-major, white on black. */
  pixels: Uint8Array;
}

export interface ImageOptions {
  /** Black-on-white input: v -> 255 - v (transparency then counts as white). */
  invert: boolean;
  /** Stretch images that are not 28x28 instead of refusing them. */
  resize: boolean;
  /** Take only the first N images of each IDX file. */
  limit?: number;
}

const PNG_SIGNATURE = [0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a];
const startsWith = (bytes: Uint8Array, sig: readonly number[]) => bytes.length >= sig.length && sig.every((b, i) => bytes[i] === b);
const isPng = (bytes: Uint8Array) => startsWith(bytes, PNG_SIGNATURE);
/** gzip (an IDX .gz) or an uint8 IDX magic (0x00000803 images; parseIdx explains any other). */
const isIdx = (bytes: Uint8Array) => startsWith(bytes, [0x1f, 0x8b]) || startsWith(bytes, [0x00, 0x00, 0x08]);
const firstBytes = (bytes: Uint8Array) =>
  bytes.length === 0 ? 'it is empty' : `it starts with bytes ${Array.from(bytes.subarray(0, 4), (b) => b.toString(16).padStart(2, '0')).join(' ')}`;

function readBytes(file: string): Uint8Array {
  try {
    return readFileSync(file);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ENOENT') throw new UsageError(`${file}: no such file`);
    if (code === 'EISDIR') throw new UsageError(`${file}: is a directory, expected a PNG or an IDX images file`);
    if (code === 'EACCES') throw new UsageError(`${file}: permission denied`);
    throw new UsageError(`${file}: cannot read: ${err instanceof Error ? err.message : String(err)}`);
  }
}

/** Reads one command-line input: one image for a PNG, every image (or the first --limit) of an IDX file. */
export function readInputImages(file: string, opts: ImageOptions): InputImage[] {
  const bytes = readBytes(file);
  if (isPng(bytes)) return [{ input: file, index: 0, format: 'png', pixels: pngToMnist(bytes, file, opts) }];
  if (!isIdx(bytes)) {
    if (file.toLowerCase().endsWith('.png')) throw new UsageError(`${file}: not a valid PNG (no PNG signature; ${firstBytes(bytes)})`);
    throw new UsageError(`${file}: neither a PNG nor an IDX images file (${firstBytes(bytes)})`);
  }
  const { dims, data } = parseIdx(bytes, file, 3);
  const [count, rows, cols] = dims;
  const n = opts.limit === undefined ? count : Math.min(count, opts.limit);
  if (n > 0) checkSize(file, `images are ${cols}x${rows}`, cols, rows, opts);
  const out: InputImage[] = [];
  const size = rows * cols;
  for (let i = 0; i < n; i++) {
    const gray = Float64Array.from(data.subarray(i * size, (i + 1) * size));
    out.push({ input: file, index: i, format: 'idx', pixels: finish(gray, cols, rows, opts) });
  }
  return out;
}

function checkSize(file: string, what: string, width: number, height: number, opts: ImageOptions): void {
  if ((width !== IMAGE_SIZE || height !== IMAGE_SIZE) && !opts.resize) {
    throw new UsageError(`${file}: ${what} (width x height), the model takes ${IMAGE_SIZE}x${IMAGE_SIZE}; pass --resize to stretch it`);
  }
}

/** Decodes a PNG and applies the decisions above. Throws a UsageError naming the file. */
export function pngToMnist(bytes: Uint8Array, file: string, opts: ImageOptions): Uint8Array {
  let png: { width: number; height: number; data: Uint8Array };
  try {
    png = PNG.sync.read(Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength));
  } catch (err) {
    const message = err instanceof Error ? err.message : String(err);
    // pngjs's words for image data that ends early, a file cut short or damaged ("There are some read requests waitng on finished stream").
    const why = /finished stream|end of (input|stream)/i.test(message) ? 'truncated or corrupt: the image data ends early' : message;
    throw new UsageError(`${file}: not a valid PNG (${why})`);
  }
  const { width, height, data } = png;
  checkSize(file, `image is ${width}x${height}`, width, height, opts);
  const background = opts.invert ? 255 : 0;
  const gray = new Float64Array(width * height);
  for (let i = 0; i < gray.length; i++) {
    const r = data[4 * i];
    const g = data[4 * i + 1];
    const b = data[4 * i + 2];
    const a = data[4 * i + 3];
    const y = (299 * r + 587 * g + 114 * b) / 1000;
    gray[i] = a === 255 ? y : (y * a + background * (255 - a)) / 255;
  }
  return finish(gray, width, height, opts);
}

/** Inverts if asked, resizes to 28x28 if needed, rounds to 0..255. */
function finish(gray: Float64Array, width: number, height: number, opts: ImageOptions): Uint8Array {
  if (opts.invert) for (let i = 0; i < gray.length; i++) gray[i] = 255 - gray[i];
  const sized = width === IMAGE_SIZE && height === IMAGE_SIZE ? gray : resizeArea(gray, width, height, IMAGE_SIZE, IMAGE_SIZE);
  const out = new Uint8Array(sized.length);
  for (let i = 0; i < sized.length; i++) out[i] = Math.min(255, Math.max(0, Math.round(sized[i])));
  return out;
}

/** For each output cell along one axis: the source cells it covers and the fraction of it each covers. */
function axisWeights(src: number, dst: number): Array<Array<[number, number]>> {
  const scale = src / dst;
  const cells: Array<Array<[number, number]>> = [];
  for (let o = 0; o < dst; o++) {
    const from = o * scale;
    const to = (o + 1) * scale;
    const parts: Array<[number, number]> = [];
    for (let s = Math.floor(from); s < Math.min(src, Math.ceil(to)); s++) {
      const overlap = Math.min(to, s + 1) - Math.max(from, s);
      if (overlap > 0) parts.push([s, overlap / scale]);
    }
    cells.push(parts);
  }
  return cells;
}

/**
 * Area-average resampling of a row-major width x height image to dstW x dstH: each output pixel is
 * the mean of the source rectangle it covers (pixels cut by its edges count by the covered fraction).
 * Shrinking averages; enlarging repeats pixels (blending only at cell edges).
 */
export function resizeArea(src: Float64Array, width: number, height: number, dstW: number, dstH: number): Float64Array {
  const wx = axisWeights(width, dstW);
  const wy = axisWeights(height, dstH);
  const rows = new Float64Array(height * dstW);
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < dstW; x++) {
      let v = 0;
      for (const [s, w] of wx[x]) v += src[y * width + s] * w;
      rows[y * dstW + x] = v;
    }
  }
  const out = new Float64Array(dstW * dstH);
  for (let y = 0; y < dstH; y++) {
    for (let x = 0; x < dstW; x++) {
      let v = 0;
      for (const [s, w] of wy[y]) v += rows[s * dstW + x] * w;
      out[y * dstW + x] = v;
    }
  }
  return out;
}
