import { backend_util, Conv2DBackpropInput } from '@tensorflow/tfjs-core';
import type { NamedAttrMap, TensorInfo } from '@tensorflow/tfjs-core';
import { checkConv2DBackpropInputArgs } from './kernel-attrs.js';
import { simdCol2im } from './simd-col2im.js';
import { disposeTemps, f32Index, heapF32, makeF32, makeZerosF32, runWasmKernel, wasmKernelConfig, wasmMemory, type WasmBackend } from './wasm-backend.js';

/**
 * dx of a conv2d, on XNNPACK, by one of two routes (both exact; the cheaper one is picked):
 * - convolution: the "full" convolution of dy (zero-padded by k - 1 - pad) with the filter flipped
 *   in space and its in/out channels swapped. It computes every tap for every dx pixel, including
 *   the taps that fall on padding: h*w / (oh*ow) times the useful work (1.4x for the seed CNN's
 *   second layer, 2.8x for its third; ~4x for stride 2, where dy must be spread out with zeros).
 * - col2im: the patch gradients dy [n*oh*ow, out] x W^T [out, kh*kw*in] as one matrix product,
 *   then added into dx in one pass (wasm SIMD when in-channels are a multiple of 4, else JS).
 *   Only useful work on XNNPACK, plus that pass.
 */
export function conv2DBackpropInput(args: { inputs: { dy?: TensorInfo; filter?: TensorInfo }; backend: WasmBackend; attrs: NamedAttrMap }): TensorInfo {
  const { backend } = args;
  const { dy, filter, info } = checkConv2DBackpropInputArgs(args.inputs, args.attrs);

  const waste = (info.inHeight * info.inWidth) / (info.outHeight * info.outWidth);
  const simd = info.inChannels % 4 === 0 && wasmMemory(backend) !== undefined && simdCol2im(wasmMemory(backend)!) !== null;
  return waste > (simd ? COL2IM_MIN_WASTE_SIMD : COL2IM_MIN_WASTE_JS)
    ? inputGradByCol2im(backend, dy, filter, info)
    : inputGradByConvolution(backend, dy, filter, info);
}

/**
 * Above this ratio of computed to useful multiply-adds in the convolution route, col2im is faster.
 * Measured at batch 64: with the SIMD col2im, 13x13x32 (ratio 1.40) 10.7 ms by col2im vs 12.8 ms by
 * convolution, 28x28x8 (1.16) 5.4 vs 4.1; with the JS col2im the crossover is near 2.
 */
const COL2IM_MIN_WASTE_SIMD = 1.3;
const COL2IM_MIN_WASTE_JS = 2;

export function inputGradByCol2im(backend: WasmBackend, dy: TensorInfo, filter: TensorInfo, info: backend_util.Conv2DInfo): TensorInfo {
  const { batchSize: n, inHeight: h, inWidth: w, inChannels: ci, outHeight: oh, outWidth: ow, outChannels: co } = info;
  const { filterHeight: kh, filterWidth: kw, strideHeight: sh, strideWidth: sw } = info;
  const { top, left } = info.padInfo;
  const patch = kh * kw * ci;
  // W [kh*kw*in, out] transposed to [out, kh*kw*in] by the matmul kernel (one small transpose).
  const cols = runWasmKernel('BatchMatMul', backend, { a: { ...dy, shape: [n * oh * ow, co] }, b: { ...filter, shape: [patch, co] } }, { transposeA: false, transposeB: true });
  const dx = makeZerosF32(backend, [n, h, w, ci]);
  const memory = wasmMemory(backend);
  const simd = memory && ci % 4 === 0 ? simdCol2im(memory) : null;
  if (simd) {
    simd(f32Index(backend, cols) * 4, f32Index(backend, dx) * 4, n, h, w, ci * 4, oh, ow, kh, kw, sh, sw, top, left);
  } else {
    const heap = heapF32(backend);
    let src = f32Index(backend, cols);
    const dxBase = f32Index(backend, dx);
    for (let b = 0; b < n; b++) {
      for (let p = 0; p < oh; p++) {
        for (let q = 0; q < ow; q++) {
          for (let y = 0; y < kh; y++) {
            const row = p * sh + y - top;
            for (let x = 0; x < kw; x++, src += ci) {
              const col = q * sw + x - left;
              if (row < 0 || row >= h || col < 0 || col >= w) continue;
              const dst = dxBase + ((b * h + row) * w + col) * ci;
              for (let i = 0; i < ci; i++) heap[dst + i] += heap[src + i];
            }
          }
        }
      }
    }
  }
  disposeTemps(backend, cols);
  return dx;
}

export function inputGradByConvolution(backend: WasmBackend, dy: TensorInfo, filter: TensorInfo, info: backend_util.Conv2DInfo): TensorInfo {
  const { batchSize: n, inHeight: h, inWidth: w, inChannels: ci, outHeight: oh, outWidth: ow, outChannels: co } = info;
  const { filterHeight: kh, filterWidth: kw, strideHeight: sh, strideWidth: sw } = info;

  // Flipped filter [kh, kw, co, ci]: f'[y, x, o, i] = f[kh-1-y, kw-1-x, i, o].
  const flipped = makeF32(backend, [kh, kw, co, ci]);
  let spread: TensorInfo | null = null;
  {
    const heap = heapF32(backend);
    const src = f32Index(backend, filter);
    const dst = f32Index(backend, flipped);
    for (let y = 0; y < kh; y++) {
      for (let x = 0; x < kw; x++) {
        const srcTap = src + ((kh - 1 - y) * kw + (kw - 1 - x)) * ci * co;
        const dstTap = dst + (y * kw + x) * co * ci;
        for (let i = 0; i < ci; i++) {
          for (let o = 0; o < co; o++) heap[dstTap + o * ci + i] = heap[srcTap + i * co + o];
        }
      }
    }
  }
  // dy with zeros between samples when strided: [n, (oh-1)*sh+1, (ow-1)*sw+1, co].
  const spreadH = (oh - 1) * sh + 1;
  const spreadW = (ow - 1) * sw + 1;
  if (sh > 1 || sw > 1) {
    spread = makeZerosF32(backend, [n, spreadH, spreadW, co]);
    const heap = heapF32(backend);
    const src = f32Index(backend, dy);
    const dst = f32Index(backend, spread);
    for (let b = 0; b < n; b++) {
      for (let y = 0; y < oh; y++) {
        for (let x = 0; x < ow; x++) {
          const s = src + ((b * oh + y) * ow + x) * co;
          heap.copyWithin(dst + ((b * spreadH + y * sh) * spreadW + x * sw) * co, s, s + co);
        }
      }
    }
  }
  // Padding so that the stride-1 valid correlation of the padded input yields exactly h x w.
  const padTop = kh - 1 - info.padInfo.top;
  const padLeft = kw - 1 - info.padInfo.left;
  const padBottom = h + kh - 1 - spreadH - padTop;
  const padRight = w + kw - 1 - spreadW - padLeft;
  const dx = runWasmKernel('Conv2D', backend, { x: spread ?? dy, filter: flipped }, {
    strides: [1, 1],
    dilations: [1, 1],
    pad: [[0, 0], [padTop, padBottom], [padLeft, padRight], [0, 0]],
    dataFormat: 'NHWC',
  });
  disposeTemps(backend, flipped);
  if (spread) disposeTemps(backend, spread);
  return dx;
}

export const conv2DBackpropInputConfig = wasmKernelConfig(Conv2DBackpropInput, conv2DBackpropInput);
