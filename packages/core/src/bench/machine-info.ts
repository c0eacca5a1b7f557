import * as tf from '@tensorflow/tfjs-core';
import os from 'node:os';

/**
 * What a benchmark figure was measured on, recorded beside it in every result file (see
 * resultHeader in results-file.ts, which adds the date).
 */
export interface MachineInfo {
  cpuModel: string;
  /** Cores available to this process. */
  nproc: number;
  platform: string;
  nodeVersion: string;
  totalMemGiB: number;
  tfjsVersion: string;
  /** The tfjs backend of this process, or null when it started none (benchmarks that run child processes). */
  backend: string | null;
  /** tfjs flags that change what the backend does (SIMD, threads), when a backend has evaluated them. */
  backendFlags: Record<string, unknown>;
  /** 1, 5 and 15 minute load averages when recorded: other work on the machine slows every figure. */
  loadAverage: number[];
  /** The process's scheduling priority (nice value; negative = favoured over other work). */
  niceness: number;
}

export function machineInfo(): MachineInfo {
  const flags = tf.env().getFlags();
  const backendFlags: Record<string, unknown> = {};
  for (const name of ['WASM_HAS_SIMD_SUPPORT', 'WASM_HAS_MULTITHREAD_SUPPORT']) {
    if (name in flags) backendFlags[name] = flags[name];
  }
  return {
    cpuModel: os.cpus()[0]?.model ?? 'unknown',
    nproc: os.availableParallelism(),
    platform: `${os.platform()} ${os.release()} ${os.arch()}`,
    nodeVersion: process.version,
    totalMemGiB: Math.round((os.totalmem() / 2 ** 30) * 10) / 10,
    tfjsVersion: tf.version_core,
    // tf.getBackend() reads the engine's current name: it starts no backend when there is none.
    backend: tf.getBackend() ?? null,
    backendFlags,
    loadAverage: os.loadavg().map((l) => Math.round(l * 100) / 100),
    niceness: os.getPriority(),
  };
}
