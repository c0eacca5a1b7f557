import type { NamedAttrMap, TensorInfo } from '@tensorflow/tfjs-core';
import { replacingStockKernel, stockWasmKernel } from './stock-kernels.js';
import { disposeTemps, runWasmKernel, sizeOf, type WasmBackend } from './wasm-backend.js';

/**
 * BatchMatMul that keeps transposed products on XNNPACK. The stock wasm kernel uses XNNPACK only
 * for an un-transposed product of two single matrices; with transposeA or transposeB (as in every
 * dense layer's backward pass) it falls back to a scalar loop, ~15x slower. Transposing the operand
 * first costs one pass over it.
 */
export function batchMatMul(args: { inputs: { a?: TensorInfo; b?: TensorInfo }; backend: WasmBackend; attrs: NamedAttrMap }): TensorInfo {
  const { inputs, backend, attrs } = args;
  const stock = stockWasmKernel('BatchMatMul').kernelFunc;
  const { a, b } = inputs;
  const transposeA = attrs.transposeA === true;
  const transposeB = attrs.transposeB === true;
  const single = (t: TensorInfo | undefined) => t !== undefined && t.shape.length >= 2 && sizeOf(t.shape.slice(0, -2)) === 1;
  if ((!transposeA && !transposeB) || !single(a) || !single(b) || a!.dtype !== 'float32' || b!.dtype !== 'float32') {
    return stock({ inputs, backend, attrs }) as TensorInfo;
  }
  const swapLast = (t: TensorInfo) => {
    const perm = t.shape.map((_, i) => i);
    perm[perm.length - 2] = perm.length - 1;
    perm[perm.length - 1] = perm.length - 2;
    return runWasmKernel('Transpose', backend, { x: t }, { perm });
  };
  const a2 = transposeA ? swapLast(a!) : a!;
  const b2 = transposeB ? swapLast(b!) : b!;
  const out = stock({ inputs: { a: a2, b: b2 }, backend, attrs: { ...attrs, transposeA: false, transposeB: false } }) as TensorInfo;
  if (transposeA) disposeTemps(backend, a2);
  if (transposeB) disposeTemps(backend, b2);
  return out;
}

export const batchMatMulConfig = replacingStockKernel('BatchMatMul', batchMatMul);
