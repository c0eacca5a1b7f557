import { BACKEND_CHOICES, DATASET_NAMES, LOG_FORMATS, TraceTimeline, WIRE_SETTINGS, type Reporter, WIRE_SETTING_NAMES, type BackendChoice, type DatasetName, type LogFormat, type WireConfig, type WireSettingName, wireConfig } from '@ddp/core';
import { DEFAULT_JOB, type JobConfig } from '@ddp/coordinator';
import { num, str, strOf, UsageError, type FlagSpec, type FlagValues } from './args.js';
import { CHECKPOINT_FLAGS } from './checkpointing.js';

/** The flags of the seed job, shared by `ddp train` and `ddp coordinator start`. */
export const TRAINING_FLAGS: readonly FlagSpec[] = [
  { name: 'epochs', type: 'int', min: 1, default: DEFAULT_JOB.epochs, help: 'passes over the training set' },
  { name: 'batch-size', type: 'int', min: 1, default: DEFAULT_JOB.batchSize, help: 'global batch size (split across workers)' },
  { name: 'lr', type: 'number', default: DEFAULT_JOB.lr, help: 'Adam learning rate' },
  { name: 'seed', type: 'int', min: 0, max: 0xffffffff, default: DEFAULT_JOB.seed, help: 'seed for the initial weights and the batch order' },
  { name: 'max-steps', type: 'int', min: 1, help: 'stop after N optimizer steps (then evaluate and save)' },
  { name: 'dataset', type: 'string', choices: DATASET_NAMES, default: DEFAULT_JOB.dataset, help: 'data set' },
  { name: 'data-dir', type: 'string', metavar: 'DIR', help: 'folder with the four IDX files (plain or .gz) instead of the default' },
  { name: 'limit-train', type: 'int', min: 1, help: 'use only the first N training samples' },
  { name: 'limit-test', type: 'int', min: 1, help: 'use only the first N test samples' },
  { name: 'out', type: 'string', metavar: 'DIR', help: 'save the model (model.json + weights.bin) here after each epoch and at the end' },
  { name: 'no-eval', type: 'bool', help: 'evaluate only at the end, not after every epoch' },
  ...CHECKPOINT_FLAGS,
  { name: 'timeline', type: 'string', metavar: 'FILE', help: 'write the run as a Chrome trace (Perfetto, chrome://tracing): a track per worker with each step\'s phases, and the coordinator\'s evaluations and checkpoints' },
];

export const BACKEND_FLAG: FlagSpec = {
  name: 'backend',
  type: 'string',
  choices: BACKEND_CHOICES,
  default: 'auto',
  help: 'compute backend: auto picks tensorflow (tfjs-node) if installed, else wasm, else cpu',
};

export const LOG_FORMAT_FLAG: FlagSpec = {
  name: 'log-format',
  type: 'string',
  choices: LOG_FORMATS,
  default: 'text',
  help: 'text (progress bar on a terminal) or json (one event per line on stdout)',
};

export function jobConfigFromFlags(v: FlagValues): JobConfig {
  const lr = num(v, 'lr') ?? DEFAULT_JOB.lr;
  if (!(lr > 0)) throw new UsageError(`--lr must be positive, got ${lr}`);
  return {
    dataset: (str(v, 'dataset') ?? DEFAULT_JOB.dataset) as DatasetName,
    dataDir: str(v, 'data-dir'),
    limitTrain: num(v, 'limit-train'),
    limitTest: num(v, 'limit-test'),
    epochs: num(v, 'epochs') ?? DEFAULT_JOB.epochs,
    batchSize: num(v, 'batch-size') ?? DEFAULT_JOB.batchSize,
    lr,
    seed: num(v, 'seed') ?? DEFAULT_JOB.seed,
    maxSteps: num(v, 'max-steps'),
    out: str(v, 'out'),
    evalEveryEpoch: v['no-eval'] !== true,
  };
}

/**
 * Wire settings whose default depends on another setting (core's wireConfig): their flag has no
 * default in the table, so that a value given (flag or DDP_* variable) can be told from one left out;
 * their help says what the default is.
 */
const DERIVED_DEFAULT: ReadonlySet<WireSettingName> = new Set(['reduction']);

/** The flags of the wire settings, one per entry of core's WIRE_SETTINGS (defaults and help come from there). */
export const WIRE_FLAGS: readonly FlagSpec[] = WIRE_SETTING_NAMES.map((name): FlagSpec => {
  const s = WIRE_SETTINGS[name];
  const dflt = DERIVED_DEFAULT.has(name) ? undefined : s.default;
  return 'choices' in s
    ? { name: s.flag, type: 'string', choices: s.choices, default: dflt, help: s.help }
    : { name: s.flag, type: 'int', min: s.min, max: s.max, default: dflt, help: s.help };
});

/**
 * The wire settings from parsed flags: the ones given, the others at their defaults (a reduction not
 * given is exact, or fast with --compress fp16: core's defaultReduction).
 */
export function wireConfigFromFlags(v: FlagValues): WireConfig {
  const given: Record<string, string | number> = {};
  for (const name of WIRE_SETTING_NAMES) {
    const s = WIRE_SETTINGS[name];
    const value = v[s.flag];
    if (value !== undefined) given[name] = 'choices' in s ? String(value) : Number(value);
  }
  return wireConfig(given as Partial<WireConfig>);
}

export const backendFrom = (v: FlagValues): BackendChoice => strOf(v, 'backend') as BackendChoice;
export const logFormatFrom = (v: FlagValues): LogFormat => strOf(v, 'log-format') as LogFormat;

/**
 * --timeline FILE: records the reporter's events as a trace (core's TraceTimeline); the returned
 * function writes the file (call it when the run ends, however it ends). A no-op without the flag.
 */
export function timelineFromFlags(v: FlagValues, reporter: Reporter): () => void {
  const file = str(v, 'timeline');
  if (!file) return () => {};
  const timeline = new TraceTimeline();
  const unsubscribe = reporter.subscribe((e) => timeline.event(e));
  return () => {
    unsubscribe();
    timeline.write(file);
  };
}
