// Assembles ddp's hand-written WebAssembly routines, src/backend/kernels/wat/*.wat, into .wasm
// files with wabt (wat2wasm compiled to JavaScript; a devDependency: nothing loads it at run time).
//
//   node scripts/assemble-wat.mjs dist/backend/kernels/wat   (the build, after tsc)
//
// The modules in src/backend/kernels load ./wat/<name>.wasm beside themselves, so the build puts
// the files under dist/. The tests run those modules from src/, so this file is also vitest's
// globalSetup (vitest.config.ts): before every test run it assembles the .wat files into
// src/backend/kernels/wat/ (git ignores *.wasm there), always from the current text.
import { mkdirSync, readdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import wabtInit from 'wabt';

const packageRoot = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const SOURCE_DIR = join(packageRoot, 'src/backend/kernels/wat');

/**
 * wat2wasm for every .wat in sourceDir; writes <name>.wasm into outDir and removes the .wasm files
 * there that no longer have a .wat. Each file is replaced in one rename, so a test run that reads
 * the files while another one assembles them never sees a partial or missing file.
 */
export async function assembleWat(outDir, sourceDir = SOURCE_DIR) {
  const wabt = await wabtInit();
  const names = readdirSync(sourceDir).filter((f) => f.endsWith('.wat')).sort();
  if (names.length === 0) throw new Error(`assemble-wat: no .wat files in ${sourceDir}`);
  mkdirSync(outDir, { recursive: true });
  const wanted = new Set(names.map((name) => name.replace(/\.wat$/, '.wasm')));
  for (const f of readdirSync(outDir)) if (f.endsWith('.wasm') && !wanted.has(f)) rmSync(join(outDir, f));
  const written = [];
  for (const name of names) {
    const path = join(sourceDir, name);
    let module;
    try {
      // The routines use fixed-width SIMD (WebAssembly 2.0); nothing newer is enabled.
      module = wabt.parseWat(path, readFileSync(path, 'utf8'), { simd: true });
      module.resolveNames();
      module.validate();
      const { buffer } = module.toBinary({ canonicalize_lebs: true, write_debug_names: false });
      // wabt accepts what the engine may not: check with the engine that will run it.
      if (!WebAssembly.validate(buffer)) throw new Error('WebAssembly.validate rejects the assembled module');
      const out = join(outDir, name.replace(/\.wat$/, '.wasm'));
      const tmp = `${out}.${process.pid}.tmp`;
      writeFileSync(tmp, buffer);
      renameSync(tmp, out);
      written.push(out);
    } catch (err) {
      throw new Error(`assemble-wat: ${path}: ${err instanceof Error ? err.message : String(err)}`);
    } finally {
      module?.destroy();
    }
  }
  return written;
}

/** vitest globalSetup: assemble beside the sources, which the tests run. */
export async function setup() {
  await assembleWat(SOURCE_DIR);
}

if (process.argv[1] !== undefined && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  const outDir = process.argv[2];
  if (outDir === undefined) {
    console.error('usage: node scripts/assemble-wat.mjs OUT_DIR');
    process.exit(2);
  }
  try {
    const written = await assembleWat(resolve(outDir));
    console.log(`assembled ${written.length} WebAssembly routines into ${outDir}`);
  } catch (err) {
    console.error(err instanceof Error ? err.message : String(err));
    process.exit(1);
  }
}
