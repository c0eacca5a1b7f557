import { DEFAULT_WIRE, initBackend, loadDataset, Reporter, WIRE_SETTINGS, wireConflict } from '@ddp/core';
import { LocalTrainer, runJob } from '@ddp/coordinator';
import { formatFlags, numOf, parseFlags, UsageError, withoutFlag, type FlagSpec } from '../args.js';
import { EXIT_CODES_HELP } from '../exit-codes.js';
import { BACKEND_FLAG, LOG_FORMAT_FLAG, TRAINING_FLAGS, backendFrom, jobConfigFromFlags, logFormatFrom, timelineFromFlags, wireConfigFromFlags } from '../training-flags.js';
import { runLocalCluster } from '../launch/index.js';
import { CLUSTER_FLAGS } from './coordinator.js';

const FLAGS: readonly FlagSpec[] = [
  { name: 'workers', type: 'int', min: 0, default: 2, help: 'worker processes to start on this machine; 0 trains in this one process' },
  ...TRAINING_FLAGS,
  ...CLUSTER_FLAGS,
  BACKEND_FLAG,
  LOG_FORMAT_FLAG,
];

export const TRAIN_HELP = `Usage: ddp train [--workers N] [flags]

Trains the seed CNN (Conv32-Pool-Conv64-Pool-Conv64-Dense64-Dense10, Adam, sparse categorical
cross-entropy) on MNIST. With --workers N >= 1 it starts a coordinator and N worker processes on this
machine (data-parallel; --allreduce ring, the default, or star) and returns the coordinator's exit code;
with --workers 0 it trains in this process. Same seed and batch size give the same model either way, up to
float rounding (bit for bit with --reduction exact --allreduce star).

Flags:
${formatFlags(FLAGS)}

${EXIT_CODES_HELP}

Examples:
  ddp train --workers 0 --epochs 1            one process, one epoch
  ddp train --workers 2 --out runs/mnist      two local workers, save the model
  ddp train --workers 2 --allreduce star     the coordinator adds the gradients and applies Adam
  ddp train --workers 2 --compress fp16       gradients travel as float16
  ddp train --max-steps 50 --log-format json  NDJSON events on stdout`;

export async function runTrainCommand(argv: string[]): Promise<number> {
  const { values, help } = parseFlags(argv, FLAGS, { positionals: 0 });
  if (help) {
    console.log(TRAIN_HELP);
    return 0;
  }
  const cfg = jobConfigFromFlags(values);
  const workers = numOf(values, 'workers');
  const logFormat = logFormatFrom(values);
  const config = wireConfigFromFlags(values);
  const conflict = wireConflict(config);
  if (conflict) throw new UsageError(conflict);
  if (workers === 0) {
    // Flags about sending and reducing between processes mean nothing in one process.
    if (config.compress !== DEFAULT_WIRE.compress) throw new UsageError(`--${WIRE_SETTINGS.compress.flag} needs --workers N with N >= 1 (one process has nothing to send)`);
    if (values['serve-data'] === true) throw new UsageError('--serve-data needs --workers N with N >= 1 (one process has nothing to send)');
  }
  if (workers > 0) return runLocalCluster({ workers, passThroughArgs: withoutFlag(argv, 'workers'), logFormat });

  const reporter = new Reporter(logFormat);
  const writeTimeline = timelineFromFlags(values, reporter);
  const data = loadDataset(cfg);
  const backend = await initBackend(backendFrom(values));
  reporter.info(`backend: ${backend.name} (${backend.reason})`);
  const abort = new AbortController();
  const onSigint = () => {
    if (abort.signal.aborted) process.exit(130);
    reporter.info('interrupted: finishing the current step, then evaluating and saving (Ctrl-C again to quit now)');
    abort.abort();
  };
  process.on('SIGINT', onSigint);
  try {
    const trainer = new LocalTrainer(data.train, { seed: cfg.seed, batchSize: cfg.batchSize }, config.reduction);
    await runJob(cfg, data, trainer, reporter, { backend: backend.name, signal: abort.signal });
    return abort.signal.aborted ? 130 : 0;
  } finally {
    process.off('SIGINT', onSigint);
    writeTimeline();
  }
}
