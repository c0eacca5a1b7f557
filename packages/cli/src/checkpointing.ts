/**
 * --checkpoint-dir, --checkpoint-every, --keep-checkpoints and --resume, the same for `ddp train`
 * (one process) and `ddp coordinator start`: where checkpoints go, the job's fingerprint (what
 * changes the math), the checkpoint to resume from (refused when its fingerprint differs, naming
 * the fields), and the writer that the job loop hands each checkpoint's state to.
 */
import { randomBytes } from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import {
  CheckpointWriter,
  MICRO_SHARD,
  RunError,
  fingerprintDifferences,
  readLatestCheckpoint,
  splitFingerprint,
  type Dataset,
  type JobFingerprint,
  type Reporter,
  type WireConfig,
} from '@ddp/core';
import type { CheckpointSink, JobConfig, RunJobOptions } from '@ddp/coordinator';
import { num, str, UsageError, type FlagSpec, type FlagValues } from './args.js';

export const CHECKPOINT_FLAGS: readonly FlagSpec[] = [
  { name: 'checkpoint-dir', type: 'string', metavar: 'DIR', help: 'write crash-safe training checkpoints here (default: <out>/checkpoints when --out is given; none otherwise)' },
  { name: 'checkpoint-every', type: 'int', min: 1, metavar: 'N', help: 'a checkpoint every N steps, besides the one at each epoch\'s end and when a run stops early' },
  { name: 'keep-checkpoints', type: 'int', min: 1, default: 3, metavar: 'K', help: 'keep the newest K checkpoints, delete older ones' },
  { name: 'job-id', type: 'string', metavar: 'ID', help: 'name of the job: workers that lose the coordinator rejoin only a job of the same id (default: the resumed job\'s, else a new one)' },
  { name: 'resume', type: 'bool', help: 'continue from the newest complete checkpoint in the checkpoint folder (a run that never stopped ends with the same bits); starts from step 0 when there is none' },
];

/** The folder of checkpoints the flags name, or undefined for none. */
export function checkpointDirOf(v: FlagValues): string | undefined {
  const dir = str(v, 'checkpoint-dir');
  if (dir !== undefined) return dir;
  const out = str(v, 'out');
  return out === undefined ? undefined : path.join(out, 'checkpoints');
}

/** Everything that changes a run's math (checked on --resume). */
export function jobFingerprint(cfg: JobConfig, data: Dataset, wire: Pick<WireConfig, 'reduction' | 'compress'>, trainHash = splitFingerprint(data.train)): JobFingerprint {
  return {
    model: 'seed-cnn',
    dataset: cfg.dataset,
    trainHash,
    trainCount: data.train.count,
    batchSize: cfg.batchSize,
    lr: cfg.lr,
    seed: cfg.seed,
    // The exact reduction was float64 per-sample sums before micro-shards: a checkpoint of that one is
    // of another computation, so the name carries the micro-shard size.
    reduction: wire.reduction === 'exact' ? `exact-micro${MICRO_SHARD}` : wire.reduction,
    compress: wire.compress,
  };
}

export interface Checkpointing {
  /** For runJob: the checkpoint to resume from and where new ones go. */
  resume?: RunJobOptions['resume'];
  checkpoints?: RunJobOptions['checkpoints'];
  /** The job's id: --job-id, else the resumed job's, else a new one. Workers rejoin only a job of the same id. */
  jobId: string;
}

/** DIR/job.json: the job's id and fingerprint, written when a run starts, so that a coordinator
 * restarted with --resume before the first checkpoint keeps the id its workers know. */
const JOB_FILE = 'job.json';

function readJobFile(dir: string): { jobId: string; fingerprint: JobFingerprint } | null {
  try {
    const j = JSON.parse(fs.readFileSync(path.join(dir, JOB_FILE), 'utf8'));
    return typeof j?.jobId === 'string' && typeof j?.fingerprint === 'object' ? j : null;
  } catch {
    return null;
  }
}

function writeJobFile(dir: string, jobId: string, fingerprint: JobFingerprint): void {
  fs.mkdirSync(dir, { recursive: true });
  const file = path.join(dir, JOB_FILE);
  fs.writeFileSync(`${file}.tmp`, `${JSON.stringify({ jobId, fingerprint }, null, 2)}\n`);
  fs.renameSync(`${file}.tmp`, file);
}

/**
 * Reads the checkpoint flags; with --resume, loads the newest complete checkpoint (skipping, with a
 * warning naming it, any incomplete or corrupt one) and refuses one of another job (DDP_CHECKPOINT).
 */
export async function checkpointingFromFlags(v: FlagValues, fingerprint: JobFingerprint, reporter: Reporter): Promise<Checkpointing> {
  const dir = checkpointDirOf(v);
  const every = num(v, 'checkpoint-every');
  const given = str(v, 'job-id');
  if (given !== undefined && !/^[\x21-\x7e]{1,64}$/.test(given)) throw new UsageError(`--job-id expects 1 to 64 letters, digits or punctuation (no spaces), got '${given}'`);
  let jobId = given ?? randomBytes(8).toString('hex');
  if (dir === undefined) {
    if (v.resume === true) throw new UsageError('--resume needs the checkpoint folder: --checkpoint-dir DIR (or --out DIR, whose checkpoints/ it reads)');
    if (every !== undefined) throw new UsageError('--checkpoint-every needs --checkpoint-dir DIR (or --out DIR)');
    return { jobId };
  }
  let resume: Checkpointing['resume'];
  if (v.resume === true) {
    const job = readJobFile(dir);
    if (job && given === undefined && fingerprintDifferences(job.fingerprint, fingerprint).length === 0) jobId = job.jobId;
    const found = await readLatestCheckpoint(dir, { onSkip: (p, why) => reporter.info(`warning: skipping checkpoint ${p}: ${why}`) });
    if (!found) {
      reporter.info(`--resume: no complete checkpoint in ${dir}: starting from step 0`);
    } else {
      const diff = fingerprintDifferences(found.meta.fingerprint, fingerprint);
      if (diff.length > 0) throw new RunError('DDP_CHECKPOINT', `${found.path} is a checkpoint of another job: ${diff.join('; ')}`);
      const { worldHistory, epochLossSum, epochSamples } = found.meta;
      resume = { state: found.state, position: { worldHistory, epochLossSum, epochSamples }, path: found.path };
      if (given === undefined) jobId = found.meta.jobId;
    }
  }
  writeJobFile(dir, jobId, fingerprint);
  const writer = new CheckpointWriter(dir, {
    keep: num(v, 'keep-checkpoints') ?? 3,
    onWritten: (w) => reporter.event({ event: 'checkpoint', step: w.step, path: w.path, bytes: w.bytes, seconds: w.seconds }),
    onError: (err) => reporter.info(`warning: a checkpoint could not be written: ${err.message}`),
  });
  const id = jobId;
  const sink: CheckpointSink = {
    schedule: (state, p) =>
      writer.schedule(state, {
        jobId: id,
        fingerprint,
        steps: state.steps,
        epoch: p.epoch,
        stepInEpoch: p.stepInEpoch,
        seed: fingerprint.seed,
        worldHistory: p.worldHistory,
        epochLossSum: p.epochLossSum,
        epochSamples: p.epochSamples,
      }),
    flush: () => writer.flush(),
  };
  return { resume, checkpoints: { sink, every }, jobId: id };
}
