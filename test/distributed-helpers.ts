/**
 * Helpers for the distributed end-to-end tests: real `ddp` processes (the built CLI) whose output is
 * watched while they run, so that a test can act at a given step (kill a worker, stop one) and then
 * check what happened. Every process started here is killed after each test, whatever the outcome.
 */
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { afterEach } from 'vitest';
import { CLI, REPO_ROOT } from './cli-helpers.js';

export type DdpEventLine = Record<string, unknown> & { event: string };

export interface Live {
  proc: ChildProcess;
  pid: number;
  stdout(): string;
  stderr(): string;
  /** stdout lines parsed as NDJSON so far (json mode). */
  events(): DdpEventLine[];
  /** Resolves when a stdout event satisfies `pred`; rejects on timeout or if the process ends first. */
  waitForEvent(pred: (e: DdpEventLine) => boolean, timeoutMs?: number): Promise<DdpEventLine>;
  /** Resolves with the first match of `re` in stderr (json mode puts notes there). */
  waitForStderr(re: RegExp, timeoutMs?: number): Promise<RegExpMatchArray>;
  exit: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
}

const started = new Set<ChildProcess>();

afterEach(() => {
  for (const p of started) if (p.exitCode === null && p.signalCode === null) p.kill('SIGKILL');
  started.clear();
});

/** Starts `ddp ARGS` and watches its output. */
export function startDdp(args: string[], env: NodeJS.ProcessEnv = {}): Live {
  const proc = spawn(process.execPath, [CLI, ...args], { cwd: REPO_ROOT, env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
  started.add(proc);
  let out = '';
  let err = '';
  const parsed: DdpEventLine[] = [];
  let partial = '';
  const listeners = new Set<() => void>();
  const notify = () => listeners.forEach((l) => l());
  proc.stdout!.setEncoding('utf8').on('data', (d: string) => {
    out += d;
    const lines = (partial + d).split('\n');
    partial = lines.pop() ?? '';
    for (const line of lines) {
      if (line.trim() === '') continue;
      try {
        parsed.push(JSON.parse(line));
      } catch {
        parsed.push({ event: '__not_json__', line });
      }
    }
    notify();
  });
  proc.stderr!.setEncoding('utf8').on('data', (d: string) => {
    err += d;
    notify();
  });
  const exit = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
    proc.once('exit', (code, signal) => {
      notify();
      resolve({ code, signal });
    }),
  );
  const ended = () => proc.exitCode !== null || proc.signalCode !== null;
  function waitUntil<T>(probe: () => T | null | undefined, what: string, timeoutMs: number): Promise<T> {
    return new Promise((resolve, reject) => {
      const check = () => {
        const hit = probe();
        if (hit) {
          done();
          resolve(hit);
        } else if (ended()) {
          done();
          reject(new Error(`ddp ${args.join(' ')} ended (code ${proc.exitCode}, signal ${proc.signalCode}) before ${what}\nstderr:\n${err}`));
        }
      };
      const timer = setTimeout(() => {
        done();
        reject(new Error(`timed out after ${timeoutMs} ms waiting for ${what} from ddp ${args.join(' ')}\nstderr:\n${err}`));
      }, timeoutMs);
      const done = () => {
        clearTimeout(timer);
        listeners.delete(check);
      };
      listeners.add(check);
      check();
    });
  }
  return {
    proc,
    pid: proc.pid!,
    stdout: () => out,
    stderr: () => err,
    events: () => parsed,
    waitForEvent: (pred, timeoutMs = 60_000) => waitUntil(() => parsed.find(pred), 'an event', timeoutMs),
    waitForStderr: (re, timeoutMs = 60_000) => waitUntil(() => err.match(re), String(re), timeoutMs),
    exit,
  };
}

/** Starts a coordinator on a free port and resolves with it and its URL (from its "listening on" note). */
export async function startCoordinator(args: string[], env: NodeJS.ProcessEnv = {}): Promise<{ coord: Live; url: string; port: number }> {
  const coord = startDdp(['coordinator', 'start', '--port', '0', '--log-format', 'json', ...args], env);
  const m = await coord.waitForStderr(/listening on (wss?:\/\/[^\s,]+)/);
  return { coord, url: m[1], port: Number(new URL(m[1]).port) };
}

export function startWorker(url: string, args: string[] = [], env: NodeJS.ProcessEnv = {}): Live {
  return startDdp(['worker', '--connect', url, ...args], env);
}

/** The flat parameters saved in DIR/weights.bin (float32, in the seed CNN's parameter order). */
export function readWeights(dir: string): Float32Array {
  const b = fs.readFileSync(path.join(dir, 'weights.bin'));
  return new Float32Array(b.buffer.slice(b.byteOffset, b.byteOffset + b.byteLength));
}

export function maxAbsDiff(a: Float32Array, b: Float32Array): number {
  if (a.length !== b.length) throw new Error(`lengths differ: ${a.length} vs ${b.length}`);
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i] - b[i]));
  return m;
}

export function bitwiseEqual(a: Float32Array, b: Float32Array): boolean {
  return Buffer.from(a.buffer, a.byteOffset, a.byteLength).equals(Buffer.from(b.buffer, b.byteOffset, b.byteLength));
}

export const tmpDir = () => fs.mkdtempSync(path.join(os.tmpdir(), 'ddp-e2e-'));

/** Direct children of `pid` (Linux `ps`). */
export function childPids(pid: number): number[] {
  try {
    return execFileSync('ps', ['-o', 'pid=', '--ppid', String(pid)], { encoding: 'utf8' })
      .split('\n')
      .map((s) => Number(s.trim()))
      .filter((n) => n > 0);
  } catch {
    return []; // ps exits 1 when there are none
  }
}

export function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
  } catch {
    return false;
  }
  // A zombie (exited, not yet reaped by its parent) counts as gone.
  try {
    return !fs.readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]?.startsWith('Z');
  } catch {
    return false;
  }
}

/** Polls until `cond` holds or `timeoutMs` passes; returns whether it held. */
export async function eventually(cond: () => boolean, timeoutMs: number, everyMs = 50): Promise<boolean> {
  const end = Date.now() + timeoutMs;
  for (;;) {
    if (cond()) return true;
    if (Date.now() > end) return false;
    await new Promise((r) => setTimeout(r, everyMs));
  }
}

/** The `step` events' step numbers, in order. */
export const stepNumbers = (events: DdpEventLine[]) => events.filter((e) => e.event === 'step').map((e) => e.step as number);
