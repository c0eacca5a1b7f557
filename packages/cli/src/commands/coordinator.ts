import * as path from 'node:path';
import {
  MAX_SHARD_SAMPLES,
  RunError,
  SEED_CNN_PARAM_COUNT,
  TOKEN_ENV,
  VIEW_TOKEN_ENV,
  newToken,
  readTlsMaterial,
  type TlsMaterial,
  DDP_VERSION,
  fingerprintHash,
  initBackend,
  loadDataset,
  Reporter,
  describeEvent,
  splitFingerprint,
  wireConflict,
  type DdpEvent,
  type DataSpec,
  type WireConfig,
} from '@ddp/core';
import { CoordinatorServer, EventStream, Metrics, RingTrainer, StarTrainer, WorkerPool, runJob, type Trainer } from '@ddp/coordinator';
import { formatFlags, num, numOf, parseFlags, str, strOf, UsageError, type FlagSpec, type FlagValues } from '../args.js';
import { EXIT_CODES_HELP } from '../exit-codes.js';
import { certKeyFiles } from '../tls-flags.js';
import { exitWithLauncher, notifyListening } from '../launch/parent-link.js';
import { checkpointingFromFlags, jobFingerprint } from '../checkpointing.js';
import { reportFailure } from '../report-failure.js';
import { BACKEND_FLAG, LOG_FORMAT_FLAG, TRAINING_FLAGS, WIRE_FLAGS, backendFrom, jobConfigFromFlags, logFormatFrom, timelineFromFlags, wireConfigFromFlags } from '../training-flags.js';

/** Flags of a multi-worker job that `ddp train --workers N` passes on to its coordinator. */
export const CLUSTER_FLAGS: readonly FlagSpec[] = [
  ...WIRE_FLAGS,
  { name: 'serve-data', type: 'bool', help: 'send the training set to the workers when they join (for workers without a copy of the data set)' },
  { name: 'min-workers', type: 'int', min: 1, default: 1, metavar: 'M', help: 'below M workers the run pauses (and says how many are missing) until enough join' },
  { name: 'max-workers', type: 'int', min: 1, metavar: 'X', help: 'take at most X workers; more are refused with DDP_FULL (default: --workers)' },
  { name: 'worker-timeout', type: 'number', min: 0.1, default: 60, metavar: 'SECONDS', help: 'a pause below --min-workers (or with every worker lost) may last this long, then the run fails' },
  { name: 'heartbeat-timeout', type: 'number', min: 0.5, default: 10, metavar: 'SECONDS', help: 'drop a worker silent this long (plus twice its last step\'s compute time; raise it for --backend cpu)' },
  { name: 'straggler-factor', type: 'number', min: 1, metavar: 'F', help: 'F > 1, off by default, 3 is reasonable; star: a shard out F x the median shard time also goes to an idle worker; ring: name the member that held up a step' },
  { name: 'stall-warning', type: 'number', min: 0.1, default: 10, metavar: 'SECONDS', help: 'name the ranks a step has waited this long for, with their host and last message: a stall event' },
];

export const COORDINATOR_FLAGS: readonly FlagSpec[] = [
  { name: 'workers', type: 'int', min: 1, help: 'workers to wait for before training (required)' },
  { name: 'port', type: 'int', min: 0, max: 65535, default: 7070, help: 'TCP port to listen on (0 picks a free one)' },
  { name: 'host', type: 'string', metavar: 'ADDR', default: '127.0.0.1', help: 'interface to bind; anything but loopback needs a token (without one, a fresh token is generated and printed once)' },
  { name: 'token', type: 'string', metavar: 'T', env: TOKEN_ENV, help: 'shared secret workers must present' },
  { name: 'view-token', type: 'string', metavar: 'T', env: VIEW_TOKEN_ENV, help: 'read-only token: opens the dashboard, /events, /metrics and /readyz, but cannot join as a worker' },
  { name: 'tls-cert', type: 'string', metavar: 'FILE', help: 'serve wss:// (and https:// for the dashboard) with this certificate (ddp certs writes node.crt); needs --tls-key' },
  { name: 'tls-key', type: 'string', metavar: 'FILE', help: 'the private key of --tls-cert (node.key)' },
  ...CLUSTER_FLAGS,
  { name: 'join-timeout', type: 'number', min: 0.1, default: 300, metavar: 'SECONDS', help: 'wait this long for the first --workers workers to join, then fail' },
  ...TRAINING_FLAGS,
  BACKEND_FLAG,
  LOG_FORMAT_FLAG,
];

export const COORDINATOR_HELP = `Usage: ddp coordinator start --workers N [flags]

Serves the seed job to N workers over WebSockets (ddp worker --connect ws://HOST:PORT). It waits for
N workers, trains, evaluates after each epoch, saves to --out, prints progress and the final test
accuracy, and exits 0 when done.

--allreduce ring (the default): the workers hold the weights and draw their own shards of every step's
seeded global batch; they reduce the gradient sums with their ring neighbours (addresses handed out by
the coordinator) and apply the same Adam step, without waiting for the coordinator. The coordinator
checks every --hash-every steps that the replicas agree, and fetches the weights to evaluate and save.
A worker lost mid-run: the ring is re-formed without it and the step in hand redone, once.

--allreduce star: for each step the coordinator sends every worker the weights and its shard, adds their
gradient sums in rank order and applies Adam. A worker lost mid-step has its shard recomputed by another.

What is guaranteed: by default (--reduction exact) every batch is computed in micro-shards of 16
samples whose sums are added exactly and rounded once, so the weights and losses are bit for bit those
of \`ddp train --workers 0\` with the same flags, whatever the number of workers, star or ring, with
workers lost or joining, as long as every process uses the same backend. --reduction fast and
--compress fp16 (which selects fast when --reduction is not given; with an explicit --reduction exact
it is a usage error) trade that for float32 sums whose bits depend on how the batch is split.

Stragglers (--straggler-factor F): in star mode a shard not back after F x the median of recent shard
times is also given to a worker done with its own; the first answer is used (the same bits either way),
and the straggler gets no new shard until it has caught up. In ring mode every member is needed, so a
member that holds up a step past F x the median step time is only named. Both emit a straggler event.

Workers outlive their coordinator: if this process dies, each worker keeps trying to rejoin the same
address for its --reconnect-timeout (60 s by default). A coordinator started there with the same
--job-id (a resumed one keeps its checkpoints' id) and the same job flags (data set, batch size, lr, seed, wire settings) takes them back; any
other job makes them leave with DDP_JOB_CHANGED (exit code 3). The job id is printed at start.

Beyond this machine (--host other than loopback): a token is required; without --token (DDP_TOKEN) a
fresh one is generated and printed once. --tls-cert/--tls-key serve wss:// and https:// (ddp certs
makes a job CA and a node certificate); a plaintext client is then refused with DDP_TLS_REQUIRED, and
tokens are compared in constant time and never logged.

Flags:
${formatFlags(COORDINATOR_FLAGS)}

${EXIT_CODES_HELP}

Examples:
  DDP_TOKEN=s3cret ddp coordinator start --workers 2 --out runs/mnist
  DDP_TOKEN=s3cret ddp worker --connect ws://127.0.0.1:7070      (twice, e.g. in two shells)
  ddp certs --out certs --hosts 10.0.0.1,10.0.0.2,10.0.0.3
  ddp coordinator start --workers 2 --host 0.0.0.0 --tls-cert certs/node.crt --tls-key certs/node.key
  DDP_TOKEN=... ddp worker --connect wss://10.0.0.1:7070 --tls-ca certs/ca.crt --tls-cert certs/node.crt --tls-key certs/node.key`;

/** --tls-cert and --tls-key, read and checked (both or neither). */
function tlsFromFlags(values: FlagValues): TlsMaterial | undefined {
  const files = certKeyFiles(values);
  return files && readTlsMaterial(files);
}

const isLoopback = (host: string) => host === 'localhost' || host === '::1' || host.startsWith('127.');

export async function runCoordinatorCommand(argv: string[]): Promise<number> {
  const { values, positionals, help } = parseFlags(argv, COORDINATOR_FLAGS, { positionals: 1 });
  if (help) {
    console.log(COORDINATOR_HELP);
    return 0;
  }
  if (positionals[0] !== 'start') {
    throw new UsageError(positionals[0] === undefined ? "ddp coordinator: missing subcommand (expected 'start')" : `ddp coordinator: unknown subcommand '${positionals[0]}' (expected 'start')`);
  }
  const workers = num(values, 'workers');
  if (workers === undefined) throw new UsageError('--workers N is required (how many workers to wait for)');
  const minWorkers = numOf(values, 'min-workers');
  const maxWorkers = num(values, 'max-workers') ?? workers;
  if (minWorkers > workers) throw new UsageError(`--min-workers ${minWorkers} is more than --workers ${workers} (the workers waited for before the first step)`);
  if (maxWorkers < workers) throw new UsageError(`--max-workers ${maxWorkers} is less than --workers ${workers}`);
  const cfg = jobConfigFromFlags(values);
  if (cfg.batchSize > MAX_SHARD_SAMPLES) {
    throw new UsageError(`--batch-size must be at most ${MAX_SHARD_SAMPLES} with workers (the largest shard a worker accepts), got ${cfg.batchSize}`);
  }
  const host = strOf(values, 'host');
  const given = str(values, 'token') ?? '';
  const viewToken = str(values, 'view-token') ?? '';
  if (viewToken !== '' && given === '') throw new UsageError('--view-token only makes sense with --token (without a token every endpoint is open)');
  if (viewToken !== '' && viewToken === given) throw new UsageError('--view-token must differ from --token (the view token cannot join as a worker)');
  const tls = tlsFromFlags(values);
  let token = given;
  if (!isLoopback(host) && token === '') {
    // Never an open port beyond this machine: a fresh token, shown this once (it is not logged again).
    token = newToken();
    process.stderr.write(
      `coordinator: --host ${host} is reachable from other machines and no --token (${TOKEN_ENV}) was given: generated the token ${token}\n` +
        `  (shown once; start each worker with ${TOKEN_ENV}=<that token>)\n`,
    );
  }
  const config = wireConfigFromFlags(values);
  const conflict = wireConflict(config);
  if (conflict) throw new UsageError(conflict);
  const stragglerFactor = num(values, 'straggler-factor');
  if (stragglerFactor !== undefined && !(stragglerFactor > 1)) throw new UsageError(`--straggler-factor must be more than 1 (a worker slower than F x the median), got ${stragglerFactor}`);
  const logFormat = logFormatFrom(values);
  const reporter = new Reporter(logFormat);
  const writeTimeline = timelineFromFlags(values, reporter);

  const releaseLauncher = exitWithLauncher('coordinator');
  try {
    return await serveJob({ values, workers, minWorkers, maxWorkers, host, token, viewToken, config, reporter, tls });
  } catch (err) {
    reportFailure(reporter, err);
    throw err;
  } finally {
    writeTimeline();
    releaseLauncher();
  }
}

interface ServeOptions {
  values: FlagValues;
  workers: number;
  minWorkers: number;
  maxWorkers: number;
  host: string;
  token: string;
  viewToken: string;
  config: WireConfig;
  reporter: Reporter;
  tls: TlsMaterial | undefined;
}

/** Loads the data, listens, waits for the workers, runs the job; closes the server whatever happens. */
async function serveJob({ values, workers, minWorkers, maxWorkers, host, token, viewToken, config, reporter, tls }: ServeOptions): Promise<number> {
  const cfg = jobConfigFromFlags(values);
  const data = loadDataset(cfg);
  const serveData = values['serve-data'] === true;
  const spec: DataSpec = {
    dataset: cfg.dataset,
    trainCount: data.train.count,
    fingerprint: splitFingerprint(data.train),
    testCount: data.test.count,
    testFingerprint: splitFingerprint(data.test),
    serveData,
    rows: data.train.rows,
    cols: data.train.cols,
    numClasses: data.numClasses,
  };
  if (cfg.dataDir !== undefined) spec.dataDir = path.resolve(cfg.dataDir);
  if (cfg.limitTrain !== undefined) spec.limitTrain = cfg.limitTrain;
  if (cfg.limitTest !== undefined) spec.limitTest = cfg.limitTest;
  const fingerprint = jobFingerprint(cfg, data, config, spec.fingerprint);
  const checkpointing = await checkpointingFromFlags(values, fingerprint, reporter);

  const plan = { seed: cfg.seed, batchSize: cfg.batchSize };
  // GET /metrics, /readyz and /events (the dashboard's) read the same events as the output (Reporter.subscribe).
  const metrics = new Metrics({ version: DDP_VERSION, workers });
  const events = new EventStream();
  const unsubscribe = reporter.subscribe((e) => {
    metrics.observe(e);
    events.observe(e);
  });
  const server = new CoordinatorServer({
    host,
    port: num(values, 'port'),
    token,
    maxWorkers,
    paramCount: SEED_CNN_PARAM_COUNT,
    data: spec,
    heartbeatTimeoutMs: numOf(values, 'heartbeat-timeout') * 1000,
    config,
    plan,
    // Workers that lose this coordinator rejoin only a job of this id and fingerprint (a restart with --resume keeps both).
    job: { id: checkpointing.jobId, fingerprint: fingerprintHash(fingerprint) },
    serveSplit: serveData ? data.train : undefined,
    http: { readiness: () => metrics.readiness(), metrics, events, viewToken },
    tls,
  });
  // The coordinator computes only to evaluate: its backend starts while the workers join.
  const backendReady = initBackend(backendFrom(values));
  backendReady.catch(() => {});
  let backendName = '';
  const onEvent = (e: DdpEvent) => {
    reporter.event(e);
    // json mode: stdout has the event; people reading stderr get the line too.
    if (reporter.format === 'json' && (e.event === 'stall' || e.event === 'straggler')) reporter.info(describeEvent(e)!);
    if (e.event === 'worker_joined' && e.backend && backendName && e.backend !== backendName) {
      reporter.info(`note: worker ${e.rank} computes on ${e.backend}, this coordinator on ${backendName}: expect more than rounding differences from a single-process run`);
    }
  };
  const pool = new WorkerPool(server, { onEvent, onInfo: (m: string) => reporter.info(m), minWorkers, stallWarnMs: numOf(values, 'stall-warning') * 1000 });
  const workerTimeoutMs = numOf(values, 'worker-timeout') * 1000;
  const stragglers = num(values, 'straggler-factor');
  const trainer: Trainer =
    config.allreduce === 'ring'
      ? new RingTrainer(pool, { workerTimeoutMs, plan, train: data.train, serveData, onEvent, stragglers, reduction: config.reduction })
      : new StarTrainer(pool, { workerTimeoutMs, plan, train: data.train, serveData, stragglers, reduction: config.reduction });
  const abort = new AbortController();
  const onSignal = () => {
    if (abort.signal.aborted) process.exit(130);
    reporter.info('interrupted: finishing the current step, then evaluating and saving (Ctrl-C again to quit now)');
    abort.abort();
  };
  process.on('SIGINT', onSignal);
  try {
    const port = await server.listen();
    const hostPort = `${host.includes(':') ? `[${host}]` : host}:${port}`;
    const url = `${tls ? 'wss' : 'ws'}://${hostPort}`;
    const web = `${tls ? 'https' : 'http'}://${hostPort}`;
    reporter.info(
      `coordinator: listening on ${url} (job ${server.job.id}${tls ? ', TLS' : ''}), waiting for ${workers} worker(s)${token ? ' (token required)' : ' (no token: any local process may join)'}; dashboard on ${web}/, metrics on ${web}/metrics`,
    );
    notifyListening(url);
    const backend = await backendReady;
    backendName = backend.name;
    reporter.info(`backend: ${backend.name} (${backend.reason})`);
    const joinTimeout = numOf(values, 'join-timeout');
    await pool.waitForWorkers(workers, joinTimeout * 1000, abort.signal).catch((err: Error) => {
      if (abort.signal.aborted) throw err;
      throw new RunError('DDP_JOIN_TIMEOUT', err.message);
    });
    // The done event's text says the test accuracy and the time per step by phase.
    await runJob(cfg, data, trainer, reporter, { backend: backend.name, signal: abort.signal, resume: checkpointing.resume, checkpoints: checkpointing.checkpoints });
    return abort.signal.aborted ? 130 : 0;
  } finally {
    process.off('SIGINT', onSignal);
    unsubscribe();
    events.close();
    await trainer.close();
  }
}
