/**
 * The link between `ddp train --workers N` and the processes it starts: an IPC channel (spawn's
 * 'ipc' stdio). Through it the coordinator says where it listens, and when the channel drops (the
 * launcher died, even by SIGKILL) each child stops instead of living on as an orphan.
 */

export interface ListeningNotice {
  type: 'listening';
  url: string;
}

/** Tells the launcher, if there is one, the coordinator's URL. */
export function notifyListening(url: string): void {
  if (process.send && process.connected) process.send({ type: 'listening', url } satisfies ListeningNotice);
}

export function isListeningNotice(m: unknown): m is ListeningNotice {
  return typeof m === 'object' && m !== null && (m as ListeningNotice).type === 'listening' && typeof (m as ListeningNotice).url === 'string';
}

/**
 * While the returned function has not been called, the loss of the launcher ends this process
 * (exit code 1). Call it when the command is done: it lets go of the channel so the process can exit.
 */
export function exitWithLauncher(what: string): () => void {
  if (!process.send || !process.connected) return () => {};
  const onGone = () => {
    process.stderr.write(`ddp ${what}: the launching \`ddp train\` process is gone; stopping\n`);
    process.exit(1);
  };
  process.on('disconnect', onGone);
  return () => {
    process.off('disconnect', onGone);
    if (process.connected) process.disconnect();
  };
}
