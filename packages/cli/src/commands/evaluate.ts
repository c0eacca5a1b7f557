import * as path from 'node:path';
import { evaluateSplit, initBackend, loadDataset, loadSeedCnnParams, Reporter, DATASET_NAMES, type DatasetName } from '@ddp/core';
import { formatFlags, num, parseOrHelp, str, UsageError, type FlagSpec } from '../args.js';
import { BACKEND_FLAG, LOG_FORMAT_FLAG, backendFrom, logFormatFrom } from '../training-flags.js';

const FLAGS: readonly FlagSpec[] = [
  { name: 'model', type: 'string', metavar: 'DIR', help: 'folder with model.json + weights.bin (as written by --out)' },
  { name: 'dataset', type: 'string', choices: DATASET_NAMES, default: 'mnist', help: 'data set whose test split to use' },
  { name: 'data-dir', type: 'string', metavar: 'DIR', help: 'folder with the four IDX files instead of the default' },
  { name: 'limit-test', type: 'int', min: 1, help: 'use only the first N test samples' },
  BACKEND_FLAG,
  LOG_FORMAT_FLAG,
];

export const EVALUATE_HELP = `Usage: ddp evaluate --model DIR [flags]

Prints the test loss and accuracy of a saved seed CNN on a data set's test split. The test images get
the same preprocessing as in training (28x28x1, pixels / 255).

Flags:
${formatFlags(FLAGS)}`;

export async function runEvaluateCommand(argv: string[]): Promise<number> {
  const values = parseOrHelp(argv, FLAGS, EVALUATE_HELP);
  if (!values) return 0;
  const modelDir = str(values, 'model');
  if (!modelDir) throw new UsageError('--model DIR is required (a folder with model.json and weights.bin)');
  const reporter = new Reporter(logFormatFrom(values));
  const dataset = str(values, 'dataset') as DatasetName;
  const data = loadDataset({ dataset, dataDir: str(values, 'data-dir'), limitTest: num(values, 'limit-test'), limitTrain: 1 });
  const backend = await initBackend(backendFrom(values));
  reporter.info(`backend: ${backend.name} (${backend.reason})`);
  const params = await loadSeedCnnParams(modelDir);
  const r = evaluateSplit(params, data.test, { onBatch: (d, t) => reporter.progress(d, t, 'evaluating') });
  reporter.endProgress();
  reporter.event({
    event: 'evaluate',
    model: path.resolve(modelDir),
    dataset: data.name,
    samples: r.samples,
    testLoss: r.loss,
    testAccuracy: r.accuracy,
  });
  return 0;
}
