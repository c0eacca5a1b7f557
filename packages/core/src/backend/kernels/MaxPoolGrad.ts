import { backend_util, MaxPoolGrad } from '@tensorflow/tfjs-core';
import type { NamedAttrMap, TensorInfo } from '@tensorflow/tfjs-core';
import { checkFloat32, checkPadding, checkRank4, checkShapeEquals, checkStrides, UnsupportedAttributeError } from './kernel-attrs.js';
import { simdMaxPoolGrad2x2 } from './simd-max-pool-grad.js';
import { f32Index, heapF32, makeF32, makeZerosF32, wasmKernelConfig, wasmMemory, type WasmBackend } from './wasm-backend.js';

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

  // Non-overlapping 2x2 windows inside the image, 4k channels: the SIMD routine, image by image.
  const memory = wasmMemory(backend);
  const simd = memory && fh === 2 && fw === 2 && sh === 2 && sw === 2 && padTop === 0 && padLeft === 0 &&
    2 * oh <= h && 2 * ow <= w && c % 4 === 0 ? simdMaxPoolGrad2x2(memory) : null;
  if (simd) {
    // Rows/columns that no window covers (odd sizes) get no gradient; the routine never writes them.
    const dx = h % 2 === 1 || w % 2 === 1 ? makeZerosF32(backend, input!.shape) : makeF32(backend, input!.shape);
    const xByte = f32Index(backend, input!) * 4;
    const dyByte = f32Index(backend, dy!) * 4;
    const dxByte = f32Index(backend, dx) * 4;
    let special = 0;
    for (let b = 0; b < n; b++) {
      special |= simd(xByte + b * h * w * c * 4, dyByte + b * oh * ow * c * 4, dxByte + b * h * w * c * 4, oh, ow, c * 4, w * c * 4);
    }
    if (special === 0) return dx;
    backend.disposeData(dx.dataId); // NaN or all -Infinity somewhere: the JS loop below decides.
  }

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
          // The common 2x2 window, unrolled (same first-maximum rule as below): ~30% faster.
          const i1 = corner + c;
          const i2 = corner + rowStride;
          const i3 = i2 + c;
          for (let d = 0; d < c; d++) {
            let best = heap[corner + d];
            let at = best > Number.NEGATIVE_INFINITY ? corner + d : -1;
            let v = heap[i1 + d];
            if (v > best || (at < 0 && v > Number.NEGATIVE_INFINITY)) { best = v; at = i1 + d; }
            v = heap[i2 + d];
            if (v > best || (at < 0 && v > Number.NEGATIVE_INFINITY)) { best = v; at = i2 + d; }
            v = heap[i3 + d];
            if (v > best || (at < 0 && v > Number.NEGATIVE_INFINITY)) { best = v; at = i3 + d; }
            if (at >= 0) heap[at + dxImage] += heap[dyPixel + d];
          }
          continue;
        }
        for (let d = 0; d < c; d++) {
          let best = Number.NEGATIVE_INFINITY;
          let at = -1;
          for (let y = y0, row = corner + d; y < y1; y++, row += rowStride) {
            for (let x = x0, i = row; x < x1; x++, i += c) {
              const v = heap[i];
              if (v > best) {
                best = v;
                at = i;
              }
            }
          }
          if (at >= 0) heap[at + dxImage] += heap[dyPixel + d];
        }
      }
    }
  }
  return dx;
}

export const maxPoolGradConfig = wasmKernelConfig(MaxPoolGrad, maxPoolGrad);
