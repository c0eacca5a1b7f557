// Benchmarks: the training-step benchmark (naive vs ddp wasm kernels) and the memory check, and what
// every benchmark (these and `ddp bench ...`) shares: the result files, the machine record, the statistics.
export { runStepBench, formatStepBench } from './step.js';
export type { StepBenchOptions, StepBenchResult, KernelSetStepResult, PerCoreResult, StepVariant } from './step.js';
export { findPytorch, runPytorchStep, PYTORCH_STEP_PROGRAM, RECORDED_PYTORCH } from './pytorch-step.js';
export { runMemoryBench } from './memory.js';
export type { MemoryBenchOptions, MemoryBenchResult, MemorySample } from './memory.js';
export { machineInfo } from './machine-info.js';
export type { MachineInfo } from './machine-info.js';
export { resultHeader, workspaceRoot, resultsDir, defaultResultFile, writeResultFile, newestResultFile, readJsonFile, ResultFileError } from './results-file.js';
export type { ResultHeader } from './results-file.js';
export { median, quantile } from './stats.js';
