import { formatFlags, num, parseFlags, str, UsageError, type FlagSpec } from '../args.js';
import { BACKEND_FLAG, backendFrom } from '../training-flags.js';
import { initBackend } from '@ddp/core';

const STEP_FLAGS: readonly FlagSpec[] = [
  { name: 'batch-size', type: 'int', min: 1, default: 64, help: 'samples per training step' },
  { name: 'warmup', type: 'int', min: 0, default: 3, help: 'steps run before timing starts' },
  { name: 'steps', type: 'int', min: 1, default: 15, help: 'timed steps per kernel set (the median is reported)' },
  { name: 'out', type: 'string', metavar: 'FILE', help: 'JSON result file (default bench/results/step-<time>.json)' },
  BACKEND_FLAG,
];

export const BENCH_HELP = `Usage: ddp bench <benchmark> [flags]

Benchmarks (each prints medians and writes JSON under bench/results/):
  step        one training step of the seed CNN on wasm: stock kernels vs ddp's, side by side,
              with per-kernel times

ddp bench <benchmark> --help lists its flags.`;

export async function runBenchCommand(argv: string[]): Promise<number> {
  const [which, ...rest] = argv;
  if (which === undefined || which === '--help' || which === '-h') {
    console.log(BENCH_HELP);
    return which === undefined ? 2 : 0;
  }
  switch (which) {
    case 'step': {
      const { values, help } = parseFlags(rest, STEP_FLAGS, { positionals: 0 });
      if (help) {
        console.log(`Usage: ddp bench step [flags]\n\nFlags:\n${formatFlags(STEP_FLAGS)}`);
        return 0;
      }
      const core = await import('@ddp/core');
      await initBackend(backendFrom(values));
      await core.runStepBench({
        batchSize: num(values, 'batch-size'),
        warmup: num(values, 'warmup'),
        steps: num(values, 'steps'),
        out: str(values, 'out'),
        log: (line: string) => console.log(line),
      });
      return 0;
    }
    default:
      throw new UsageError(`unknown benchmark '${which}' (see ddp bench --help)`);
  }
}
