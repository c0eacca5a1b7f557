import * as tf from '@tensorflow/tfjs-core';
import '@tensorflow/tfjs-backend-wasm';
import type { KernelConfig, TensorInfo } from '@tensorflow/tfjs-core';
import { wasmKernelConfig } from './wasm-backend.js';

/**
 * The stock tfjs-backend-wasm kernels that ddp replaces, captured when this module is first
 * evaluated, i.e. right after the wasm package registered them and before ddp swaps its own in.
 * ddp's kernels delegate to them for the cases they do not speed up, and the 'naive' kernel set
 * puts them back.
 */
const REPLACED = ['Conv2DBackpropInput', 'MaxPoolGrad', 'BatchMatMul', 'Identity', 'Sum', 'Cast'] as const;
export type ReplacedStockKernel = (typeof REPLACED)[number];

const stock = new Map<string, KernelConfig>();
for (const name of REPLACED) {
  const config = tf.getKernel(name, 'wasm');
  if (config === undefined) throw new Error(`ddp wasm kernels: tfjs-backend-wasm has no '${name}' kernel to replace`);
  stock.set(name, config);
}

export function stockWasmKernel(name: ReplacedStockKernel): KernelConfig {
  return stock.get(name)!;
}

/**
 * The config of a ddp kernel that replaces the stock kernel `name` and hands it the cases it does
 * not speed up. The stock kernel's setup function (where it binds its wasm function) must still
 * run, although the stock config is no longer registered when the backend initialises.
 */
export function replacingStockKernel(name: ReplacedStockKernel, kernelFunc: (args: never) => TensorInfo): KernelConfig {
  return wasmKernelConfig(name, kernelFunc, (backend) => stockWasmKernel(name).setupFunc?.(backend));
}
