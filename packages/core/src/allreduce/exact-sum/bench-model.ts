/**
 * The exact sum on the real model's gradients: micro-shard gradients (16 MNIST samples each) of
 * the seed CNN at its initial weights and after some plain SGD steps, summed as one worker step (4
 * shards) and as a 16-worker star (64 shards). Reports how many sums leave the float64 path,
 * the encoded size, and the time of add x4 + toFloat32 against the float32 sum.
 *
 *   npx nx run-many -t build && node packages/core/dist/allreduce/exact-sum/bench-model.js [sgdSteps]
 *
 * Needs the MNIST files (as for training). Not a test.
 */
import { initBackend } from '../../backend/select.js';
import { median } from '../../bench/stats.js';
import { loadDataset } from '../../data/datasets.js';
import { gatherShard } from '../../data/preprocess.js';
import { initSeedCnnParams } from '../../model/init.js';
import { gradientSum } from '../../model/seed-cnn.js';
import { ExactAccumulator } from './accumulator.js';

const SHARD = 16;
const sgdSteps = Number(process.argv[2] ?? 100);

const backend = await initBackend('wasm');
const data = loadDataset({ limitTrain: 64 * (sgdSteps + 16) });
const params = initSeedCnnParams(42);
const n = params.length;

function shardGradient(first: number): Float32Array {
  const indices = Uint32Array.from({ length: SHARD }, (_, k) => (first + k) % data.train.count);
  const { images, labels } = gatherShard(data.train, indices);
  return gradientSum(params, images, labels, SHARD).grad.slice();
}

function report(label: string, shards: Float32Array[]): void {
  const acc = new ExactAccumulator(n);
  for (const g of shards) acc.add(g);
  const wide = acc.wideElements;
  let differ = 0;
  const plain = new Float32Array(n);
  for (const g of shards) for (let i = 0; i < n; i++) plain[i] += g[i]!;
  const exact = acc.toFloat32();
  for (let i = 0; i < n; i++) if (!Object.is(plain[i], exact[i])) differ++;
  const packed = acc.encode().length / n;
  let zeros = 0;
  for (const g of shards) for (let i = 0; i < n; i++) if (g[i] === 0) zeros++;
  console.log(
    `${label.padEnd(40)} ${String(wide).padStart(6)} with a tail, packed ${packed.toFixed(3)} B/element, ` +
      `${((100 * zeros) / (n * shards.length)).toFixed(1)}% zero inputs, float32 loop differs in ${differ} elements`,
  );
}

function timeIt(shards: Float32Array[]): void {
  const acc = new ExactAccumulator(n);
  const out = new Float32Array(n);
  const tExact: number[] = [];
  const tPlain: number[] = [];
  for (let r = 0; r < 43; r++) {
    let t0 = performance.now();
    out.set(shards[0]!);
    for (let k = 1; k < shards.length; k++) {
      const g = shards[k]!;
      for (let i = 0; i < n; i++) out[i] += g[i]!;
    }
    if (r >= 3) tPlain.push(performance.now() - t0);
    t0 = performance.now();
    acc.reset();
    for (const g of shards) acc.add(g);
    acc.toFloat32(out);
    if (r >= 3) tExact.push(performance.now() - t0);
  }
  console.log(`  4 shards: float32 sum ${median(tPlain).toFixed(3)} ms, exact add x4 + toFloat32 ${median(tExact).toFixed(3)} ms (medians of 40)`);
}

console.log(`backend ${backend.name}, ${n} parameters, micro-shards of ${SHARD} MNIST samples`);
for (let phase = 0; phase < 2; phase++) {
  const at = phase === 0 ? 'initial weights' : `after ${sgdSteps} SGD steps`;
  const shards = Array.from({ length: 64 }, (_, s) => shardGradient(64 * sgdSteps + s * SHARD));
  report(`${at}, 4 shards`, shards.slice(0, 4));
  report(`${at}, 64 shards (16 workers)`, shards);
  timeIt(shards.slice(0, 4));
  if (phase === 0) {
    // plain SGD, lr 0.01 on the mean gradient of 64 samples
    for (let step = 0; step < sgdSteps; step++) {
      const g = new ExactAccumulator(n);
      for (let s = 0; s < 4; s++) g.add(shardGradient(64 * step + s * SHARD));
      const sum = g.toFloat32();
      for (let i = 0; i < n; i++) params[i] = Math.fround(params[i]! - (0.01 / 64) * sum[i]!);
    }
  }
}
