import type { TensorInfo } from '@tensorflow/tfjs-core';
import { replacingStockKernel, stockWasmKernel } from './stock-kernels.js';
import { shareBuffer, type WasmBackend } from './wasm-backend.js';

/**
 * Identity that shares the input's buffer (reference-counted, like the wasm Reshape kernel and the
 * cpu backend's Identity) instead of copying it. tfjs clones every tensor it saves for the backward
 * pass, and the stock wasm Identity copies each one: ~36 copies of activations per seed-CNN step.
 * Sharing is safe because no wasm kernel writes into its inputs.
 */
export function identity(args: { inputs: { x?: TensorInfo }; backend: WasmBackend; attrs?: object }): TensorInfo {
  const { x } = args.inputs;
  if (x === undefined) throw new Error("ddp wasm kernel Identity: missing input 'x'");
  if (x.dtype === 'string') return stockWasmKernel('Identity').kernelFunc(args as never) as TensorInfo;
  return shareBuffer(args.backend, x);
}

export const identityConfig = replacingStockKernel('Identity', identity);
