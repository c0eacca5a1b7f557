import type { NamedAttrMap, TensorInfo } from '@tensorflow/tfjs-core';
import { replacingStockKernel, stockWasmKernel } from './stock-kernels.js';
import { shareBuffer, type WasmBackend } from './wasm-backend.js';

/**
 * Cast that shares the buffer when the dtype does not change (as Identity does); the stock wasm
 * kernel copies it. Every ReLU gradient casts step(x) from float32 to float32. Real conversions
 * go to the stock kernel.
 */
export function cast(args: { inputs: { x?: TensorInfo }; backend: WasmBackend; attrs: NamedAttrMap }): TensorInfo {
  const { x } = args.inputs;
  if (x === undefined || x.dtype === 'string' || x.dtype !== args.attrs.dtype) {
    return stockWasmKernel('Cast').kernelFunc(args as never) as TensorInfo;
  }
  return shareBuffer(args.backend, x);
}

export const castConfig = replacingStockKernel('Cast', cast);
