/**
 * `ddp train --workers N`: a coordinator and N workers as child processes of this one, their output
 * labelled and forwarded, the coordinator's exit code returned. No child outlives this process:
 * they are killed when the coordinator ends, on an error, on SIGINT/SIGTERM, and (through the IPC
 * channel, see parent-link.ts) even when this process is killed outright.
 *
 * Output: the coordinator always speaks NDJSON to this process. In json mode its stdout is forwarded
 * as it is, so that stdout stays pure NDJSON; everything else goes to stderr. In text mode this process
 * reads the events and renders them itself: a line per event, labelled [coordinator], and the live
 * progress line (redrawn on a terminal, a plain line every few seconds on a pipe), so that `npm start`
 * shows progress from the first step. Worker lines are labelled by rank ([rank K]) once the worker
 * says which rank it got ([worker K], by launch order, before that).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import type { Writable } from 'node:stream';
import { fileURLToPath } from 'node:url';
import { createInterface } from 'node:readline';
import { TOKEN_ENV, VIEW_TOKEN_ENV, newToken, Reporter, type DdpEvent } from '@ddp/core';
import { envName, withoutFlag } from '../args.js';
import { forwardLines } from './line-prefixer.js';
import { CONNECT_FROM_LAUNCHER_ENV, connectNotice, isListeningNotice, isRankNotice } from './parent-link.js';

export interface LocalClusterOptions {
  workers: number;
  /** The training flags for `ddp coordinator start` (everything `ddp train` got except --workers). */
  passThroughArgs: string[];
  logFormat: 'text' | 'json';
  /** Restart a coordinator that ended abnormally (killed, crashed) with --resume, up to this many times. */
  maxRestarts?: number;
}

/** The built CLI entry point (this file is dist/launch/local-cluster.js). */
const MAIN_JS = fileURLToPath(new URL('../main.js', import.meta.url));

/** How long workers get to leave on their own after the coordinator has exited. */
const WORKER_EXIT_GRACE_MS = 3000;
/** How long a child gets between SIGTERM and SIGKILL. */
const KILL_GRACE_MS = 2000;

/** The value of `--name X` or `--name=X` in argv, if given. */
function flagValue(argv: readonly string[], name: string): string | undefined {
  for (let i = 0; i < argv.length; i++) {
    if (argv[i] === `--${name}`) return argv[i + 1];
    if (argv[i].startsWith(`--${name}=`)) return argv[i].slice(name.length + 3);
  }
  return undefined;
}

interface Child {
  label: string;
  /** How its lines are labelled (a worker's changes to its rank once it knows it). */
  tag: { text: string };
  proc: ChildProcess;
  exited: Promise<number>;
  /** Both output streams drained. */
  drained: Promise<void>;
}

const SIGNAL_CODES: Partial<Record<NodeJS.Signals, number>> = { SIGINT: 130, SIGTERM: 143, SIGKILL: 137 };

/** Where a child's stdout goes: forwarded line by line (labelled or not), or handed to `events` as NDJSON. */
type StdoutSink = { to: Writable; prefix: boolean } | { events: (e: DdpEvent) => void; other: Writable };

function start(label: string, args: string[], env: NodeJS.ProcessEnv, stdout: StdoutSink, err: Writable): Child {
  const proc = spawn(process.execPath, [MAIN_JS, ...args], { env, stdio: ['ignore', 'pipe', 'pipe', 'ipc'] });
  const tag = { text: `[${label}] ` };
  const label_ = () => tag.text;
  const drained = Promise.all([
    'events' in stdout ? readEvents(proc.stdout!, stdout.events, stdout.other, label_) : forwardLines(proc.stdout!, stdout.to, stdout.prefix ? label_ : ''),
    forwardLines(proc.stderr!, err, label_),
  ]).then(() => undefined);
  const exited = new Promise<number>((resolve) => {
    proc.once('error', (e) => {
      err.write(`${tag}could not start: ${e.message}\n`);
      resolve(1);
    });
    proc.once('exit', (code, signal) => resolve(code ?? (signal ? (SIGNAL_CODES[signal] ?? 1) : 1)));
  });
  return { label, tag, proc, exited, drained };
}

/** Reads a child's NDJSON events; a line that is not an event is forwarded, labelled. */
function readEvents(from: NodeJS.ReadableStream, onEvent: (e: DdpEvent) => void, other: Writable, label: () => string): Promise<void> {
  return new Promise((resolve) => {
    const lines = createInterface({ input: from, crlfDelay: Infinity });
    lines.on('line', (line) => {
      let e: unknown;
      try {
        e = JSON.parse(line);
      } catch {
        e = null;
      }
      if (e && typeof e === 'object' && typeof (e as DdpEvent).event === 'string') onEvent(e as DdpEvent);
      else if (line.trim() !== '') other.write(`${label()}${line}\n`);
    });
    lines.on('close', () => resolve());
  });
}

const alive = (c: Child) => c.proc.exitCode === null && c.proc.signalCode === null;

/** SIGTERM, then SIGKILL after a grace period; resolves when the child is gone. */
async function stop(c: Child): Promise<void> {
  if (!alive(c)) return;
  c.proc.kill('SIGTERM');
  const timer = setTimeout(() => alive(c) && c.proc.kill('SIGKILL'), KILL_GRACE_MS);
  await c.exited;
  clearTimeout(timer);
}

export async function runLocalCluster(opts: LocalClusterOptions): Promise<number> {
  if (!Number.isInteger(opts.workers) || opts.workers < 1) throw new RangeError(`runLocalCluster: workers must be an integer >= 1, got ${opts.workers}`);
  const json = opts.logFormat === 'json';
  // One token per run, handed over in the environment (not argv, which `ps` shows to everyone).
  const env = { ...process.env, [TOKEN_ENV]: newToken() };
  // The dashboard gets its own read-only token, printed once: it shows the run but cannot join it.
  const viewToken = newToken();
  const coordinatorEnv = { ...env, [VIEW_TOKEN_ENV]: viewToken };
  const backend = flagValue(opts.passThroughArgs, 'backend');
  const children: Child[] = [];

  const killAllNow = () => {
    for (const c of children) if (alive(c)) c.proc.kill('SIGKILL');
  };
  let interrupted: NodeJS.Signals | null = null;
  let onInterrupt: (() => void) | null = null;
  const interruptedP = new Promise<NodeJS.Signals>((resolve) => {
    const handler = (sig: NodeJS.Signals) => {
      if (interrupted) return;
      interrupted = sig;
      resolve(sig);
    };
    const onInt = () => handler('SIGINT');
    const onTerm = () => handler('SIGTERM');
    process.on('SIGINT', onInt);
    process.on('SIGTERM', onTerm);
    onInterrupt = () => {
      process.off('SIGINT', onInt);
      process.off('SIGTERM', onTerm);
    };
  });
  process.on('exit', killAllNow);

  try {
    // The coordinator speaks NDJSON to us; in text mode we render its events (and the live line).
    const reporter = json ? null : new Reporter('text', process.stdout, process.stderr, '[coordinator] ');
    // The coordinator's events: rendered (text) or passed on as they are (json); a `done` or `error`
    // event means it ended on purpose, whatever its exit code.
    let finalEvent = false;
    const emit = (e: DdpEvent) => {
      if (e.event === 'done' || e.event === 'error') finalEvent = true;
      if (reporter) reporter.event(e);
      else process.stdout.write(`${JSON.stringify(e)}\n`);
    };
    const sink: StdoutSink = { events: emit, other: json ? process.stderr : process.stdout };
    const coordinatorArgs = (port: number, resume: boolean) => [
      'coordinator', 'start', '--workers', String(opts.workers), '--port', String(port),
      ...withoutFlag(opts.passThroughArgs, 'log-format'), '--log-format', 'json',
      ...(resume && !opts.passThroughArgs.includes('--resume') ? ['--resume'] : []),
    ];
    let coordinator = start('coordinator', coordinatorArgs(0, false), coordinatorEnv, sink, process.stderr);
    children.push(coordinator);
    // The workers start at once, so that they load and initialise while the coordinator does; they
    // learn its URL over IPC when it has bound its port (--port 0: a free one).
    const workerArgs = ['worker', '--log-format', opts.logFormat, ...(backend ? ['--backend', backend] : [])];
    // DDP_CONNECT (meant for a `ddp worker` of another coordinator) must not outrank the launcher's address.
    const workerEnv: NodeJS.ProcessEnv = { ...env, [CONNECT_FROM_LAUNCHER_ENV]: '1' };
    delete workerEnv[envName('connect')];
    for (let k = 1; k <= opts.workers; k++) {
      const w = start(`worker ${k}`, workerArgs, workerEnv, { to: json ? process.stderr : process.stdout, prefix: true }, process.stderr);
      w.proc.on('message', (m) => {
        if (isRankNotice(m)) w.tag.text = `[rank ${m.rank}] `;
      });
      children.push(w);
    }
    let url: string | null = null;
    const announce = (c: Child) =>
      new Promise<void>((resolve) => {
        c.proc.on('message', (m) => {
          if (!isListeningNotice(m)) return;
          if (url === null) process.stderr.write(`dashboard: ${m.url.replace(/^ws:/, 'http:')}/?token=${viewToken}\n`);
          url = m.url;
          for (const w of children.slice(1)) if (alive(w) && w.proc.connected) w.proc.send(connectNotice(m.url));
          resolve();
        });
        void c.exited.then(() => resolve());
      });
    void announce(coordinator);

    // Supervision: a coordinator that ends abnormally (killed, crashed: no `done` or `error` event) is
    // restarted with --resume on the same port; the workers outlive it and rejoin (ddp worker
    // --reconnect-timeout). A run that failed on purpose (an `error` event) is not retried.
    const maxRestarts = opts.maxRestarts ?? 0;
    let first: { code: number } | { sig: NodeJS.Signals };
    for (let restarts = 0; ; ) {
      first = await Promise.race([coordinator.exited.then((code) => ({ code })), interruptedP.then((sig) => ({ sig }))]);
      if ('sig' in first || finalEvent || first.code === 0 || first.code === 2 || restarts >= maxRestarts) break;
      restarts += 1;
      const how = coordinator.proc.signalCode ?? `exit code ${first.code}`;
      emit({ event: 'coordinator_restarted', restart: restarts, maxRestarts, exit: String(how) });
      await coordinator.drained;
      const port = url === null ? 0 : Number(new URL(url).port);
      coordinator = start('coordinator', coordinatorArgs(port, true), coordinatorEnv, sink, process.stderr);
      children[0] = coordinator;
      void announce(coordinator);
    }
    if ('sig' in first) {
      process.stderr.write(`ddp train: ${first.sig}: stopping the coordinator and ${opts.workers} worker(s)\n`);
      await Promise.all(children.map(stop));
      await Promise.all(children.map((c) => c.drained));
      return SIGNAL_CODES[first.sig] ?? 1;
    }
    // The coordinator is done and has told the workers so; give them a moment to leave on their own.
    const workers = children.slice(1);
    const grace = new Promise((r) => setTimeout(r, WORKER_EXIT_GRACE_MS).unref());
    await Promise.race([Promise.all(workers.map((w) => w.exited)), grace]);
    await Promise.all(workers.map(stop));
    await Promise.all(children.map((c) => c.drained));
    return first.code;
  } finally {
    killAllNow();
    (onInterrupt as (() => void) | null)?.();
    process.off('exit', killAllNow);
  }
}
