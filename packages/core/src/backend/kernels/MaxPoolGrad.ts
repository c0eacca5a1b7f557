import { backend_util, MaxPoolGrad } from '@tensorflow/tfjs-core';
import type { KernelConfig, NamedAttrMap, TensorInfo } from '@tensorflow/tfjs-core';
import { checkFloat32, checkPadding, checkRank4, checkShapeEquals, checkStrides, UnsupportedAttributeError } from './kernel-attrs.js';
import { f32Index, heapF32, makeZerosF32, type WasmBackend } from './wasm-backend.js';

const KERNEL = 'MaxPoolGrad';

/**
 * dx of a max pool, in one pass over the wasm heap: each window's dy goes to the first maximum of
 * the window in row-major order (the tfjs cpu rule, so ties after a ReLU land where cpu puts them);
 * overlapping windows add up. Windows whose inputs are all NaN or -Infinity pass no gradient, as on cpu.
 * The stock wasm kernel takes ~30 ms for the seed CNN's first pool at batch 64; this takes ~1 ms.
 */
export function maxPoolGrad(args: { inputs: { dy?: TensorInfo; input?: TensorInfo; output?: TensorInfo }; backend: WasmBackend; attrs: NamedAttrMap }): TensorInfo {
  const { inputs, backend, attrs } = args;
  const { dy, input } = inputs;
  checkFloat32(KERNEL, { dy, input });
  checkRank4(KERNEL, 'input', input!.shape);
  const pad = checkPadding(KERNEL, attrs.pad);
  const strides = checkStrides(KERNEL, attrs.strides, (s) => s >= 1, 'positive integers (a number or [h, w])');
  const filterSize = attrs.filterSize;
  const fs = typeof filterSize === 'number' ? [filterSize, filterSize] : filterSize;
  if (!Array.isArray(fs) || fs.length !== 2 || !fs.every((k) => Number.isInteger(k) && (k as number) >= 1)) {
    throw new UnsupportedAttributeError(KERNEL, 'filterSize', filterSize, 'positive integers (a number or [h, w])');
  }
  const info = backend_util.computePool2DInfo(input!.shape as [number, number, number, number], fs as [number, number], strides, 1, pad);
  checkShapeEquals(KERNEL, 'dy', dy!.shape, info.outShape);

  const { batchSize: n, inHeight: h, inWidth: w, inChannels: c, outHeight: oh, outWidth: ow } = info;
  const { strideHeight: sh, strideWidth: sw, filterHeight: fh, filterWidth: fw } = info;
  const padTop = info.padInfo.top;
  const padLeft = info.padInfo.left;

  const dx = makeZerosF32(backend, input!.shape);
  const heap = heapF32(backend);
  const xBase = f32Index(backend, input!);
  const dyBase = f32Index(backend, dy!);
  const dxBase = f32Index(backend, dx);
  const rowStride = w * c;
  for (let b = 0; b < n; b++) {
    const xImage = xBase + b * h * rowStride;
    const dxImage = dxBase - xBase; // dx index = x index + this offset
    for (let py = 0; py < oh; py++) {
      const y0 = Math.max(0, py * sh - padTop);
      const y1 = Math.min(h, py * sh - padTop + fh);
      for (let px = 0; px < ow; px++) {
        const x0 = Math.max(0, px * sw - padLeft);
        const x1 = Math.min(w, px * sw - padLeft + fw);
        const dyPixel = dyBase + ((b * oh + py) * ow + px) * c;
        const corner = xImage + y0 * rowStride + x0 * c;
        if (y1 - y0 === 2 && x1 - x0 === 2) {
          // The common 2x2 window, without data-dependent branches: on random data the compare
          // chain of the generic loop mispredicts about half the time (6 ms -> 4 ms for the seed
          // CNN's first pool). Which of a, p (top row) and q, r (bottom row) is the first maximum
          // is read off the sign bits of differences, and the winner is picked by indexing.
          const i1 = corner + c;
          const i2 = corner + rowStride;
          const i3 = i2 + c;
          for (let d = 0; d < c; d++) {
            // + 0 turns -0 into +0, so that -0 vs +0 counts as a tie (as '>' does), not by sign.
            const a = heap[corner + d] + 0;
            const p = heap[i1 + d] + 0;
            const q = heap[i2 + d] + 0;
            const r = heap[i3 + d] + 0;
            const total = a + p + q + r;
            if (total - total !== 0) {
              // A NaN or an infinity (whose differences have no reliable sign): the careful loop decides.
              firstMaxScatter(heap, corner + d, 2, 2, rowStride, c, dxImage, dyPixel + d);
              continue;
            }
            quad[0] = a;
            quad[1] = p;
            quad[2] = q;
            quad[3] = r;
            diff[0] = a - p;
            const right = signWord[1] >>> 31; // 1 iff p > a (a tie keeps the first)
            diff[0] = q - r;
            const rightBelow = signWord[1] >>> 31; // 1 iff r > q
            diff[0] = quad[right] - quad[2 + rightBelow];
            const below = signWord[1] >>> 31; // 1 iff the bottom row's maximum beats the top's
            const col = right + below * (rightBelow - right);
            heap[corner + d + below * rowStride + col * c + dxImage] += heap[dyPixel + d];
          }
          continue;
        }
        for (let d = 0; d < c; d++) {
          firstMaxScatter(heap, corner + d, y1 - y0, x1 - x0, rowStride, c, dxImage, dyPixel + d);
        }
      }
    }
  }
  return dx;
}

// Scratch for the branch-free 2x2 path: a float64 whose high word holds the sign bit.
const quad = new Float64Array(4);
const diff = new Float64Array(1);
const signWord = new Int32Array(diff.buffer);
if (new Uint8Array(new Uint16Array([1]).buffer)[0] !== 1) throw new Error('ddp wasm kernels: a little-endian machine is required');

/**
 * Adds dy (at dyAt) to dx at the window's first maximum in row-major order (the tfjs cpu rule):
 * strict '>' from -Infinity, so NaNs are skipped and an all -Infinity (or all NaN) window passes
 * nothing. x indices are heap indices; dx index = x index + dxOffset.
 */
function firstMaxScatter(heap: Float32Array, first: number, rows: number, cols: number, rowStride: number, pixelStride: number, dxOffset: number, dyAt: number): void {
  let best = Number.NEGATIVE_INFINITY;
  let at = -1;
  for (let y = 0, row = first; y < rows; y++, row += rowStride) {
    for (let x = 0, i = row; x < cols; x++, i += pixelStride) {
      const v = heap[i];
      if (v > best) {
        best = v;
        at = i;
      }
    }
  }
  if (at >= 0) heap[at + dxOffset] += heap[dyAt];
}

export const maxPoolGradConfig: KernelConfig = {
  kernelName: MaxPoolGrad,
  backendName: 'wasm',
  kernelFunc: maxPoolGrad as unknown as KernelConfig['kernelFunc'],
};
