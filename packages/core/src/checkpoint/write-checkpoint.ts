// Writing one checkpoint, crash-safe:
//   1. every file goes into a private .tmp-* folder inside DIR, each fsynced, manifest.json last;
//   2. the folder is fsynced and renamed to step-NNNNNNNNN (an old one of that step is renamed
//      aside first), then DIR is fsynced;
//   3. housekeeping: older checkpoints beyond `keep` and dead processes' .tmp-* folders go.
// A reader therefore sees a step folder whole or not at all.
import * as fsp from 'node:fs/promises';
import * as path from 'node:path';
import { performance } from 'node:perf_hooks';
import { metaProblem, type CheckpointMeta } from './checkpoint-meta.js';
import { CheckpointWriteError } from './checkpoint-error.js';
import { assertLittleEndian, float32Bytes, fsyncDir, writeFileDurable, type WrittenFile } from './durable-io.js';
import { removeAside, tidyCheckpointDir } from './housekeeping.js';
import { DATA_FILES, MANIFEST_JSON, MODEL_JSON, OPTIMIZER_BIN, STATE_JSON, WEIGHTS_BIN, stepFolderName, tmpFolderName } from './layout.js';
import { makeManifest } from './manifest.js';
import { seedCnnModelJson } from './model-json.js';
import { encodeStateJson } from './state-json.js';
import { assertTrainingState, type TrainingState } from './training-state.js';

export interface CheckpointWritten {
  path: string;
  step: number;
  bytes: number;
  seconds: number;
}

export const DEFAULT_CHECKPOINT_KEEP = 3;

/** Throws RangeError (before touching any file) when the arguments are not a checkpoint: a caller's bug. */
export function assertCheckpointArgs(state: TrainingState, meta: CheckpointMeta, keep: number): void {
  assertTrainingState(state);
  const problem = metaProblem(meta);
  if (problem) throw new RangeError(`checkpoint meta: ${problem}`);
  if (meta.steps !== state.steps) throw new RangeError(`checkpoint: meta.steps is ${meta.steps}, state.steps is ${state.steps}`);
  if (!Number.isSafeInteger(keep) || keep < 1) throw new RangeError(`checkpoint: keep must be a positive integer, got ${keep}`);
}

/**
 * Writes DIR/step-NNNNNNNNN/ (model.json, weights.bin, optimizer.bin, state.json, manifest.json) and
 * keeps the newest `keep` (default 3) complete checkpoints. A failure throws CheckpointWriteError
 * naming the path and leaves no folder of that name half-written. Needs a tfjs backend on the first
 * call of a process (see seedCnnModelJson).
 */
export async function writeCheckpoint(dir: string, state: TrainingState, meta: CheckpointMeta, opts: { keep?: number } = {}): Promise<CheckpointWritten> {
  const keep = opts.keep ?? DEFAULT_CHECKPOINT_KEEP;
  assertCheckpointArgs(state, meta, keep);
  const start = performance.now();
  const name = stepFolderName(state.steps);
  const final = path.join(dir, name);
  const tmp = path.join(dir, tmpFolderName(name));
  let bytes = 0;
  try {
    assertLittleEndian();
    const modelJson = await seedCnnModelJson();
    await fsp.mkdir(dir, { recursive: true });
    await fsp.mkdir(tmp);
    const contents: Record<(typeof DATA_FILES)[number], Uint8Array[]> = {
      [WEIGHTS_BIN]: [float32Bytes(state.params)],
      [OPTIMIZER_BIN]: [float32Bytes(state.adamM), float32Bytes(state.adamV)],
      [MODEL_JSON]: [Buffer.from(modelJson)],
      [STATE_JSON]: [Buffer.from(encodeStateJson(meta))],
    };
    const files: Record<string, WrittenFile> = {};
    for (const f of DATA_FILES) {
      files[f] = await writeFileDurable(path.join(tmp, f), contents[f]);
      bytes += files[f].bytes;
    }
    bytes += (await writeFileDurable(path.join(tmp, MANIFEST_JSON), [Buffer.from(JSON.stringify(makeManifest(state.steps, files), null, 1))])).bytes;
    await fsyncDir(tmp);
    await publish(dir, tmp, final);
  } catch (err) {
    await fsp.rm(tmp, { recursive: true, force: true }).catch(() => {});
    throw new CheckpointWriteError(final, err);
  }
  await tidyCheckpointDir(dir, keep, name);
  return { path: final, step: state.steps, bytes, seconds: (performance.now() - start) / 1000 };
}

/** Renames the finished tmp folder to its final name; a checkpoint of the same step (a resumed run writing it again) is moved aside first. */
async function publish(dir: string, tmp: string, final: string): Promise<void> {
  try {
    await fsp.rename(tmp, final);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code !== 'ENOTEMPTY' && code !== 'EEXIST') throw err;
    // Between these two renames neither version is under the name: a reader then takes the
    // previous step, never a mixture. The aside folder is a .tmp-* one, so a crash leaves it to
    // the next writer's cleanup.
    const aside = path.join(dir, tmpFolderName(`old-${path.basename(final)}`));
    await fsp.rename(final, aside);
    try {
      await fsp.rename(tmp, final);
    } catch (again) {
      await fsp.rename(aside, final).catch(() => {}); // the old one back under its name, rather than lost to cleanup
      throw again;
    }
    await fsyncDir(dir);
    await removeAside(aside);
    return;
  }
  await fsyncDir(dir);
}
