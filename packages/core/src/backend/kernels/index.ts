// ddp's wasm training kernels: what the rest of ddp needs is the register functions.
export { registerDdpWasmKernels, setWasmKernelSet, getWasmKernelSet, DDP_WASM_KERNEL_NAMES } from './register.js';
export type { WasmKernelSet } from './register.js';
export { UnsupportedAttributeError } from './kernel-attrs.js';
