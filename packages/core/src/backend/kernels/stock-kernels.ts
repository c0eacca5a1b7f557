import * as tf from '@tensorflow/tfjs-core';
import '@tensorflow/tfjs-backend-wasm';
import type { KernelConfig } from '@tensorflow/tfjs-core';

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
