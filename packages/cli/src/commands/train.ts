import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { DEFAULT_WIRE, initBackend, newToken, loadDataset, Reporter, WIRE_SETTINGS, wireConflict } from '@ddp/core';
import { LocalTrainer, runJob } from '@ddp/coordinator';
import { formatFlags, numOf, parseFlags, UsageError, withoutFlag, type FlagSpec } from '../args.js';
import { EXIT_CODES_HELP } from '../exit-codes.js';
import { BACKEND_FLAG, LOG_FORMAT_FLAG, TRAINING_FLAGS, backendFrom, jobConfigFromFlags, logFormatFrom, timelineFromFlags, wireConfigFromFlags } from '../training-flags.js';
import { runLocalCluster } from '../launch/index.js';
import { reportFailure } from '../report-failure.js';
import { checkpointDirOf, checkpointingFromFlags, jobFingerprint } from '../checkpointing.js';
import { CLUSTER_FLAGS } from './coordinator.js';

const FLAGS: readonly FlagSpec[] = [
  { name: 'workers', type: 'int', min: 0, default: 2, help: 'worker processes to start on this machine; 0 trains in this one process' },
  { name: 'max-restarts', type: 'int', min: 0, default: 3, help: 'restart a coordinator that crashed or was killed, with --resume, up to this many times (the workers rejoin it)' },
  ...TRAINING_FLAGS,
  ...CLUSTER_FLAGS,
  BACKEND_FLAG,
  LOG_FORMAT_FLAG,
];

export const TRAIN_HELP = `Usage: ddp train [--workers N] [flags]

Trains the seed CNN (Conv32-Pool-Conv64-Pool-Conv64-Dense64-Dense10, Adam, sparse categorical
cross-entropy) on MNIST. With --workers N >= 1 it starts a coordinator and N worker processes on this
machine (data-parallel; --allreduce ring, the default, or star) and returns the coordinator's exit code;
a coordinator that crashes or is killed is restarted with --resume (up to --max-restarts times; its
checkpoints go to --checkpoint-dir, <out>/checkpoints, or a scratch folder removed at the end), and the
workers rejoin it;
with --workers 0 it trains in this process.

What is guaranteed: by default (--reduction exact) the same seed and batch size give the same model bit
for bit, weights and losses, as \`ddp train --workers 0\`, whatever the number of workers, star or ring,
with workers lost or joining, as long as every process uses the same backend. --reduction fast and
--compress fp16 (which selects fast when --reduction is not given; fp16 with an explicit --reduction exact
is a usage error) trade that for float32 sums: the same model only up to float rounding, the bits
depending on how the batch is split.

Flags:
${formatFlags(FLAGS)}

${EXIT_CODES_HELP}

Examples:
  ddp train --workers 0 --epochs 1            one process, one epoch
  ddp train --workers 2 --out runs/mnist      two local workers, save the model
  ddp train --workers 2 --allreduce star     the coordinator adds the gradients and applies Adam
  ddp train --workers 2 --reduction fast      float32 sums (bits depend on the split)
  ddp train --workers 2 --compress fp16       gradients travel as float16 (selects --reduction fast)
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
  if (workers > 0) {
    // A restarted coordinator resumes from its checkpoints and keeps the job's id (its workers
    // rejoin only that job): both are fixed here when the flags leave them open.
    const extra = values['job-id'] === undefined ? ['--job-id', newToken().slice(0, 12)] : [];
    let scratch: string | null = null;
    if (checkpointDirOf(values) === undefined) {
      if (values.resume === true) throw new UsageError('--resume needs the checkpoint folder: --checkpoint-dir DIR (or --out DIR, whose checkpoints/ it reads)');
      scratch = fs.mkdtempSync(path.join(os.tmpdir(), 'ddp-train-'));
      extra.push('--checkpoint-dir', scratch);
    }
    try {
      const passThroughArgs = [...withoutFlag(withoutFlag(argv, 'workers'), 'max-restarts'), ...extra];
      return await runLocalCluster({ workers, passThroughArgs, logFormat, maxRestarts: numOf(values, 'max-restarts') });
    } finally {
      if (scratch) fs.rmSync(scratch, { recursive: true, force: true });
    }
  }

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
    const checkpointing = await checkpointingFromFlags(values, jobFingerprint(cfg, data, config), reporter);
    const trainer = new LocalTrainer(data.train, { seed: cfg.seed, batchSize: cfg.batchSize }, config.reduction);
    await runJob(cfg, data, trainer, reporter, { backend: backend.name, signal: abort.signal, resume: checkpointing.resume, checkpoints: checkpointing.checkpoints });
    return abort.signal.aborted ? 130 : 0;
  } catch (err) {
    reportFailure(reporter, err);
    throw err;
  } finally {
    process.off('SIGINT', onSigint);
    writeTimeline();
  }
}
