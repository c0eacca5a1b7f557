/**
 * One member process of `ddp bench allreduce` (the hidden `ddp bench allreduce-member`): it listens,
 * prints its url, waits for the parent's start line with every member's url and the cases, links up
 * with its peers, and times each case: a barrier (the same algorithm on one float), the warm-up
 * iterations, another barrier, then the timed iterations back to back, each timed on this rank as
 * the gap since its previous completion. The parent combines the ranks' times. The last result of
 * every case is checked element by element against the exact sum.
 */
import { createInterface } from 'node:readline';
import { CollectiveError, ringAllreduce, starAllreduce, type AllreduceOptions, type Transport } from '@ddp/core';
import { countMismatches, memberInput, type MemberLine, type StartLine } from './member-messages.js';
import { PeerEndpoint, type PeerTopology } from './peer.js';

export interface MemberOptions {
  rank: number;
  size: number;
  token: string;
  host: string;
  topology: PeerTopology[];
  chunkBytes?: number;
  recvTimeoutMs: number;
  connectTimeoutMs: number;
  /** Where the member's lines go (default: stdout). */
  emit?: (line: MemberLine) => void;
  /** Its start line (default: the first line of stdin). */
  start?: Promise<StartLine>;
}

const ALGOS = { star: starAllreduce, ring: ringAllreduce } as const;

/**
 * The parent's start line, the first line on stdin. Afterwards stdin stays open until the parent
 * ends it; if it closes while the member is still working (the parent died), the member exits.
 */
function readStartLine(isDone: () => boolean): { start: Promise<StartLine>; release: () => void } {
  const rl = createInterface({ input: process.stdin });
  const start = new Promise<StartLine>((resolve, reject) => {
    let got = false;
    rl.once('line', (line) => {
      got = true;
      try {
        const msg = JSON.parse(line) as StartLine;
        if (msg.type !== 'start' || !Array.isArray(msg.urls) || !Array.isArray(msg.cases)) throw new Error('not a start line');
        resolve(msg);
      } catch (err) {
        reject(new Error(`bad start line from the parent: ${(err as Error).message}`));
      }
    });
    rl.once('close', () => {
      if (!got) reject(new Error('stdin closed before the start line (the parent went away)'));
      else if (!isDone()) {
        process.stderr.write('allreduce-member: stdin closed mid-run (the parent went away); exiting\n');
        process.exit(1);
      }
    });
  });
  start.catch(() => {}); // awaited later, or never when listening failed
  return {
    start,
    release: () => {
      rl.close();
      process.stdin.destroy(); // let the event loop end
    },
  };
}

export async function runAllreduceMember(opts: MemberOptions): Promise<number> {
  const emit = opts.emit ?? ((line: MemberLine) => process.stdout.write(`${JSON.stringify(line)}\n`));
  const rank = opts.rank;
  let done = false;
  const stdin = opts.start ? undefined : readStartLine(() => done);
  let endpoint: PeerEndpoint;
  try {
    endpoint = await PeerEndpoint.listen({
      rank,
      size: opts.size,
      token: opts.token,
      group: 'ddp-bench-allreduce',
      topology: opts.topology,
      host: opts.host,
      chunkBytes: opts.chunkBytes,
      recvTimeoutMs: opts.recvTimeoutMs,
      connectTimeoutMs: opts.connectTimeoutMs,
    });
  } catch (err) {
    stdin?.release();
    emit({ type: 'error', rank, message: (err as Error).message });
    return 1;
  }
  try {
    emit({ type: 'listening', rank, url: endpoint.url });
    const start = await (opts.start ?? stdin!.start);
    const t0 = performance.now();
    const t: Transport = await endpoint.connect(start.urls);
    emit({ type: 'connected', rank, ms: performance.now() - t0 });
    const one = new Float32Array([1]);
    for (const c of start.cases) {
      const algo = ALGOS[c.algo];
      const opt: AllreduceOptions = { compress: c.compress, tag: `c${c.id}` };
      const barrier = (): Promise<Float32Array> => algo(t, one, { tag: `c${c.id}/barrier` });
      const input = memberInput(rank, c.floats);
      await barrier();
      for (let i = 0; i < c.warmup; i++) await algo(t, input, opt);
      await barrier();
      // Back to back, as NCCL-tests runs them: an iteration's time is the gap between two
      // completions, so no barrier skew is counted, only what one collective costs in a stream.
      const ms: number[] = [];
      let last: Float32Array | undefined;
      let prev = performance.now();
      for (let i = 0; i < c.iters; i++) {
        last = await algo(t, input, opt);
        const now = performance.now();
        ms.push(now - prev);
        prev = now;
      }
      const check = last ? countMismatches(last, opts.size) : { mismatches: 0, firstMismatch: -1 };
      emit({ type: 'case', rank, id: c.id, ms, ...check });
    }
    await ALGOS[start.cases[0]?.algo ?? 'ring'](t, one, { tag: 'final-barrier' }); // nobody closes while others still need it
    done = true;
    emit({ type: 'finished', rank });
    return 0;
  } catch (err) {
    const e = err as Error;
    done = true;
    emit({
      type: 'error',
      rank,
      message: e.message,
      ...(err instanceof CollectiveError ? { code: err.code, faultRank: err.rank } : {}),
    });
    return 1;
  } finally {
    stdin?.release();
    await endpoint.close();
  }
}
