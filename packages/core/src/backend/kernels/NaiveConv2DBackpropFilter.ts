import { backend_util, Conv2DBackpropFilter } from '@tensorflow/tfjs-core';
import type { NamedAttrMap, TensorInfo } from '@tensorflow/tfjs-core';
import { checkConv2DBackpropFilterArgs } from './kernel-attrs.js';
import { stockWasmKernel } from './stock-kernels.js';
import { disposeTemps, f32Index, heapF32, makeF32, runWasmKernel, wasmKernelConfig, type WasmBackend } from './wasm-backend.js';

/**
 * The baseline filter gradient of the 'naive' kernel set (stock wasm has none): composed of stock
 * kernels, one filter tap at a time. For each tap (y, x) it slices the (padded) input at the tap's
 * offset, transposes the slice to [in, n*oh*ow] and multiplies it by dy [n*oh*ow, out] on XNNPACK:
 * kh*kw products, slices and transposes instead of one convolution. Correct; kept for comparison.
 */
export function naiveConv2DBackpropFilter(args: { inputs: { x?: TensorInfo; dy?: TensorInfo }; backend: WasmBackend; attrs: NamedAttrMap }): TensorInfo {
  const { backend } = args;
  const { x, dy, info } = checkConv2DBackpropFilterArgs(args.inputs, args.attrs);
  const { batchSize: n, inChannels: ci, outHeight: oh, outWidth: ow, outChannels: co } = info;
  const { filterHeight: kh, filterWidth: kw, strideHeight: sh, strideWidth: sw } = info;
  const { top, bottom, left, right } = info.padInfo;
  const m = n * oh * ow;

  const padded = top + bottom + left + right > 0
    ? runWasmKernel('PadV2', backend, { x }, { paddings: [[0, 0], [top, bottom], [left, right], [0, 0]], constantValue: 0 })
    : null;
  const src = padded ?? x;
  const dw = makeF32(backend, [kh, kw, ci, co]);
  const matMul = stockWasmKernel('BatchMatMul').kernelFunc;
  for (let y = 0; y < kh; y++) {
    for (let xx = 0; xx < kw; xx++) {
      const slice = runWasmKernel('StridedSlice', backend, { x: src }, {
        begin: [0, y, xx, 0],
        end: [n, y + (oh - 1) * sh + 1, xx + (ow - 1) * sw + 1, ci],
        strides: [1, sh, sw, 1],
        beginMask: 0, endMask: 0, ellipsisMask: 0, newAxisMask: 0, shrinkAxisMask: 0,
      });
      const sliceT = runWasmKernel('Transpose', backend, { x: { ...slice, shape: [m, ci] } }, { perm: [1, 0] });
      const tap = matMul({ inputs: { a: sliceT, b: { ...dy, shape: [m, co] } }, backend, attrs: { transposeA: false, transposeB: false } }) as TensorInfo;
      const heap = heapF32(backend);
      const from = f32Index(backend, tap);
      heap.copyWithin(f32Index(backend, dw) + (y * kw + xx) * ci * co, from, from + ci * co);
      disposeTemps(backend, slice, sliceT, tap);
    }
  }
  if (padded) disposeTemps(backend, padded);
  return dw;
}

export const naiveConv2DBackpropFilterConfig = wasmKernelConfig(Conv2DBackpropFilter, naiveConv2DBackpropFilter);
