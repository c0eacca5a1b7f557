import * as tf from '@tensorflow/tfjs-core';
import type { DataType, KernelConfig, NamedAttrMap, NamedTensorInfoMap, TensorInfo } from '@tensorflow/tfjs-core';

/** A WebAssembly.Memory (the compiler's lib here has no WebAssembly typings). */
export interface WasmMemory {
  readonly buffer: ArrayBuffer;
}

/**
 * The parts of tfjs-backend-wasm's BackendWasm that ddp's kernels use. Declared here rather than
 * imported because the package's own typings reference Emscripten types that are not installed.
 */
export interface WasmBackend {
  wasm: { HEAPF32: Float32Array; asm?: { memory?: WasmMemory } };
  dataIdMap: { get(dataId: object): { id: number; memoryOffset: number } | undefined };
  makeOutput(shape: number[], dtype: DataType): TensorInfo;
  disposeData(dataId: object, force?: boolean): boolean;
  incRef(dataId: object): void;
}

/**
 * The float32 view of the wasm heap. Fetch it again after every allocation: a malloc can grow the
 * memory, which detaches the previous view (reads then see an empty array, writes are lost).
 */
export function heapF32(backend: WasmBackend): Float32Array {
  return backend.wasm.HEAPF32;
}

/** The backend's WebAssembly.Memory (the heap), for ddp's own wasm routines to import. */
export function wasmMemory(backend: WasmBackend): WasmMemory | undefined {
  return backend.wasm.asm?.memory;
}

/** Index of a tensor's first element in heapF32(backend). */
export function f32Index(backend: WasmBackend, t: TensorInfo): number {
  const data = backend.dataIdMap.get(t.dataId);
  if (data === undefined) throw new Error(`ddp wasm kernels: tensor ${t.shape} is not on the wasm backend`);
  return data.memoryOffset >>> 2;
}

/** The {kernelName, backendName, kernelFunc} config that registers one of ddp's wasm kernels. */
export function wasmKernelConfig(kernelName: string, kernelFunc: (args: never) => TensorInfo, setupFunc?: KernelConfig['setupFunc']): KernelConfig {
  const config: KernelConfig = { kernelName, backendName: 'wasm', kernelFunc: kernelFunc as unknown as KernelConfig['kernelFunc'] };
  if (setupFunc !== undefined) config.setupFunc = setupFunc;
  return config;
}

/** Runs the currently registered wasm kernel `name` directly (no tape, no profiling of the inner call). */
export function runWasmKernel(name: string, backend: WasmBackend, inputs: NamedTensorInfoMap, attrs: NamedAttrMap): TensorInfo {
  const config = tf.getKernel(name, 'wasm');
  if (config === undefined) throw new Error(`ddp wasm kernels: wasm kernel '${name}' is not registered`);
  return config.kernelFunc({ inputs, backend, attrs }) as TensorInfo;
}

/** Frees kernel-internal temporaries (never the inputs or the returned output). */
export function disposeTemps(backend: WasmBackend, ...temps: TensorInfo[]): void {
  for (const t of temps) backend.disposeData(t.dataId);
}

/**
 * An output that shares t's buffer instead of copying it (reference-counted, like the wasm Reshape
 * kernel and the cpu backend's Identity). Safe because no wasm kernel writes into its inputs.
 */
export function shareBuffer(backend: WasmBackend, t: TensorInfo): TensorInfo {
  backend.incRef(t.dataId);
  return { dataId: t.dataId, shape: [...t.shape], dtype: t.dtype };
}

/** An uninitialised float32 output (the heap is reused, so it holds garbage until written). */
export function makeF32(backend: WasmBackend, shape: number[]): TensorInfo {
  return backend.makeOutput(shape, 'float32');
}

/** A zero-filled float32 output. */
export function makeZerosF32(backend: WasmBackend, shape: number[]): TensorInfo {
  const out = backend.makeOutput(shape, 'float32');
  const start = f32Index(backend, out);
  heapF32(backend).fill(0, start, start + sizeOf(shape));
  return out;
}

export function sizeOf(shape: readonly number[]): number {
  let n = 1;
  for (const d of shape) n *= d;
  return n;
}
