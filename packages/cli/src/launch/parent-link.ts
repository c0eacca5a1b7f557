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
 * Workers that `ddp train` starts before its coordinator listens (so that they load and initialise
 * meanwhile) get this variable set, and learn the coordinator's URL over the channel.
 */
export const CONNECT_FROM_LAUNCHER_ENV = 'DDP_CONNECT_FROM_LAUNCHER';

export interface ConnectNotice {
  type: 'connect';
  url: string;
}

/** A worker tells the launcher the rank it got, so that its output is labelled by rank. */
export interface RankNotice {
  type: 'rank';
  rank: number;
}

export function notifyRank(rank: number): void {
  if (process.send && process.connected) process.send({ type: 'rank', rank } satisfies RankNotice);
}

export function isRankNotice(m: unknown): m is RankNotice {
  return typeof m === 'object' && m !== null && (m as RankNotice).type === 'rank' && Number.isInteger((m as RankNotice).rank);
}

/** Sends a started worker its coordinator's URL. */
export function connectNotice(url: string): ConnectNotice {
  return { type: 'connect', url };
}

/**
 * In a worker started by `ddp train`: the coordinator's URL. `first` resolves with the first connect
 * notice; `latest()` is the newest one, so that a worker reconnecting after losing its coordinator
 * goes where the launcher restarted it (the launcher may send further notices at any time).
 */
export interface LauncherUrl {
  first: Promise<string>;
  latest(): string;
}

export function urlFromLauncher(): LauncherUrl | null {
  if (process.env[CONNECT_FROM_LAUNCHER_ENV] !== '1' || !process.send || !process.connected) return null;
  let latest = '';
  const first = new Promise<string>((resolve) => {
    // Stays for the process's life (exitWithLauncher's release lets go of the channel).
    process.on('message', (m: unknown) => {
      const c = m as ConnectNotice;
      if (typeof c === 'object' && c !== null && c.type === 'connect' && typeof c.url === 'string') {
        latest = c.url;
        resolve(c.url);
      }
    });
  });
  return { first, latest: () => latest };
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
