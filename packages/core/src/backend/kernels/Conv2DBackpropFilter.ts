import { backend_util, Conv2DBackpropFilter } from '@tensorflow/tfjs-core';
import type { NamedAttrMap, TensorInfo } from '@tensorflow/tfjs-core';
import { checkConv2DBackpropFilterArgs } from './kernel-attrs.js';
import { simdIm2colT } from './simd-im2col-t.js';
import { GROUP_VECTORS, simdSmallPatchFilterGrad } from './simd-small-patch-filter-grad.js';
import { disposeTemps, f32Index, heapF32, makeF32, runWasmKernel, wasmKernelConfig, wasmMemory, type WasmBackend } from './wasm-backend.js';

/**
 * dW of a conv2d, by one of three routes (all exact; picked by shape):
 *   dW[y, x, i, o] = sum_{b, p, q} x[b, p*s + y - pad, q*s + x - pad, i] * dy[b, p, q, o]
 * - direct SIMD (simd-small-patch-filter-grad.ts): for small patches (kh*kw*in <= 16) with every
 *   window inside x, one pass over dy, output row by output row, with up to 4 taps x 8 channels of
 *   dW in SIMD registers.
 * - im2col: dW^T = dy^T x patches(x), one XNNPACK matrix product whose packed operand is the patch
 *   matrix; for other small patches.
 * - convolution: the batch plays the part of the channels. dW is the valid correlation of
 *   xT = x transposed to [i, H, W, b] with the "filter" dyT = dy transposed to [p, q, b, o],
 *   dilated by the stride; the result [i, kh, kw, o] is reordered into [kh, kw, i, o]. XNNPACK reads
 *   xT through its indirection buffer, so no patch matrix is written, but it packs all of dy as
 *   weights on every call: too slow when dy is large and the patch small.
 * - transposed im2col (simd-im2col-t.wat): colsT [kh*kw*in, n*oh*ow] written by SIMD, then
 *   dW = colsT x dy as one XNNPACK product whose packed operand is dy. XNNPACK repacks its B
 *   operand on every call: 8.6 ms for the seed CNN's 7744 x 288 patch matrix, 0.5 ms for its
 *   7744 x 64 dy. For windows inside x, in-channels and n*oh*ow multiples of 4.
 * Measured on the seed CNN (batch 64): layer 1 (1 in-channel) 1.3 ms direct, 5.0 ms by im2col,
 * 8.0 ms by convolution; layer 2 (32 in-channels) 15 ms by convolution vs 21 ms by im2col.
 */
export function conv2DBackpropFilter(args: { inputs: { x?: TensorInfo; dy?: TensorInfo }; backend: WasmBackend; attrs: NamedAttrMap }): TensorInfo {
  const { backend } = args;
  const { x, dy, info } = checkConv2DBackpropFilterArgs(args.inputs, args.attrs);
  const patch = info.inChannels * info.filterHeight * info.filterWidth;
  if (patch <= SIMD_MAX_PATCH) {
    const direct = filterGradBySimd(backend, x, dy, info);
    if (direct) return direct;
  }
  if (patch <= IM2COL_MAX_PATCH) return filterGradByIm2col(backend, x, dy, info);
  return (transposedIm2col ? filterGradByTransposedIm2col(backend, x, dy, info) : null) ?? filterGradByConvolution(backend, x, dy, info);
}

let transposedIm2col = true;

/**
 * Turns the transposed-im2col route on (the default) or off; returns the previous setting. For the
 * step benchmark's "before" variant (the routes as they were without it).
 */
export function setTransposedIm2colRoute(on: boolean): boolean {
  const was = transposedIm2col;
  transposedIm2col = on;
  return was;
}

/**
 * The transposed-im2col route: dW [kh*kw*in, out] = colsT [kh*kw*in, M] x dy [M, out], M = n*oh*ow;
 * null where it does not apply (a window reaching into padding, in-channels or M not a multiple
 * of 4, or no wasm SIMD).
 */
export function filterGradByTransposedIm2col(backend: WasmBackend, x: TensorInfo, dy: TensorInfo, info: backend_util.Conv2DInfo): TensorInfo | null {
  const { batchSize: n, inHeight: h, inWidth: w, inChannels: ci, outHeight: oh, outWidth: ow, outChannels: co } = info;
  const { filterHeight: kh, filterWidth: kw, strideHeight: sh, strideWidth: sw } = info;
  const m = n * oh * ow;
  const memory = wasmMemory(backend);
  if (memory === undefined || !windowsInsideInput(info) || ci % 4 !== 0 || m % 4 !== 0 || info.dilationHeight !== 1 || info.dilationWidth !== 1) return null;
  const routine = simdIm2colT(memory);
  if (routine === null) return null;
  const pixelBytes = 4 * ci;
  const base = backend.makeOutput([m], 'int32');
  const taps = backend.makeOutput([kh * kw], 'int32');
  const colsT = makeF32(backend, [kh * kw * ci, m]);
  {
    const heap = new Int32Array(heapF32(backend).buffer);
    let i = f32Index(backend, base);
    for (let b = 0; b < n; b++) {
      for (let p = 0; p < oh; p++) {
        for (let q = 0; q < ow; q++) heap[i++] = ((b * h + p * sh) * w + q * sw) * pixelBytes;
      }
    }
    let t = f32Index(backend, taps);
    for (let y = 0; y < kh; y++) for (let xx = 0; xx < kw; xx++) heap[t++] = (y * w + xx) * pixelBytes;
  }
  routine(f32Index(backend, x) * 4, f32Index(backend, base) * 4, f32Index(backend, taps) * 4, f32Index(backend, colsT) * 4, m, kh * kw, pixelBytes);
  const dw = runWasmKernel('BatchMatMul', backend, { a: colsT, b: { ...dy, shape: [m, co] } }, { transposeA: false, transposeB: false });
  disposeTemps(backend, base, taps, colsT);
  // [kh*kw*in, out] is the filter layout [kh, kw, in, out] already.
  return { ...dw, shape: [kh, kw, ci, co] };
}

/** Every window lies inside x: no padding before, and none needed after ('same' can pad the end). */
function windowsInsideInput(info: backend_util.Conv2DInfo): boolean {
  const { inHeight: h, inWidth: w, outHeight: oh, outWidth: ow, filterHeight: kh, filterWidth: kw, strideHeight: sh, strideWidth: sw } = info;
  return info.padInfo.top === 0 && info.padInfo.left === 0 && (oh - 1) * sh + kh <= h && (ow - 1) * sw + kw <= w;
}

/**
 * Up to this patch size the direct SIMD route applies. The routine takes any patch, but each extra
 * 4 taps cost one more pass over the output row, and it was measured against the other routes on
 * small patches only.
 */
const SIMD_MAX_PATCH = 16;

/**
 * The direct SIMD route (simd-small-patch-filter-grad.ts) for small patches, windows inside x and
 * out-channels a multiple of 8; null when it does not apply or the engine has no wasm SIMD.
 */
export function filterGradBySimd(backend: WasmBackend, x: TensorInfo, dy: TensorInfo, info: backend_util.Conv2DInfo): TensorInfo | null {
  const { batchSize: n, inHeight: h, inWidth: w, inChannels: ci, outHeight: oh, outWidth: ow, outChannels: co } = info;
  const { filterHeight: kh, filterWidth: kw, strideHeight: sh, strideWidth: sw } = info;
  const memory = wasmMemory(backend);
  if (memory === undefined || !windowsInsideInput(info) || co % (4 * GROUP_VECTORS) !== 0) return null;
  if (kh * kw * ci > SIMD_MAX_PATCH) return null;
  const routine = simdSmallPatchFilterGrad(kh, kw, ci)(memory);
  if (routine === null) return null;
  const dw = makeF32(backend, [kh, kw, ci, co]);
  routine(f32Index(backend, x) * 4, f32Index(backend, dy) * 4, f32Index(backend, dw) * 4, n, h, w, oh, ow, co, sh, sw);
  return dw;
}

/**
 * Up to this patch size (in * kh * kw) the im2col route is faster (measured: 1 and 2 in-channels
 * with 3x3 filters by im2col, 32 and 64 by convolution).
 */
const IM2COL_MAX_PATCH = 32;

/** dW^T [out, kh*kw*in] = dy^T [out, n*oh*ow] x im2col(x) [n*oh*ow, kh*kw*in], on XNNPACK. */
export function filterGradByIm2col(backend: WasmBackend, x: TensorInfo, dy: TensorInfo, info: backend_util.Conv2DInfo): TensorInfo {
  const { batchSize: n, inHeight: h, inWidth: w, inChannels: ci, outHeight: oh, outWidth: ow, outChannels: co } = info;
  const { filterHeight: kh, filterWidth: kw, strideHeight: sh, strideWidth: sw } = info;
  const { top, left } = info.padInfo;
  const m = n * oh * ow;
  const patch = kh * kw * ci;
  const dyT = runWasmKernel('Transpose', backend, { x: { ...dy, shape: [m, co] } }, { perm: [1, 0] });
  const cols = makeF32(backend, [m, patch]);
  {
    const heap = heapF32(backend);
    const xBase = f32Index(backend, x);
    let o = f32Index(backend, cols);
    for (let b = 0; b < n; b++) {
      for (let p = 0; p < oh; p++) {
        for (let q = 0; q < ow; q++) {
          const col0 = q * sw - left;
          const inside = col0 >= 0 && col0 + kw <= w;
          for (let y = 0; y < kh; y++) {
            const row = p * sh + y - top;
            if (row < 0 || row >= h) {
              heap.fill(0, o, o + kw * ci);
              o += kw * ci;
            } else if (inside) {
              // The patch row is one contiguous run of kw * in values in NHWC.
              const s = xBase + ((b * h + row) * w + col0) * ci;
              heap.copyWithin(o, s, s + kw * ci);
              o += kw * ci;
            } else {
              for (let xx = 0; xx < kw; xx++, o += ci) {
                const col = col0 + xx;
                if (col < 0 || col >= w) {
                  heap.fill(0, o, o + ci);
                } else {
                  const s = xBase + ((b * h + row) * w + col) * ci;
                  for (let i = 0; i < ci; i++) heap[o + i] = heap[s + i];
                }
              }
            }
          }
        }
      }
    }
  }
  const product = runWasmKernel('BatchMatMul', backend, { a: dyT, b: cols }, { transposeA: false, transposeB: false });
  const dw = makeF32(backend, [kh, kw, ci, co]);
  const heap = heapF32(backend);
  const src = f32Index(backend, product);
  const dst = f32Index(backend, dw);
  for (let o = 0; o < co; o++) {
    for (let j = 0; j < patch; j++) heap[dst + j * co + o] = heap[src + o * patch + j];
  }
  disposeTemps(backend, dyT, cols, product);
  return dw;
}

export function filterGradByConvolution(backend: WasmBackend, x: TensorInfo, dy: TensorInfo, info: backend_util.Conv2DInfo): TensorInfo {
  const { inHeight: h, inWidth: w, inChannels: ci, outHeight: oh, outWidth: ow, outChannels: co } = info;
  const { filterHeight: kh, filterWidth: kw, strideHeight: sh, strideWidth: sw } = info;
  const { top, bottom, left, right } = info.padInfo;

  const xT = runWasmKernel('Transpose', backend, { x }, { perm: [3, 1, 2, 0] });
  const dyT = runWasmKernel('Transpose', backend, { x: dy }, { perm: [1, 2, 0, 3] });
  // The forward pass may leave up to s-1 trailing rows/columns of the padded input unused; trim
  // them from the bottom/right padding. Where that would need a negative padding, keep 0 and drop
  // the surplus output rows/columns when reordering below.
  const spareH = h + top + bottom - kh - (oh - 1) * sh;
  const spareW = w + left + right - kw - (ow - 1) * sw;
  const corr = runWasmKernel('Conv2D', backend, { x: xT, filter: dyT }, {
    strides: [1, 1],
    dilations: [sh, sw],
    pad: [[0, 0], [top, Math.max(0, bottom - spareH)], [left, Math.max(0, right - spareW)], [0, 0]],
    dataFormat: 'NHWC',
  });
  const ch = corr.shape[1];
  const cw = corr.shape[2];
  if (ch < kh || cw < kw) throw new Error(`ddp wasm kernel ${Conv2DBackpropFilter}: internal shape error ([${corr.shape}] for filter [${info.filterHeight},${info.filterWidth},${info.inChannels},${info.outChannels}])`);

  const dw = makeF32(backend, [kh, kw, ci, co]);
  const heap = heapF32(backend);
  const src = f32Index(backend, corr);
  const dst = f32Index(backend, dw);
  for (let i = 0; i < ci; i++) {
    for (let y = 0; y < kh; y++) {
      for (let xx = 0; xx < kw; xx++) {
        const s = src + ((i * ch + y) * cw + xx) * co;
        heap.copyWithin(dst + ((y * kw + xx) * ci + i) * co, s, s + co);
      }
    }
  }
  disposeTemps(backend, xT, dyT, corr);
  return dw;
}

export const conv2DBackpropFilterConfig = wasmKernelConfig(Conv2DBackpropFilter, conv2DBackpropFilter);
