/**
 * Starts N benchmark member processes and speaks the stdio protocol of member-messages.ts with
 * them: collect every `listening` url, send each member the start line, gather the lines that
 * follow. Members are killed (by their own pids) as soon as one fails, on SIGINT/SIGTERM, and when
 * the group is done; a member exits by itself when its stdin closes, so none outlives a killed parent.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { createInterface } from 'node:readline';
import type { MemberLine, StartLine } from './member-messages.js';

export interface MemberGroupOptions {
  size: number;
  /** The CLI entry point (dist/main.js). */
  mainJs: string;
  /** The member's argv after `main.js`, per rank. */
  args: (rank: number) => string[];
  /** Environment added for every member (the token travels here, not on the command line). */
  env: Record<string, string>;
  /** A command put in front of `node main.js ...`, with {rank} replaced (e.g. "ip netns exec ddp-m{rank}"). */
  execPrefix?: string;
  /** Where members' stderr and non-JSON stdout lines go. */
  onOutput: (rank: number, line: string) => void;
  /** Give up when the members have not all printed `listening` within this time. */
  listenTimeoutMs: number;
  /**
   * Kill every member when one fails (default true). Tests that kill a member on purpose turn it
   * off to read what the survivors report.
   */
  failFast?: boolean;
}

export class MemberGroup {
  private readonly procs: ChildProcess[] = [];
  private readonly lines: MemberLine[][] = [];
  private waiting: Array<() => void> = [];
  private failure: Error | undefined;
  private readonly exited: Promise<void>[] = [];
  private readonly onSignal = (): void => this.kill();
  private readonly failFast: boolean;
  /** Per rank: the exit code or signal, once it has exited. */
  readonly exitCodes: Array<number | string | null | undefined> = [];

  constructor(private readonly opts: MemberGroupOptions) {
    this.failFast = opts.failFast ?? true;
    process.once('SIGINT', this.onSignal);
    process.once('SIGTERM', this.onSignal);
    for (let rank = 0; rank < opts.size; rank++) this.startMember(rank);
  }

  private startMember(rank: number): void {
    const prefix = (this.opts.execPrefix ?? '').replaceAll('{rank}', String(rank)).split(/\s+/).filter(Boolean);
    const argv = [process.execPath, this.opts.mainJs, ...this.opts.args(rank)];
    const [cmd, ...rest] = [...prefix, ...argv];
    const proc = spawn(cmd!, rest, { stdio: ['pipe', 'pipe', 'pipe'], env: { ...process.env, ...this.opts.env } });
    this.procs.push(proc);
    this.lines.push([]);
    proc.stdin!.on('error', () => {}); // a member that died cannot be written to; its exit says why
    createInterface({ input: proc.stderr! }).on('line', (l) => this.opts.onOutput(rank, l));
    createInterface({ input: proc.stdout! }).on('line', (l) => {
      let msg: MemberLine;
      try {
        msg = JSON.parse(l) as MemberLine;
      } catch {
        this.opts.onOutput(rank, l);
        return;
      }
      if (typeof msg !== 'object' || msg === null || typeof msg.type !== 'string') return this.opts.onOutput(rank, l);
      this.lines[rank]!.push(msg);
      if (msg.type === 'error' && this.failFast) this.fail(new Error(`member ${rank}: ${msg.message}`));
      this.wake();
    });
    this.exited.push(
      new Promise((resolve) => {
        proc.once('error', (e) => {
          this.fail(new Error(`member ${rank} could not start (${cmd}): ${e.message}`));
          resolve();
        });
        proc.once('exit', (code, signal) => {
          const finished = this.lines[rank]!.some((m) => m.type === 'finished');
          if (!finished && !this.failure && this.failFast) this.fail(new Error(`member ${rank} exited with ${signal ?? `code ${code}`} before finishing`));
          this.exitCodes[rank] = signal ?? code;
          resolve();
          this.wake();
        });
      }),
    );
  }

  private wake(): void {
    for (const w of this.waiting.splice(0)) w();
  }

  private fail(err: Error): void {
    if (this.failure) return;
    this.failure = err;
    this.kill();
    this.wake();
  }

  /**
   * Resolves with one line of type `type` from every member (or from `ranks`), in rank order; rejects
   * on any failure, or when they have not all sent it within `timeoutMs`.
   */
  async collect<T extends MemberLine['type']>(
    type: T,
    timeoutMs: number,
    match: (m: MemberLine) => boolean = () => true,
    ranks: readonly number[] = this.lines.map((_, r) => r),
  ): Promise<Array<Extract<MemberLine, { type: T }>>> {
    const deadline = performance.now() + timeoutMs;
    for (;;) {
      if (this.failure) throw this.failure;
      const found = ranks.map((r) => this.lines[r]!.find((m) => m.type === type && match(m)));
      if (found.every((m) => m !== undefined)) return found as Array<Extract<MemberLine, { type: T }>>;
      const left = deadline - performance.now();
      if (left <= 0) {
        const missing = ranks.filter((_, i) => !found[i]);
        this.fail(new Error(`members ${missing.join(', ')} sent no '${type}' line within ${Math.round(timeoutMs / 1000)} s`));
        throw this.failure;
      }
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, left);
        this.waiting.push(() => {
          clearTimeout(timer);
          resolve();
        });
      });
    }
  }

  /** Rendezvous: every member's url, then the start line to all. */
  async start(cases: StartLine['cases']): Promise<string[]> {
    const listening = await this.collect('listening', this.opts.listenTimeoutMs);
    const urls = listening.map((m) => m.url);
    const line: StartLine = { type: 'start', urls, cases };
    for (const p of this.procs) p.stdin!.write(`${JSON.stringify(line)}\n`);
    return urls;
  }

  /** Resolves when every member has exited. */
  async whenAllExited(): Promise<void> {
    await Promise.all(this.exited);
  }

  /** Waits for every member to exit (after `finished`), then stops listening for signals. */
  async end(): Promise<void> {
    for (const p of this.procs) p.stdin!.end();
    await Promise.all(this.exited);
    this.detach();
    if (this.failure) throw this.failure;
  }

  /** Kills every member still running, by pid. */
  kill(): void {
    for (const p of this.procs) if (p.exitCode === null && p.signalCode === null) p.kill('SIGKILL');
  }

  /** Kills the members and waits for them to go. */
  async abort(): Promise<void> {
    this.kill();
    await Promise.all(this.exited);
    this.detach();
  }

  private detach(): void {
    process.off('SIGINT', this.onSignal);
    process.off('SIGTERM', this.onSignal);
  }

  /** The process of one member (tests kill one to see the others fail). */
  pid(rank: number): number | undefined {
    return this.procs[rank]?.pid;
  }
}
