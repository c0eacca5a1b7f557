#!/usr/bin/env node
import { DDP_VERSION, DatasetError, IdxError, ModelFileError, ResultFileError, RunError, TlsConfigError } from '@ddp/core';
import { EXIT, EXIT_CODES_HELP } from './exit-codes.js';
import { UsageError } from './args.js';
import { runTrainCommand } from './commands/train.js';
import { runEvaluateCommand } from './commands/evaluate.js';
import { runPredictCommand } from './commands/predict.js';
import { runCoordinatorCommand } from './commands/coordinator.js';
import { runWorkerCommand } from './commands/worker.js';
import { runBenchCommand } from './commands/bench.js';
import { runReportCommand } from './commands/report.js';
import { runCertsCommand } from './commands/certs.js';
import { runDeployCommand } from './commands/deploy.js';

const HELP = `ddp: distributed data-parallel training for TensorFlow.js

Usage: ddp <command> [flags]        (ddp <command> --help for its flags)

Commands:
  train [--workers N]          train the seed CNN on MNIST: N local worker processes plus a
                               coordinator (default 2), or in this one process with --workers 0
  coordinator start --workers N
                               serve a training job to N workers that connect over WebSockets
  worker --connect ws://HOST:PORT
                               join a coordinator and compute gradients until it is done
  evaluate --model DIR         test loss and accuracy of a saved model
  predict --model DIR IMAGE... most probable classes of PNG images or an IDX images file
  bench step|memory|allreduce|scaling|simulate
                               benchmarks (see ddp bench --help)
  certs --out DIR --hosts H1,H2,...
                               make a job CA and a node certificate for TLS (wss://, ring peer links)
  report RUN.ndjson [--out DIR]
                               plot a run's --log-format json events: loss, test accuracy,
                               samples/s and the step breakdown, as SVG and PNG
  deploy k8s --workers N --image IMAGE
                               print Kubernetes manifests: a coordinator Job and Service, N workers
                               as an Indexed Job, checkpoints on a volume (see deploy/README.md)

Backends: tensorflow (@tensorflow/tfjs-node, optional) when installed, else wasm with ddp's own
training kernels, else cpu. --backend overrides; the choice is printed at start.

${EXIT_CODES_HELP}`;

type Command = (argv: string[]) => Promise<number>;
const COMMANDS: Record<string, Command> = {
  train: runTrainCommand,
  evaluate: runEvaluateCommand,
  predict: runPredictCommand,
  coordinator: runCoordinatorCommand,
  worker: runWorkerCommand,
  bench: runBenchCommand,
  report: runReportCommand,
  certs: runCertsCommand,
  deploy: runDeployCommand,
};

/** Errors a user can fix (a flag, a missing file, a bad data set) print one line and exit 2. */
function isUserError(err: unknown): boolean {
  return err instanceof UsageError || err instanceof IdxError || err instanceof DatasetError || err instanceof ModelFileError || err instanceof ResultFileError || err instanceof TlsConfigError;
}

async function main(argv: string[]): Promise<number> {
  const [name, ...rest] = argv;
  if (name === undefined || name === '--help' || name === '-h' || name === 'help') {
    console.log(HELP);
    return name === undefined ? 2 : 0;
  }
  if (name === '--version') {
    console.log(`ddp ${DDP_VERSION}`);
    return 0;
  }
  const command = COMMANDS[name];
  if (!command) throw new UsageError(`unknown command '${name}' (commands: ${Object.keys(COMMANDS).join(', ')}; see ddp --help)`);
  return command(rest);
}

main(process.argv.slice(2)).then(
  (code) => {
    process.exitCode = code;
  },
  (err: unknown) => {
    const message = err instanceof Error ? err.message : String(err);
    if (isUserError(err)) {
      console.error(`ddp: ${message}`);
      process.exitCode = EXIT.USAGE;
    } else if (err instanceof RunError) {
      console.error(`ddp: ${err.code}: ${message}`);
      process.exitCode = EXIT.FAILED;
    } else {
      // Anything else is a broken invariant: a bug in ddp, not a mistake of the user.
      console.error(`ddp: internal error (a bug in ddp; please report it with the command line): ${message}`);
      if (err instanceof Error && err.stack) console.error(err.stack);
      process.exitCode = EXIT.FAILED;
    }
  },
);
