import { Cast } from '@tensorflow/tfjs-core';
import type { KernelConfig, NamedAttrMap, TensorInfo } from '@tensorflow/tfjs-core';
import { stockWasmKernel } from './stock-kernels.js';

interface RefCountingBackend {
  incRef(dataId: object): void;
}

/**
 * Cast that shares the buffer when the dtype does not change (as Identity does); the stock wasm
 * kernel copies it. Every ReLU gradient casts step(x) from float32 to float32. Real conversions
 * go to the stock kernel.
 */
export function cast(args: { inputs: { x?: TensorInfo }; backend: RefCountingBackend; attrs: NamedAttrMap }): TensorInfo {
  const { x } = args.inputs;
  if (x === undefined || x.dtype === 'string' || x.dtype !== args.attrs.dtype) {
    return stockWasmKernel('Cast').kernelFunc(args as never) as TensorInfo;
  }
  args.backend.incRef(x.dataId);
  return { dataId: x.dataId, shape: [...x.shape], dtype: x.dtype };
}

export const castConfig: KernelConfig = {
  kernelName: Cast,
  backendName: 'wasm',
  kernelFunc: cast as unknown as KernelConfig['kernelFunc'],
};
