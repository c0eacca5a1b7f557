import { readFileSync } from 'node:fs';
import type { WasmMemory } from './wasm-backend.js';

/**
 * ddp's few hand-written WebAssembly SIMD routines are written in the text format, one module per
 * routine in ./wat/<name>.wat, and assembled at build time by scripts/assemble-wat.mjs (wabt) into
 * ./wat/<name>.wasm beside this module. Each module exports one function over i32 byte addresses
 * into the tfjs wasm heap, which it imports as env.memory, so it reads and writes tensors in place.
 */

// The compiler's lib here has no WebAssembly typings; this is the part used.
interface WebAssemblyApi {
  validate(bytes: Uint8Array): boolean;
  Module: new (bytes: Uint8Array) => object;
  Instance: new (module: object, imports: object) => { exports: Record<string, unknown> };
}
const wasmApi = (globalThis as unknown as { WebAssembly?: WebAssemblyApi }).WebAssembly;

function routineBytes(name: string): Uint8Array {
  const url = new URL(`./wat/${name}.wasm`, import.meta.url);
  try {
    return readFileSync(url);
  } catch (err) {
    throw new Error(
      `ddp wasm kernels: cannot read the assembled routine ${url.pathname} (${(err as Error).message}); ` +
      'build @ddp/core (npm run build), which assembles src/backend/kernels/wat/*.wat',
    );
  }
}

/**
 * Compiles the routine `name` (./wat/<name>.wasm) on first use and binds its export `exportName`
 * to each heap it is asked for. The getter yields null where the engine cannot validate the module
 * (no wasm SIMD), so callers keep a JS path.
 */
export function lazyRoutine<F>(name: string, exportName: string): (memory: WasmMemory) => F | null {
  let compiled: object | null | undefined;
  const bound = new WeakMap<WasmMemory, F>();
  return (memory) => {
    if (compiled === undefined) {
      const bytes = routineBytes(name);
      compiled = wasmApi?.validate(bytes) ? new wasmApi.Module(bytes) : null;
    }
    if (compiled === null || wasmApi === undefined) return null;
    let fn = bound.get(memory);
    if (fn === undefined) {
      fn = new wasmApi.Instance(compiled, { env: { memory } }).exports[exportName] as F;
      if (typeof fn !== 'function') throw new Error(`ddp wasm kernels: routine ${name} has no export ${exportName}`);
      bound.set(memory, fn);
    }
    return fn;
  };
}
