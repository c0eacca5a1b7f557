import { fileURLToPath } from 'node:url';
import { TOKEN_ENV, newestResultFile, readJsonFile, resultHeader, runMemoryBench, runStepBench, writeResultFile } from '@ddp/core';
import { formatFlags, num, parseFlags, parseOrHelp, str, UsageError, type FlagSpec, type FlagValues } from '../args.js';
import { BACKEND_FLAG } from '../training-flags.js';
import { runAllreduceBench } from '../bench/allreduce-bench.js';
import { runAllreduceMember } from '../bench/allreduce-member.js';
import { compareWithModel } from '../bench/alpha-beta-fit.js';
import type { AllreduceRow } from '../bench/allreduce-bench.js';
import { runScalingBench } from '../bench/scaling-bench.js';
import { runWeakScalingBench } from '../bench/weak-scaling-bench.js';
import { formatSimulation, simulate, type ComputeSource, type ScalingMode } from '../bench/simulate-bench.js';
import { computeFromStepResult } from '../bench/step-result.js';
import { formatBandwidth, formatDuration, parseBandwidth, parseChoiceList, parseCountList, parseDuration, parseSizeList } from '../bench/units.js';
import { PEER_TOPOLOGIES, type PeerTopology } from '../bench/peer.js';

/** The built CLI entry point, which benchmark children run (this file is dist/commands/bench.js). */
const MAIN_JS = fileURLToPath(new URL('../main.js', import.meta.url));

const SEED_CNN_PARAMS = 93322;

/** --out of a benchmark that writes bench/results/<name>-<time>.json unless told otherwise. */
const resultFileFlag = (name: string, more = ''): FlagSpec => ({ name: 'out', type: 'string', metavar: 'FILE', help: `JSON result file (default bench/results/${name}-<time>.json${more})` });

const STEP_FLAGS: readonly FlagSpec[] = [
  { name: 'batch-size', type: 'int', min: 1, default: 64, help: 'samples per training step' },
  { name: 'warmup', type: 'int', min: 0, default: 3, help: 'steps run before timing starts' },
  { name: 'steps', type: 'int', min: 1, default: 15, help: 'timed gradient steps per variant (the median is reported)' },
  { name: 'rounds', type: 'int', min: 0, default: 3, help: 'interleaved rounds of the per-core comparison with PyTorch (0: skip it)' },
  { name: 'train-steps', type: 'int', min: 1, default: 100, help: 'training steps per round and side in that comparison' },
  { name: 'pytorch', type: 'string', choices: ['auto', 'off'], default: 'auto', help: 'auto: run PyTorch where a python3 (DDP_PYTHON, python3, /usr/bin/python3) imports torch; off: use the recorded figure' },
  resultFileFlag('step'),
];

const MEMORY_FLAGS: readonly FlagSpec[] = [
  { name: 'steps', type: 'int', min: 1, default: 2000, help: 'training steps to run' },
  { name: 'batch-size', type: 'int', min: 1, default: 64, help: 'samples per training step' },
  { name: 'every', type: 'int', min: 1, default: 100, help: 'record a sample every N steps (and after the last)' },
  resultFileFlag('memory'),
];

const ALLREDUCE_FLAGS: readonly FlagSpec[] = [
  { name: 'workers', type: 'string', metavar: 'N[,N..]', default: '2', help: 'member processes; a list (2,8) or a doubling range (2..8) runs each in turn' },
  { name: 'sizes', type: 'string', metavar: 'FLOATS,..', default: '93322,1000000,10000000', help: 'vector lengths in float32 elements (93322 = the seed CNN)' },
  { name: 'algo', type: 'string', metavar: 'star,ring', default: 'star,ring', help: 'algorithms to time' },
  { name: 'compress', type: 'string', metavar: 'none,fp16', default: 'none', help: 'payload encodings to time (fp16 halves the bytes on the wire)' },
  { name: 'iters', type: 'int', min: 1, default: 20, help: 'timed iterations per case (median, p10 and p90 are reported)' },
  { name: 'warmup', type: 'int', min: 0, default: 3, help: 'untimed iterations per case first' },
  resultFileFlag('allreduce'),
  { name: 'chunk-bytes', type: 'int', min: 1024, help: 'payload bytes per WebSocket frame (default 1048576)' },
  { name: 'timeout', type: 'number', min: 0.1, default: 120, metavar: 'SECONDS', help: 'a member waiting this long for a message fails the run' },
  { name: 'connect-timeout', type: 'number', min: 0.1, default: 30, metavar: 'SECONDS', help: 'time for the members to link up' },
  { name: 'hosts', type: 'string', metavar: 'ADDR,..', help: 'listen address of each rank (one for all, or one per rank; default 127.0.0.1)' },
  { name: 'exec-prefix', type: 'string', metavar: 'CMD', help: "command put before each member, {rank} replaced, e.g. 'ip netns exec ns{rank}' (as bench/netns.sh does)" },
];

const MEMBER_FLAGS: readonly FlagSpec[] = [
  { name: 'rank', type: 'int', min: 0, help: 'this member' },
  { name: 'size', type: 'int', min: 1, help: 'members in the group' },
  { name: 'host', type: 'string', default: '127.0.0.1', help: 'listen address' },
  { name: 'topology', type: 'string', default: 'ring', help: 'links to open: star, ring and/or full, comma-separated' },
  { name: 'chunk-bytes', type: 'int', min: 1024, help: 'payload bytes per frame' },
  { name: 'recv-timeout-ms', type: 'int', min: 1, default: 120000, help: 'receive timeout' },
  { name: 'connect-timeout-ms', type: 'int', min: 1, default: 30000, help: 'link-up timeout' },
];

/** `ddp bench scaling`'s defaults that depend on the mode (--weak or not), written once. */
const SCALING_DEFAULTS = { steps: 60, warmupSteps: 10, maxSteps: 300, rounds: 3 } as const;

const SCALING_FLAGS: readonly FlagSpec[] = [
  { name: 'weak', type: 'bool', help: 'weak scaling: the batch per worker stays --batch-size; rounds of one process vs N workers (see above)' },
  { name: 'workers', type: 'string', metavar: 'N[,N..]', help: 'worker counts to run, each a `ddp train --workers N` (default: 1,2; with --weak: 2)' },
  { name: 'algo', type: 'string', metavar: 'A[,A..]', help: "values for `ddp train --allreduce` (e.g. star,ring); default: train's own" },
  { name: 'batch-size', type: 'int', min: 1, default: 64, help: 'global batch, split across the workers; with --weak: the batch per worker B' },
  { name: 'steps', type: 'int', min: 1, help: `timed optimizer steps per run (default: ${SCALING_DEFAULTS.steps}; not with --weak)` },
  { name: 'warmup-steps', type: 'int', min: 1, help: `steps before the timed window (default: ${SCALING_DEFAULTS.warmupSteps}; not with --weak)` },
  { name: 'no-reference', type: 'bool', help: 'skip the single-process run (--workers 0; not with --weak)' },
  { name: 'max-steps', type: 'int', min: 1, help: `with --weak: optimizer steps per run (default: ${SCALING_DEFAULTS.maxSteps})` },
  { name: 'rounds', type: 'int', min: 1, help: `with --weak: interleaved rounds, the median is reported (default: ${SCALING_DEFAULTS.rounds})` },
  { name: 'run-timeout', type: 'number', min: 1, default: 900, metavar: 'SECONDS', help: 'kill a run that takes longer' },
  { name: 'dataset', type: 'string', help: 'passed to ddp train' },
  { name: 'data-dir', type: 'string', metavar: 'DIR', help: 'passed to ddp train' },
  { name: 'limit-train', type: 'int', min: 1, help: 'passed to ddp train' },
  { name: 'seed', type: 'int', min: 0, help: "passed to ddp train (default: train's own; with --weak: 42)" },
  { name: 'reduction', type: 'string', choices: ['exact', 'fast'], help: "passed to ddp train, the one-process runs included (default: train's own, exact; fast: float32 sums)" },
  resultFileFlag('scaling', '; with --weak: scaling-weak-<time>.json'),
  BACKEND_FLAG,
];

const SIMULATE_FLAGS: readonly FlagSpec[] = [
  { name: 'workers', type: 'string', metavar: 'N[,N..]', default: '2..256', help: 'worker counts: a doubling range (2..256) or a list' },
  { name: 'bandwidth', type: 'string', metavar: 'RATE', default: '10Gbit', help: 'link bandwidth per NIC and direction: 10Gbit, 100Mbit/s, 25Gbps, 1.25GB/s, ...' },
  { name: 'latency', type: 'string', metavar: 'TIME', default: '50us', help: 'per-message latency alpha: 50us, 0.2ms, ...' },
  { name: 'params', type: 'string', metavar: 'N[,N..]', help: `more parameter counts to model besides the seed CNN's ${SEED_CNN_PARAMS}` },
  { name: 'compute-ms', type: 'number', min: 0, help: 'compute time of one step on one worker (ms); default: the newest bench/results/step-*.json' },
  { name: 'from-step', type: 'string', metavar: 'FILE', help: 'take the compute time from this `ddp bench step` result' },
  { name: 'batch-size', type: 'int', min: 1, help: 'samples per step (for samples/s; default: the step result\'s)' },
  { name: 'scaling', type: 'string', choices: ['weak', 'strong'], default: 'weak', help: 'weak: per-worker batch fixed; strong: global batch split N ways' },
  { name: 'compress', type: 'string', choices: ['none', 'fp16'], default: 'none', help: 'gradient encoding on the wire' },
  { name: 'check', type: 'string', metavar: 'FILE[,FILE]', help: '`ddp bench allreduce` results: fit alpha and beta to them and show how far the model is off' },
  { name: 'fit-workers', type: 'string', metavar: 'N[,N..]', help: 'with --check: fit on these worker counts only (default: the smallest in the file)' },
  { name: 'no-fit', type: 'bool', help: 'with --check: predict with --bandwidth and --latency as given instead of fitting them' },
  { name: 'out', type: 'string', metavar: 'FILE', help: 'also write the tables as JSON here' },
];

export const BENCH_HELP = `Usage: ddp bench <benchmark> [flags]

Benchmarks (each prints a table and writes JSON under bench/results/ with the machine it ran on;
simulate writes JSON only with --out):
  step        one training step of the seed CNN on wasm: stock kernels vs ddp's before and after its
              latest levers, per-kernel times, and the ratio per core against PyTorch
  memory      training steps of the seed CNN on wasm, sampling RSS, live tensors and backend buffers
              every N steps: they should stay flat (no leaks)
  allreduce   star and ring allreduce between N processes over WebSockets: median latency, algorithm
              and bus bandwidth (NCCL-tests definitions) per vector size
  scaling     ddp train with 0 (one process), 1, 2, ... workers and one global batch: throughput,
              efficiency tput_N / (N x tput_1) and the per-step breakdown (compute, communication,
              waiting); --weak: batch N x B on N workers against B in one process, in interleaved
              rounds, ratio samples/s_N / (N x samples/s_1)
  simulate    alpha-beta model of star and ring for 2..256 workers on a given network: predicted step time
              and efficiency from the measured compute time; --check fits it to an allreduce result

ddp bench <benchmark> --help lists its flags.

Examples:
  ddp bench memory --steps 500 --every 50
  ddp bench allreduce --workers 2,8 --sizes 93322,1000000,10000000 --algo star,ring
  ddp bench scaling --workers 1,2 --algo star,ring
  ddp bench scaling --weak --workers 2 --batch-size 64 --rounds 3 --algo star,ring
  ddp bench simulate --workers 2..256 --bandwidth 10Gbit --latency 50us --params 10000000
  ddp bench simulate --check bench/results/allreduce-<time>.json
  sudo bench/netns.sh allreduce 4 --delay 50us --rate 10gbit        (namespaces + netem, not in CI)`;

const STEP_HELP = `Usage: ddp bench step [flags]

Times the seed CNN's training step on a synthetic batch on the wasm backend, in one process:

1. The gradient (forward + backward, the gradient of the loss sum, as a worker computes it) in three
   variants timed step by step in turn: naive (the stock wasm kernels), before (ddp's kernels without
   the transposed-im2col filter gradient, with conv, bias add and relu apart as tfjs tapes them) and
   ddp (all of ddp's kernels and its fused conv/dense + bias + relu layers). Median ms per step,
   samples/s, and the median per-kernel time from tf.profile.
2. Per core against PyTorch: whole training steps as \`ddp train --workers 0\` runs them (exact
   micro-shards, then Adam) against the same step in PyTorch on one thread (\`python3 -c\`, batch and
   steps alike), in --rounds interleaved rounds; prints each round and the median ratio. Where no
   python3 imports torch (Debian: apt-get install python3-torch libopenblas0-pthread) it says so and
   gives the ratio against a recorded PyTorch figure instead.

It always runs on wasm, whatever backend ddp train would pick.

Flags:
${formatFlags(STEP_FLAGS)}`;

const MEMORY_HELP = `Usage: ddp bench memory [flags]

Runs training steps of the seed CNN (the gradient as a worker computes it, then a plain SGD update, so
every step sees new weights) on a synthetic batch on the wasm backend with ddp's kernels, and records
every --every steps the process RSS, V8's heap, tfjs's live tensor count, the backend's live buffer count
(which also counts kernel temporaries a kernel forgot to free) and the wasm heap. The tensor and buffer
counts should not grow; RSS may grow a little while allocators warm up.

Flags:
${formatFlags(MEMORY_FLAGS)}`;

const ALLREDUCE_HELP = `Usage: ddp bench allreduce [flags]

Starts N member processes (ddp bench allreduce-member) that link up over WebSockets (the worker's peer
transport, a shared random token), and times starAllreduce and ringAllreduce of float32 vectors.
Per case: a barrier, warm-up iterations, a barrier, then the timed iterations back to back (as NCCL-tests
runs them); on each rank an iteration takes the gap since its previous completion, and an iteration
counts as its slowest rank's time. Reports the median (p10, p90), algbw = floats*4/time and
busbw = algbw*2(N-1)/N, and checks the last result of every case against the exact sum. Star's root is
rank 0, one of the N members. Large vectors with many members take a while: with 10M floats and 8
members, star's root takes in 280 MB and sends out 280 MB per iteration.

Flags:
${formatFlags(ALLREDUCE_FLAGS)}`;

const SCALING_HELP = `Usage: ddp bench scaling [flags]

Strong scaling (default): runs \`ddp train --workers N --max-steps W+K --batch-size B --log-format json\`
for N = 0 (one process, the reference) and each --workers value, with the same global batch B (split
across the workers), and reports throughput over the K timed steps (from the arrival times of the step
events, warm-up and evaluation excluded), efficiency tput_N / (N x tput_1) against the 1-worker run and
against the single process, and the run's own per-step breakdown by phase. Writes
bench/results/scaling-<time>.json, and beside it .svg and .png: samples/s and efficiency against N,
with the ideal (N x samples/s of 1 worker) dashed.

Weak scaling (--weak): for R interleaved rounds (--rounds) runs \`ddp train --workers 0 --batch-size B\`
and, for each N in --workers (and each --algo), \`ddp train --workers N --batch-size N*B\`, all with
\`--max-steps S --no-eval --limit-test 200 --seed 42 --log-format json\`, and reports per round and as the
median the ratio samples/s(N workers) / (N x samples/s(one process)), samples/s from each run's done
event. Writes bench/results/scaling-weak-<time>.json, and beside it .svg and .png: median samples/s
and ratio against N, with the ideal (N x samples/s of one process) dashed.

Flags:
${formatFlags(SCALING_FLAGS)}`;

const SIMULATE_HELP = `Usage: ddp bench simulate [flags]

Predicts, with the alpha-beta model (T = alpha per message + bytes / beta), the allreduce time, step time
(compute + allreduce, which do not overlap in ddp) and efficiency (compute / step) of star (through the
coordinator: 2 alpha + 2 N bytes/beta) and ring (2(N-1) alpha + 2(N-1)/N bytes/beta), for each worker
count, for the seed CNN's ${SEED_CNN_PARAMS} parameters and any --params.

The compute time comes from --compute-ms, else --from-step FILE, else the newest bench/results/step-*.json
(\`ddp bench step\`, ddp kernels). With --check FILE (a \`ddp bench allreduce\` result) it also fits alpha and
beta to that file's smallest N by least squares on relative error and prints, for every row, the predicted
time next to the measured one (--no-fit: with --bandwidth and --latency as given, e.g. a netns.sh rate).
The benchmark's star root is one of the N members, so there star is modelled as 2 alpha + 2(N-1) bytes/beta.

Flags:
${formatFlags(SIMULATE_FLAGS)}`;

/** Where the benchmarks' tables go. */
const print = (line: string) => console.log(line);

async function benchStep(rest: string[]): Promise<number> {
  const v = parseOrHelp(rest, STEP_FLAGS, STEP_HELP);
  if (v) {
    await runStepBench({
      batchSize: num(v, 'batch-size'), warmup: num(v, 'warmup'), steps: num(v, 'steps'), rounds: num(v, 'rounds'),
      trainSteps: num(v, 'train-steps'), pytorch: str(v, 'pytorch') as 'auto' | 'off', out: str(v, 'out'), log: print,
    });
  }
  return 0;
}

async function benchMemory(rest: string[]): Promise<number> {
  const v = parseOrHelp(rest, MEMORY_FLAGS, MEMORY_HELP);
  if (v) await runMemoryBench({ steps: num(v, 'steps'), batchSize: num(v, 'batch-size'), every: num(v, 'every'), out: str(v, 'out'), log: print });
  return 0;
}

async function benchAllreduce(rest: string[]): Promise<number> {
  const v = parseOrHelp(rest, ALLREDUCE_FLAGS, ALLREDUCE_HELP);
  if (!v) return 0;
  const workers = parseCountList('workers', str(v, 'workers')!, 2, 256);
  const hosts = str(v, 'hosts')?.split(',').map((h) => h.trim());
  const result = await runAllreduceBench({
    workers,
    sizes: parseSizeList('sizes', str(v, 'sizes')!, 2 ** 28),
    algos: parseChoiceList('algo', str(v, 'algo')!, ['star', 'ring'] as const),
    compress: parseChoiceList('compress', str(v, 'compress')!, ['none', 'fp16'] as const),
    iters: num(v, 'iters')!,
    warmup: num(v, 'warmup')!,
    hosts,
    execPrefix: str(v, 'exec-prefix'),
    chunkBytes: num(v, 'chunk-bytes'),
    recvTimeoutMs: Math.round(num(v, 'timeout')! * 1000),
    connectTimeoutMs: Math.round(num(v, 'connect-timeout')! * 1000),
    out: str(v, 'out'),
    mainJs: MAIN_JS,
    log: print,
  });
  return result.rows.every((r) => r.mismatches === 0) ? 0 : 1;
}

async function benchAllreduceMember(rest: string[]): Promise<number> {
  const { values: v } = parseFlags(rest, MEMBER_FLAGS, { positionals: 0 });
  const rank = num(v, 'rank');
  const size = num(v, 'size');
  if (rank === undefined || size === undefined) throw new UsageError('allreduce-member needs --rank and --size (it is started by ddp bench allreduce)');
  if (rank >= size) throw new UsageError(`--rank must be below --size (${size}), got ${rank}`);
  const token = process.env[TOKEN_ENV];
  if (token === undefined) throw new UsageError(`allreduce-member reads its token from ${TOKEN_ENV}, which is not set`);
  return runAllreduceMember({
    rank,
    size,
    token,
    host: str(v, 'host')!,
    topology: parseChoiceList('topology', str(v, 'topology')!, PEER_TOPOLOGIES) as PeerTopology[],
    chunkBytes: num(v, 'chunk-bytes'),
    recvTimeoutMs: num(v, 'recv-timeout-ms')!,
    connectTimeoutMs: num(v, 'connect-timeout-ms')!,
  });
}

/** Flags that belong to one mode of `ddp bench scaling` only. */
const STRONG_ONLY = ['steps', 'warmup-steps', 'no-reference'];
const WEAK_ONLY = ['max-steps', 'rounds'];

async function benchScaling(rest: string[]): Promise<number> {
  const v = parseOrHelp(rest, SCALING_FLAGS, SCALING_HELP);
  if (!v) return 0;
  const weak = v.weak === true;
  for (const name of weak ? STRONG_ONLY : WEAK_ONLY) {
    if (v[name] !== undefined) throw new UsageError(weak ? `--${name} does not apply to --weak (it runs --max-steps S per run)` : `--${name} applies only with --weak`);
  }
  const seed = num(v, 'seed') ?? (weak ? 42 : undefined);
  const trainArgs = ['--backend', str(v, 'backend')!, ...(seed === undefined ? [] : ['--seed', String(seed)])];
  for (const name of ['dataset', 'data-dir', 'limit-train', 'reduction']) if (v[name] !== undefined) trainArgs.push(`--${name}`, String(v[name]));
  const common = {
    workers: parseCountList('workers', str(v, 'workers') ?? (weak ? '2' : '1,2'), 1, 64),
    algos: str(v, 'algo')?.split(',').map((s) => s.trim()).filter(Boolean),
    trainArgs,
    mainJs: MAIN_JS,
    runTimeoutMs: num(v, 'run-timeout')! * 1000,
    out: str(v, 'out'),
    log: print,
  };
  if (weak) {
    await runWeakScalingBench({ ...common, perWorkerBatch: num(v, 'batch-size')!, maxSteps: num(v, 'max-steps') ?? SCALING_DEFAULTS.maxSteps, rounds: num(v, 'rounds') ?? SCALING_DEFAULTS.rounds });
  } else {
    await runScalingBench({
      ...common,
      steps: num(v, 'steps') ?? SCALING_DEFAULTS.steps,
      warmupSteps: num(v, 'warmup-steps') ?? SCALING_DEFAULTS.warmupSteps,
      batchSize: num(v, 'batch-size')!,
      reference: v['no-reference'] !== true,
    });
  }
  return 0;
}

function computeSource(v: FlagValues): ComputeSource {
  const ms = num(v, 'compute-ms');
  const batch = num(v, 'batch-size');
  let source: ComputeSource;
  if (ms !== undefined) {
    if (v['from-step'] !== undefined) throw new UsageError('give --compute-ms or --from-step, not both');
    source = { seconds: ms / 1000, batchSize: undefined, from: '--compute-ms' };
  } else {
    const file = str(v, 'from-step') ?? newestResultFile('step');
    if (file === undefined) {
      throw new UsageError('no compute time: pass --compute-ms MS, or --from-step FILE, or run `ddp bench step` first (it writes bench/results/step-*.json)');
    }
    source = computeFromStepResult(file);
  }
  return batch === undefined ? source : { ...source, batchSize: batch };
}

async function benchSimulate(rest: string[]): Promise<number> {
  const v = parseOrHelp(rest, SIMULATE_FLAGS, SIMULATE_HELP);
  if (!v) return 0;
  const workers = parseCountList('workers', str(v, 'workers')!, 1, 1 << 20);
  const net = { latencySec: parseDuration('latency', str(v, 'latency')!), bandwidthBytesPerSec: parseBandwidth('bandwidth', str(v, 'bandwidth')!) };
  const extra = str(v, 'params') === undefined ? [] : parseSizeList('params', str(v, 'params')!, 2 ** 40);
  const params = [...new Set([SEED_CNN_PARAMS, ...extra])];
  const opts = {
    workers,
    net,
    params,
    compute: computeSource(v),
    compress: str(v, 'compress') as 'none' | 'fp16',
    scaling: str(v, 'scaling') as ScalingMode,
  };
  const rows = simulate(opts);
  for (const line of formatSimulation(opts, rows)) console.log(line);

  let check: ReturnType<typeof compareWithModel> | undefined;
  const checkFile = str(v, 'check');
  if (checkFile !== undefined) {
    const rows: AllreduceRow[] = [];
    for (const file of checkFile.split(',')) {
      const data = readJsonFile(file) as { benchmark?: unknown; rows?: AllreduceRow[] };
      if (data?.benchmark !== 'allreduce' || !Array.isArray(data.rows)) throw new UsageError(`${file}: not a 'ddp bench allreduce' result (expected benchmark "allreduce" and a rows array)`);
      rows.push(...data.rows);
    }
    const fitOn = str(v, 'fit-workers') === undefined ? undefined : parseCountList('fit-workers', str(v, 'fit-workers')!, 2, 1 << 20);
    check = compareWithModel(rows, fitOn, v['no-fit'] === true ? net : undefined);
    console.log('');
    console.log(`model vs measurement (${checkFile}):`);
    const fitted = check.fittedOn.length ? `fitted on N = ${check.fittedOn.join(', ')}` : 'as given (--no-fit)';
    console.log(`${fitted}: alpha = ${formatDuration(check.net.latencySec)}, beta = ${formatBandwidth(check.net.bandwidthBytesPerSec)} (${(check.net.bandwidthBytesPerSec / 1e9).toFixed(3)} GB/s); star with a member root (the benchmark's): 2 alpha + 2(N-1) bytes/beta`);
    console.log(`${'N'.padStart(4)} ${'algo'.padStart(5)} ${'compress'.padStart(8)} ${'floats'.padStart(10)} ${'measured ms'.padStart(12)} ${'model ms'.padStart(10)} ${'model/meas'.padStart(10)}  fit`);
    for (const r of check.rows) {
      console.log(
        `${String(r.workers).padStart(4)} ${r.algo.padStart(5)} ${r.compress.padStart(8)} ${String(r.floats).padStart(10)} ${r.medianMs.toFixed(3).padStart(12)} ${r.predictedMs.toFixed(3).padStart(10)} ${r.ratio.toFixed(2).padStart(10)}  ${r.inFit ? 'yes' : ''}`,
      );
    }
    const judged = check.rows.some((r) => !r.inFit) ? 'rows outside the fit' : 'all rows (all were in the fit)';
    console.log(`|model/measured - 1| over ${judged}: median ${(check.medianAbsError * 100).toFixed(0)}%, worst ${(check.worstAbsError * 100).toFixed(0)}%`);
  }
  const out = str(v, 'out');
  if (out !== undefined) {
    const file = writeResultFile(out, { ...resultHeader('simulate'), options: opts, rows, check });
    console.log(`written ${file}`);
  }
  return 0;
}

type Bench = (rest: string[]) => Promise<number>;
const BENCHES: Record<string, Bench> = {
  step: benchStep,
  memory: benchMemory,
  allreduce: benchAllreduce,
  scaling: benchScaling,
  simulate: benchSimulate,
  // Internal: one member process of `ddp bench allreduce` (not in the help).
  'allreduce-member': benchAllreduceMember,
};

export async function runBenchCommand(argv: string[]): Promise<number> {
  const [which, ...rest] = argv;
  if (which === undefined || which === '--help' || which === '-h') {
    console.log(BENCH_HELP);
    return which === undefined ? 2 : 0;
  }
  const bench = BENCHES[which];
  if (!bench) throw new UsageError(`unknown benchmark '${which}' (step, memory, allreduce, scaling, simulate; see ddp bench --help)`);
  return bench(rest);
}
