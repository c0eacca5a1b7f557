// A real crash: a child process writes checkpoints in a loop (each run first rewrites the step it
// resumed from, then moves on, rotating with keep=2) and is SIGKILLed at a random moment. After
// each kill the newest checkpoint must be complete and internally consistent, or there is none;
// never a partial one, never an exception, never a skip (a kill cannot tear a renamed folder).
// The child runs the built package (dist/), as a user's coordinator would.
import { spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import * as tf from '@tensorflow/tfjs-core';
import '@tensorflow/tfjs-backend-cpu';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readLatestCheckpoint, writeCheckpoint, type LoadedCheckpoint } from './checkpoint-store.js';

const HERE = path.dirname(fileURLToPath(import.meta.url));
const DIST = path.resolve(HERE, '../../dist');
const KILLS = 15;

const CHILD = `
import { pathToFileURL } from 'node:url';
const [distIndex, dir, from] = process.argv.slice(2);
const core = await import(pathToFileURL(distIndex).href);
await core.initBackend('cpu');
const N = core.SEED_CNN_PARAM_COUNT;
const fingerprint = { model: 'seed-cnn', dataset: 'mnist', trainHash: '0'.repeat(64), trainCount: 100, batchSize: 10, lr: 0.001, seed: 1, reduction: 'fast', compress: 'none' };
process.stdout.write('ready\\n');
for (let step = Number(from); ; step++) {
  const state = { steps: step, params: new Float32Array(N).fill(step), adamM: new Float32Array(N).fill(step + 0.5), adamV: new Float32Array(N).fill(step + 0.25) };
  const meta = { jobId: 'crash', fingerprint, steps: step, epoch: 0, stepInEpoch: step, seed: 1, worldHistory: [{ fromStep: 0, workers: 1 }], epochLossSum: step, epochSamples: step };
  await core.writeCheckpoint(dir, state, meta, { keep: 2 });
}
`;

/** The child runs dist/: refuse to test sources that were changed since the last build. */
function assertDistFresh(): void {
  for (const f of fs.readdirSync(HERE).filter((f) => f.endsWith('.ts') && !f.endsWith('.test.ts'))) {
    const built = path.join(DIST, 'checkpoint', f.replace(/\.ts$/, '.js'));
    if (!fs.existsSync(built) || fs.statSync(built).mtimeMs < fs.statSync(path.join(HERE, f)).mtimeMs) {
      throw new Error(`${built} is missing or older than its source: build core first (npx nx run core:build)`);
    }
  }
}

/** Starts the writer, waits for it to be about to write, lets it write for a random time, SIGKILLs it. */
function runAndKill(script: string, dir: string, from: number): Promise<void> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [script, path.join(DIST, 'index.js'), dir, String(from)], { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    child.stderr.on('data', (d) => (err += d));
    child.stdout.on('data', (d) => {
      out += d;
      if (out.includes('ready\n') && !child.killed) {
        out = '';
        setTimeout(() => child.kill('SIGKILL'), Math.random() * 300);
      }
    });
    child.on('exit', (code, signal) => {
      if (signal === 'SIGKILL') resolve();
      else reject(new Error(`the writer exited by itself (code ${code}): ${err}`));
    });
  });
}

function assertConsistent(c: LoadedCheckpoint): void {
  const s = c.state.steps;
  expect(path.basename(c.path)).toBe(`step-${String(s).padStart(9, '0')}`);
  expect(c.meta.steps).toBe(s);
  expect(c.meta.epochLossSum).toBe(s);
  for (const [a, v] of [[c.state.params, s], [c.state.adamM, s + 0.5], [c.state.adamV, s + 0.25]] as const) {
    expect(a.every((x) => x === v)).toBe(true);
  }
}

describe('checkpoints under SIGKILL', () => {
  let work: string;
  beforeAll(async () => {
    assertDistFresh();
    await tf.setBackend('cpu');
    work = fs.mkdtempSync(path.join(os.tmpdir(), 'ddp-ckpt-crash-'));
  });
  afterAll(() => fs.rmSync(work, { recursive: true, force: true }));

  it(`leaves a complete checkpoint or none after each of ${KILLS} kills`, { timeout: 300_000 }, async () => {
    const script = path.join(work, 'writer.mjs');
    fs.writeFileSync(script, CHILD);
    const dir = path.join(work, 'ckpt');
    let seen = 0;
    for (let i = 0; i < KILLS; i++) {
      const before = await readLatestCheckpoint(dir);
      await runAndKill(script, dir, before ? before.state.steps : 1);
      const skips: string[] = [];
      const latest = await readLatestCheckpoint(dir, { onSkip: (p, r) => skips.push(`${p}: ${r}`) });
      expect(skips).toEqual([]);
      if (latest) {
        assertConsistent(latest);
        seen++;
      }
    }
    expect(seen).toBeGreaterThan(0);
    // The killed writers' .tmp-* folders are removed by the next write (their processes are gone).
    const last = (await readLatestCheckpoint(dir))!;
    await writeCheckpoint(dir, last.state, last.meta, { keep: 2 });
    expect(fs.readdirSync(dir).filter((n) => n.startsWith('.tmp-'))).toEqual([]);
  });
});
