// After a write: keep the newest `keep` complete checkpoints, and remove what dead writers left
// behind. Best effort: a folder that cannot be removed costs disk space, not the checkpoint just
// written, so nothing here throws.
import * as fsp from 'node:fs/promises';
import * as path from 'node:path';
import { parseStepFolder, tmpFolderName, tmpFolderPid } from './layout.js';
import { readCheckpoint } from './read-checkpoint.js';

/** Removes old step folders beyond the newest `keep` complete ones (`written` counts as complete) and dead processes' .tmp-* folders. */
export async function tidyCheckpointDir(dir: string, keep: number, written: string): Promise<void> {
  let names: string[];
  try {
    names = await fsp.readdir(dir);
  } catch {
    return;
  }
  for (const name of names) {
    const pid = tmpFolderPid(name);
    if (pid !== null && !processAlive(pid)) await fsp.rm(path.join(dir, name), { recursive: true, force: true }).catch(() => {});
  }
  const steps = names
    .map((name) => ({ name, step: parseStepFolder(name) }))
    .filter((s): s is { name: string; step: number } => s.step !== null)
    .sort((a, b) => b.step - a.step);
  let complete = 0;
  for (const { name } of steps) {
    if (complete >= keep) {
      // Renamed aside first, so that a crash while deleting never leaves a half-deleted step folder.
      const aside = path.join(dir, tmpFolderName(`old-${name}`));
      if (await fsp.rename(path.join(dir, name), aside).then(() => true, () => false)) await removeAside(aside);
    } else if (name === written || (await isComplete(path.join(dir, name)))) {
      complete++;
    }
  }
}

/** Removes a folder that was renamed aside (its name is already out of readers' sight). */
export async function removeAside(aside: string): Promise<void> {
  await fsp.rm(aside, { recursive: true, force: true }).catch(() => {});
}

async function isComplete(folder: string): Promise<boolean> {
  return readCheckpoint(folder).then(() => true, () => false);
}

/** Whether a process of that pid exists (EPERM: it does, but belongs to another user). */
export function processAlive(pid: number): boolean {
  if (pid === process.pid) return true;
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}
