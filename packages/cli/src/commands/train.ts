import { initBackend, loadDataset, Reporter } from '@ddp/core';
import { LocalExecutor, runJob } from '@ddp/coordinator';
import { formatFlags, num, parseFlags, UsageError, type FlagSpec } from '../args.js';
import { BACKEND_FLAG, LOG_FORMAT_FLAG, TRAINING_FLAGS, backendFrom, jobConfigFromFlags, logFormatFrom } from '../training-flags.js';
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
machine (data-parallel; --allreduce star or ring) and returns the coordinator's exit code; with --workers 0 it
trains in this process. Same seed and batch size give the same model either way, up to float rounding.

Flags:
${formatFlags(FLAGS)}

Examples:
  ddp train --workers 0 --epochs 1            one process, one epoch
  ddp train --workers 2 --out runs/mnist      two local workers, save the model
  ddp train --workers 2 --allreduce ring --compress fp16
                                              workers reduce among themselves, gradients as float16
  ddp train --max-steps 50 --log-format json  NDJSON events on stdout`;

/** Training flags to hand on to `ddp coordinator start` (everything but --workers, which it gets itself). */
function passThrough(argv: readonly string[]): string[] {
  const out: string[] = [];
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (a === '--workers') {
      i++;
      continue;
    }
    if (a.startsWith('--workers=')) continue;
    out.push(a);
  }
  return out;
}

export async function runTrainCommand(argv: string[]): Promise<number> {
  const { values, help } = parseFlags(argv, FLAGS, { positionals: 0 });
  if (help) {
    console.log(TRAIN_HELP);
    return 0;
  }
  const cfg = jobConfigFromFlags(values);
  const workers = num(values, 'workers') ?? 2;
  const logFormat = logFormatFrom(values);
  if (workers === 0) {
    for (const [flag, alone] of [['allreduce', 'star'], ['compress', 'none'], ['serve-data', undefined]] as const) {
      if (values[flag] !== undefined && values[flag] !== alone && values[flag] !== false) throw new UsageError(`--${flag} needs --workers N with N >= 1 (one process has nothing to reduce or send)`);
    }
  }
  if (workers > 0) return runLocalCluster({ workers, passThroughArgs: passThrough(argv), logFormat });

  const reporter = new Reporter(logFormat);
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
    const result = await runJob(cfg, data, new LocalExecutor(data.train, cfg.reduction), reporter, { backend: backend.name, signal: abort.signal });
    if (logFormat === 'text') console.log(`test accuracy: ${(result.test.accuracy * 100).toFixed(2)}%`);
    return abort.signal.aborted ? 130 : 0;
  } finally {
    process.off('SIGINT', onSigint);
  }
}
