import * as path from 'node:path';
import {
  ALLREDUCE_MODES,
  COMPRESSIONS,
  MAX_SHARD_SAMPLES,
  SEED_CNN_PARAM_COUNT,
  TOKEN_ENV,
  initBackend,
  loadDataset,
  Reporter,
  splitFingerprint,
  type AllreduceMode,
  type DdpEvent,
  type Compression,
  type DataSpec,
  type LogFormat,
} from '@ddp/core';
import { CoordinatorServer, RingExecutor, WsExecutor, runJob } from '@ddp/coordinator';
import { formatFlags, num, parseFlags, str, UsageError, type FlagSpec, type FlagValues } from '../args.js';
import { exitWithLauncher, notifyListening } from '../launch/parent-link.js';
import { BACKEND_FLAG, LOG_FORMAT_FLAG, TRAINING_FLAGS, backendFrom, jobConfigFromFlags, logFormatFrom } from '../training-flags.js';

/** Flags of a multi-worker job that `ddp train --workers N` passes on to its coordinator. */
export const CLUSTER_FLAGS: readonly FlagSpec[] = [
  { name: 'serve-data', type: 'bool', help: 'send each shard\'s pixels to the workers (for workers without a copy of the data set)' },
  { name: 'worker-timeout', type: 'number', min: 0.1, default: 60, metavar: 'SECONDS', help: 'with every worker lost, wait this long for a new one, then fail' },
  { name: 'heartbeat-timeout', type: 'number', min: 0.5, default: 10, metavar: 'SECONDS', help: 'drop a worker silent this long (plus twice its last step\'s compute time; raise it for --backend cpu)' },
  { name: 'allreduce', type: 'string', choices: ALLREDUCE_MODES, default: 'star', help: 'star: the coordinator adds the gradients and applies Adam; ring: the workers reduce among themselves over direct links and each applies Adam to its replica' },
  { name: 'compress', type: 'string', choices: COMPRESSIONS, default: 'none', help: 'fp16: gradients travel as float16 (half the bytes; sums are still added in float32)' },
];

const FLAGS: readonly FlagSpec[] = [
  { name: 'workers', type: 'int', min: 1, help: 'workers to wait for before training (required)' },
  { name: 'port', type: 'int', min: 0, max: 65535, default: 7070, help: 'TCP port to listen on (0 picks a free one)' },
  { name: 'host', type: 'string', metavar: 'ADDR', default: '127.0.0.1', help: 'interface to bind; anything but loopback needs a token' },
  { name: 'token', type: 'string', metavar: 'T', env: TOKEN_ENV, help: 'shared secret workers must present' },
  ...CLUSTER_FLAGS,
  { name: 'join-timeout', type: 'number', min: 0.1, default: 300, metavar: 'SECONDS', help: 'wait this long for the first --workers workers to join, then fail' },
  { name: 'no-prefetch', type: 'bool', help: 'ring mode: do not send workers their next shard ahead (to measure what preparing it during the allreduce saves)' },
  ...TRAINING_FLAGS,
  BACKEND_FLAG,
  LOG_FORMAT_FLAG,
];

export const COORDINATOR_HELP = `Usage: ddp coordinator start --workers N [flags]

Serves the seed job to N workers over WebSockets (ddp worker --connect ws://HOST:PORT). It waits for
N workers, then for each step sends every worker the current weights and its shard of the seeded
global batch, adds their gradient sums in rank order, applies Adam and goes on. It evaluates after each
epoch, saves to --out, prints progress and the final test accuracy, and exits 0 when done.
A worker lost mid-step has its shard recomputed by the others; training goes on with the rest.

With --allreduce ring the workers hold the weights: each step they get only their shard, reduce the
gradient sums with their ring neighbours (addresses handed out by the coordinator), and apply the same
Adam step; the coordinator checks that every replica's weight hash agrees, and fetches the weights to
evaluate and save. A worker lost mid-step: the ring is re-formed without it and the step redone, once.

Flags:
${formatFlags(FLAGS)}

Examples:
  DDP_TOKEN=s3cret ddp coordinator start --workers 2 --out runs/mnist
  DDP_TOKEN=s3cret ddp worker --connect ws://127.0.0.1:7070      (twice, e.g. in two shells)`;

const isLoopback = (host: string) => host === 'localhost' || host === '::1' || host.startsWith('127.');

export async function runCoordinatorCommand(argv: string[]): Promise<number> {
  const { values, positionals, help } = parseFlags(argv, FLAGS, { positionals: 1 });
  if (help) {
    console.log(COORDINATOR_HELP);
    return 0;
  }
  if (positionals[0] !== 'start') {
    throw new UsageError(positionals[0] === undefined ? "ddp coordinator: missing subcommand (expected 'start')" : `ddp coordinator: unknown subcommand '${positionals[0]}' (expected 'start')`);
  }
  const workers = num(values, 'workers');
  if (workers === undefined) throw new UsageError('--workers N is required (how many workers to wait for)');
  const cfg = jobConfigFromFlags(values);
  if (cfg.batchSize > MAX_SHARD_SAMPLES) {
    throw new UsageError(`--batch-size must be at most ${MAX_SHARD_SAMPLES} with workers (the largest shard a worker accepts), got ${cfg.batchSize}`);
  }
  const host = str(values, 'host') ?? '127.0.0.1';
  const token = str(values, 'token') ?? '';
  if (!isLoopback(host) && token === '') {
    throw new UsageError(`--host ${host} exposes the coordinator beyond this machine: give a shared token with --token or ${TOKEN_ENV}`);
  }
  const serveData = values['serve-data'] === true;
  const allreduce = (str(values, 'allreduce') ?? 'star') as AllreduceMode;
  const compress = (str(values, 'compress') ?? 'none') as Compression;
  if (allreduce === 'ring' && cfg.reduction === 'exact') {
    throw new UsageError('--reduction exact needs --allreduce star (ring mode reduces float32 sums)');
  }
  if (compress !== 'none' && cfg.reduction === 'exact') throw new UsageError('--reduction exact cannot be combined with --compress fp16');
  const logFormat = logFormatFrom(values);
  const reporter = new Reporter(logFormat);

  const releaseLauncher = exitWithLauncher('coordinator');
  try {
    return await serveJob({ values, workers, host, token, serveData, allreduce, compress, logFormat, reporter });
  } finally {
    releaseLauncher();
  }
}

interface ServeOptions {
  values: FlagValues;
  workers: number;
  host: string;
  token: string;
  serveData: boolean;
  allreduce: AllreduceMode;
  compress: Compression;
  logFormat: LogFormat;
  reporter: Reporter;
}

/** Loads the data, listens, waits for the workers, runs the job; closes the server whatever happens. */
async function serveJob({ values, workers, host, token, serveData, allreduce, compress, logFormat, reporter }: ServeOptions): Promise<number> {
  const cfg = jobConfigFromFlags(values);
  const data = loadDataset(cfg);
  const backend = await initBackend(backendFrom(values));
  reporter.info(`backend: ${backend.name} (${backend.reason})`);
  const spec: DataSpec = {
    dataset: cfg.dataset,
    trainCount: data.train.count,
    fingerprint: splitFingerprint(data.train),
    serveData,
    rows: data.train.rows,
    cols: data.train.cols,
    numClasses: data.numClasses,
  };
  if (cfg.dataDir !== undefined) spec.dataDir = path.resolve(cfg.dataDir);
  if (cfg.limitTrain !== undefined) spec.limitTrain = cfg.limitTrain;

  const server = new CoordinatorServer({
    host,
    port: num(values, 'port'),
    token,
    maxWorkers: workers,
    paramCount: SEED_CNN_PARAM_COUNT,
    data: spec,
    heartbeatTimeoutMs: (num(values, 'heartbeat-timeout') ?? 10) * 1000,
    allreduce,
    compress,
    reduction: cfg.reduction,
  });
  const executorOptions = {
    workerTimeoutMs: (num(values, 'worker-timeout') ?? 60) * 1000,
    serveData: serveData ? data.train : undefined,
    onEvent: (e: DdpEvent) => {
      reporter.event(e);
      if (e.event === 'worker_joined' && e.backend && e.backend !== backend.name) {
        reporter.info(`note: worker ${e.rank} computes on ${e.backend}, this coordinator on ${backend.name}: expect more than rounding differences from a single-process run`);
      }
    },
    onInfo: (m: string) => reporter.info(m),
  };
  const executor =
    allreduce === 'ring'
      ? new RingExecutor(server, { ...executorOptions, prefetch: values['no-prefetch'] !== true })
      : new WsExecutor(server, executorOptions);
  const abort = new AbortController();
  const onSignal = () => {
    if (abort.signal.aborted) process.exit(130);
    reporter.info('interrupted: finishing the current step, then evaluating and saving (Ctrl-C again to quit now)');
    abort.abort();
  };
  process.on('SIGINT', onSignal);
  try {
    const port = await server.listen();
    const url = `ws://${host.includes(':') ? `[${host}]` : host}:${port}`;
    reporter.info(`coordinator: listening on ${url}, waiting for ${workers} worker(s)${token ? ' (token required)' : ' (no token: any local process may join)'}`);
    notifyListening(url);
    await executor.waitForWorkers(workers, (num(values, 'join-timeout') ?? 300) * 1000, abort.signal);
    const result = await runJob(cfg, data, executor, reporter, { backend: backend.name, signal: abort.signal });
    if (logFormat === 'text') {
      const b = result.breakdown;
      const ms = (k: string) => (b[k] ?? 0).toFixed(1);
      console.log(`per step: ${Object.keys(b).map((k) => `${k} ${ms(k)} ms`).join(', ')}`);
      console.log(`test accuracy: ${(result.test.accuracy * 100).toFixed(2)}%`);
    }
    return abort.signal.aborted ? 130 : 0;
  } finally {
    process.off('SIGINT', onSignal);
    await executor.close();
  }
}
