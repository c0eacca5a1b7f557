import * as tf from '@tensorflow/tfjs-core';
import type { KernelConfig } from '@tensorflow/tfjs-core';
import { batchMatMulConfig } from './BatchMatMul.js';
import { castConfig } from './Cast.js';
import { conv2DBackpropFilterConfig } from './Conv2DBackpropFilter.js';
import { conv2DBackpropInputConfig } from './Conv2DBackpropInput.js';
import { identityConfig } from './Identity.js';
import { maxPoolGradConfig } from './MaxPoolGrad.js';
import { naiveConv2DBackpropFilterConfig } from './NaiveConv2DBackpropFilter.js';
import { naiveMaxPoolGradConfig } from './NaiveMaxPoolGrad.js';
import { reluBiasGradConfig } from './ReluBiasGrad.js';
import { stockWasmKernel } from './stock-kernels.js';
import { sumConfig } from './Sum.js';

/** ddp's wasm training kernels: the one list. Each replaces the stock kernel of the same name. */
const DDP_WASM_KERNELS: readonly KernelConfig[] = [
  conv2DBackpropFilterConfig,
  conv2DBackpropInputConfig,
  maxPoolGradConfig,
  batchMatMulConfig,
  identityConfig,
  castConfig,
  sumConfig,
];

/**
 * The baseline the benchmark compares against: the stock wasm kernels, plus a naive composed
 * Conv2DBackpropFilter because stock wasm has none (training would fail without it), and the cpu
 * backend's MaxPoolGrad algorithm because the stock wasm one is wrong for windows whose maximum
 * is <= 0 (see NaiveMaxPoolGrad.ts).
 */
const NAIVE_WASM_KERNELS: readonly KernelConfig[] = [
  naiveConv2DBackpropFilterConfig,
  stockWasmKernel('Conv2DBackpropInput'),
  naiveMaxPoolGradConfig,
  stockWasmKernel('BatchMatMul'),
  stockWasmKernel('Identity'),
  stockWasmKernel('Cast'),
  stockWasmKernel('Sum'),
];

export type WasmKernelSet = 'ddp' | 'naive';

/** The kernel names a set switch touches (the same in both sets). */
export const DDP_WASM_KERNEL_NAMES: readonly string[] = DDP_WASM_KERNELS.map((k) => k.kernelName);

const sameNames = [...NAIVE_WASM_KERNELS.map((k) => k.kernelName)].sort().join() === [...DDP_WASM_KERNEL_NAMES].sort().join();
if (!sameNames) throw new Error('ddp wasm kernels: the ddp and naive sets must replace the same kernels');

/** The wasm backend instance if it is initialised already (without initialising it). */
function initialisedWasmBackend(): object | undefined {
  return (tf.engine() as unknown as { registry: Record<string, object | undefined> }).registry.wasm;
}

function install(config: KernelConfig): void {
  if (tf.getKernel(config.kernelName, 'wasm') === config) return;
  if (tf.getKernel(config.kernelName, 'wasm') !== undefined) tf.unregisterKernel(config.kernelName, 'wasm');
  tf.registerKernel(config);
  // tfjs runs setup functions when the backend is set; a kernel swapped in later needs its own call.
  const backend = initialisedWasmBackend();
  if (backend !== undefined) config.setupFunc?.(backend);
}

/**
 * ddp's kernels that have no stock counterpart (model/fused-layers.ts calls them by name where they
 * are registered): installed with either set, as the stock backend has nothing to fall back to.
 */
const DDP_ADDED_WASM_KERNELS: readonly KernelConfig[] = [reluBiasGradConfig];

let current: WasmKernelSet | null = null;

/** Switches the wasm training kernels between ddp's fast set and the slow baseline. Both are correct. */
export function setWasmKernelSet(set: WasmKernelSet): void {
  if (set !== 'ddp' && set !== 'naive') {
    throw new RangeError(`setWasmKernelSet: unknown kernel set ${JSON.stringify(set)} (expected 'ddp' or 'naive')`);
  }
  for (const config of set === 'ddp' ? DDP_WASM_KERNELS : NAIVE_WASM_KERNELS) install(config);
  for (const config of DDP_ADDED_WASM_KERNELS) install(config);
  current = set;
}

/** The set last installed by setWasmKernelSet / registerDdpWasmKernels, or null if neither ran. */
export function getWasmKernelSet(): WasmKernelSet | null {
  return current;
}

/** Registers ddp's wasm training kernels in place of the stock ones. Idempotent; call before or after tf.setBackend('wasm'). */
export function registerDdpWasmKernels(): void {
  setWasmKernelSet('ddp');
}
