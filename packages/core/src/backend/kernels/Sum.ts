import { util } from '@tensorflow/tfjs-core';
import type { NamedAttrMap, TensorInfo } from '@tensorflow/tfjs-core';
import { replacingStockKernel, stockWasmKernel } from './stock-kernels.js';
import { disposeTemps, f32Index, heapF32, makeF32, runWasmKernel, sizeOf, type WasmBackend } from './wasm-backend.js';

/**
 * Sum over leading axes, i.e. what a bias gradient needs: dy [n, h, w, c] summed to [c]. The stock
 * wasm kernel first transposes the reduced axes to the end (a full copy), then reduces: ~3 ms for
 * the seed CNN's first layer. Here a rank-4 input is averaged over each image by XNNPACK's average
 * pooling (one SIMD pass, ~0.3 ms), and the n per-image means are scaled and added up in float64.
 * Smaller leading-axes sums are one JS pass; any other reduction goes to the stock kernel.
 */
export function sum(args: { inputs: { x?: TensorInfo }; backend: WasmBackend; attrs: NamedAttrMap }): TensorInfo {
  const { inputs, backend, attrs } = args;
  const { x } = inputs;
  const stock = () => stockWasmKernel('Sum').kernelFunc(args as never) as TensorInfo;
  if (x === undefined || x.dtype !== 'float32' || x.shape.length < 2) return stock();
  const axes = util.parseAxisParam(attrs.axis as number | number[], x.shape).sort((a, b) => a - b);
  const k = axes.length;
  if (k === 0 || k === x.shape.length || !axes.every((a, i) => a === i)) return stock();

  const keptShape = x.shape.slice(k);
  const cols = sizeOf(keptShape);
  const outShape = attrs.keepDims === true ? [...x.shape.slice(0, k).map(() => 1), ...keptShape] : keptShape;
  const pooled = x.shape.length === 4 && k === 3 && x.shape[1] * x.shape[2] > 1
    ? runWasmKernel('AvgPool', backend, { x }, { filterSize: [x.shape[1], x.shape[2]], strides: [x.shape[1], x.shape[2]], pad: 'valid' })
    : null;
  const rows = pooled ? x.shape[0] : sizeOf(x.shape.slice(0, k));
  const scale = pooled ? x.shape[1] * x.shape[2] : 1;
  const out = makeF32(backend, outShape);
  const acc = new Float64Array(cols);
  const heap = heapF32(backend);
  let i = f32Index(backend, pooled ?? x);
  for (let r = 0; r < rows; r++) {
    for (let c = 0; c < cols; c++) acc[c] += heap[i++];
  }
  for (let c = 0; c < cols; c++) acc[c] *= scale;
  heap.set(acc, f32Index(backend, out));
  if (pooled) disposeTemps(backend, pooled);
  return out;
}

export const sumConfig = replacingStockKernel('Sum', sum);
