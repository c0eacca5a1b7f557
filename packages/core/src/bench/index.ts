// Benchmarks: the training-step benchmark (naive vs ddp wasm kernels) and the memory check.
export { runStepBench, formatStepBench } from './step.js';
export type { StepBenchOptions, StepBenchResult, KernelSetStepResult } from './step.js';
export { runMemoryBench } from './memory.js';
export type { MemoryBenchOptions, MemoryBenchResult, MemorySample } from './memory.js';
export { machineInfo } from './machine-info.js';
export type { MachineInfo } from './machine-info.js';
