/**
 * One conformance suite for every Transport implementation: it checks the contract written in
 * transport.ts, failure rules included. Each package calls it from a test file with a factory for
 * its transport (core: the in-memory transport; worker: the WebSocket transport over real sockets):
 *
 *   transportConformance('memory', async (n, { recvTimeoutMs }) => {
 *     const ts = createMemoryTransports(n, { recvTimeoutMs });
 *     return { transports: ts, kill: (r) => ts[r]!.fail('killed'), close: async () => {} };
 *   });
 *
 * It imports vitest, so it is exported from `@ddp/core/testing`, not from the main index.
 *
 * For each group size (default N = 2, 3, 4), on a fresh group per test:
 * - ranks are 0..N-1 and every member knows N;
 * - payloads are matched by (from, tag), FIFO per (from, tag), whatever order the receives come in;
 * - payloads that arrive before their recv are buffered, and `send` resolves without a recv;
 * - payloads of any size (0 bytes to a few MiB) arrive intact;
 * - two recvs pending on one (from, tag) are served in the order they were made;
 * - no aliasing: the sender may reuse its buffer once send resolves, each receiver owns its bytes;
 * - send/recv to the member's own rank or a rank out of range throws a RangeError at once;
 * - a member that dies fails the group: every pending and later operation on every other member
 *   rejects with a CollectiveError 'PEER_FAILED' naming it, with no receive timeout set (no hang);
 * - a receive that times out fails the group: the receive and every pending and later operation on
 *   every member reject with 'RECV_TIMEOUT' naming the awaited rank, including members that were
 *   waiting on a live rank.
 * Operations that should end are awaited with a deadline, so a hang fails with a message that
 * names what is still pending rather than with vitest's timeout.
 */
import { describe, expect, it } from 'vitest';
import { CollectiveError, type CollectiveErrorCode } from './collective-error.js';
import type { Transport } from './transport.js';

export interface ConformanceGroup {
  /** The members; element i has rank i. Every member must be able to reach every other. */
  readonly transports: readonly Transport[];
  /** Makes `rank` die as a crashed process would: nothing more from it, and no goodbye. */
  kill(rank: number): void;
  /** Releases what the group holds (sockets, timers); called after every test, passed or failed. */
  close(): Promise<void>;
}

export interface ConformanceGroupOptions {
  /** The receive timeout to give every member, in ms (undefined: none). */
  recvTimeoutMs?: number;
}

/** Makes a connected group of `size` members. */
export type MakeConformanceGroup = (size: number, opts: ConformanceGroupOptions) => Promise<ConformanceGroup>;

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** Settles `ops` (labelled by `labels`) or fails, naming the ones still pending after `ms`. */
async function settleWithin<T>(ms: number, ops: Promise<T>[], labels: string[]): Promise<PromiseSettledResult<T>[]> {
  const done = ops.map(() => false);
  ops.forEach((p, i) => p.then(() => (done[i] = true), () => (done[i] = true)));
  let timer: ReturnType<typeof setTimeout> | undefined;
  const deadline = new Promise<'hung'>((r) => (timer = setTimeout(() => r('hung'), ms)));
  const settled = await Promise.race([Promise.allSettled(ops), deadline]);
  clearTimeout(timer);
  if (settled === 'hung') {
    const pending = labels.filter((_, i) => !done[i]);
    return expect.fail(`still pending after ${ms} ms (a hang): ${pending.join('; ')}`);
  }
  return settled;
}

function expectCollectiveError(s: PromiseSettledResult<unknown>, code: CollectiveErrorCode, rank: number, label: string): void {
  expect(s.status, `${label} should reject`).toBe('rejected');
  const err = (s as PromiseRejectedResult).reason as unknown;
  expect(err, `${label}: ${String(err)}`).toBeInstanceOf(CollectiveError);
  const { code: gotCode, rank: gotRank, message } = err as CollectiveError;
  expect({ code: gotCode, rank: gotRank }, `${label}: ${message}`).toEqual({ code, rank });
}

/** A payload that says where it comes from: [from, to, tag index, seq, then filler bytes]. */
function stamped(from: number, to: number, tagIndex: number, seq: number, bytes: number): Uint8Array {
  const p = new Uint8Array(Math.max(4, bytes));
  p.set([from, to, tagIndex, seq]);
  for (let i = 4; i < p.length; i++) p[i] = (from * 31 + to * 17 + tagIndex * 7 + seq + i) & 0xff;
  return p;
}

function pattern(bytes: number, salt: number): Uint8Array {
  const p = new Uint8Array(bytes);
  for (let i = 0; i < bytes; i++) p[i] = (i * 131 + salt * 7 + (i >>> 8)) & 0xff;
  return p;
}

const equalBytes = (a: Uint8Array, b: Uint8Array): boolean => a.byteLength === b.byteLength && a.every((x, i) => x === b[i]);

/**
 * Registers the suite for transport `name`: one `describe` per group size, its tests on fresh
 * groups from `makeGroup`.
 */
export function transportConformance(name: string, makeGroup: MakeConformanceGroup, sizes: readonly number[] = [2, 3, 4]): void {
  async function withGroup(n: number, opts: ConformanceGroupOptions, body: (g: ConformanceGroup, ts: readonly Transport[]) => Promise<void>): Promise<void> {
    const g = await makeGroup(n, opts);
    try {
      expect(g.transports.length, 'the group has one transport per rank').toBe(n);
      await body(g, g.transports);
    } finally {
      await g.close();
    }
  }

  describe.each(sizes)(`${name} transport conformance, N = %i`, (n) => {
    const others = (rank: number): number[] => Array.from({ length: n }, (_, r) => r).filter((r) => r !== rank);

    it('numbers its members 0..N-1, each knowing the group size', async () => {
      await withGroup(n, {}, async (_g, ts) => {
        expect(ts.map((t) => [t.rank, t.size])).toEqual(ts.map((_, r) => [r, n]));
      });
    });

    it('matches payloads by (from, tag), FIFO per (from, tag), buffering them before their recv', async () => {
      const tags = ['a', 'allreduce/ring/rs/3', 'a/', 'ü tag'];
      const perTag = 3;
      await withGroup(n, {}, async (_g, ts) => {
        // Every member sends to every other, the tags interleaved; each send resolves with no recv posted.
        const sends: Promise<void>[] = [];
        for (let seq = 0; seq < perTag; seq++) {
          for (const t of ts) for (const to of others(t.rank)) tags.forEach((tag, k) => sends.push(t.send(to, tag, stamped(t.rank, to, k, seq, 4 + ((seq * 37 + k) % 50)))));
        }
        await settleWithin(5000, sends, sends.map((_, i) => `send #${i}`)).then((s) => s.forEach((x) => expect(x.status).toBe('fulfilled')));
        await sleep(20); // let everything land: these payloads are buffered now
        // Receive in another order than sent: tags and senders reversed.
        for (const t of ts) {
          for (const from of others(t.rank).reverse()) {
            for (let k = tags.length - 1; k >= 0; k--) {
              for (let seq = 0; seq < perTag; seq++) {
                const got = await t.recv(from, tags[k]!);
                const want = stamped(from, t.rank, k, seq, 4 + ((seq * 37 + k) % 50));
                expect(equalBytes(got, want), `rank ${t.rank} recv(from ${from}, "${tags[k]}") #${seq}: got [${[...got.subarray(0, 4)]}...]`).toBe(true);
              }
            }
          }
        }
      });
    });

    it('delivers payloads of any size intact and in order', async () => {
      const sizes = [0, 1, 1023, 1024, 1025, 3 * 1024 + 5, 65_537, (5 << 19) + 3];
      await withGroup(n, {}, async (_g, ts) => {
        const [from, to] = [n - 1, 0];
        const payloads = sizes.map((s, k) => pattern(s, k));
        for (const p of payloads) await ts[from]!.send(to, 'sizes', p);
        for (let k = 0; k < sizes.length; k++) {
          const got = await ts[to]!.recv(from, 'sizes');
          expect(got.byteLength, `message ${k}`).toBe(sizes[k]);
          expect(equalBytes(got, payloads[k]!), `message ${k} of ${sizes[k]} bytes differs`).toBe(true);
        }
      });
    });

    it('serves two recvs pending on one (from, tag) in the order they were made', async () => {
      await withGroup(n, {}, async (_g, ts) => {
        const first = ts[0]!.recv(1, 'p');
        const other = ts[0]!.recv(1, 'q');
        const second = ts[0]!.recv(1, 'p');
        await ts[1]!.send(0, 'p', Uint8Array.of(1));
        await ts[1]!.send(0, 'q', Uint8Array.of(9));
        await ts[1]!.send(0, 'p', Uint8Array.of(2));
        const got = await settleWithin(5000, [first, other, second], ['first p', 'q', 'second p']);
        expect(got.map((s) => (s.status === 'fulfilled' ? [...s.value] : String(s.reason)))).toEqual([[1], [9], [2]]);
      });
    });

    it('never aliases: the sender may reuse its buffer once send resolves, and each receiver owns its bytes', async () => {
      await withGroup(n, {}, async (_g, ts) => {
        const backing = pattern(64, 3);
        const buf = backing.subarray(8, 40); // a view inside a larger buffer, as callers pass chunks
        const want = buf.slice();
        for (const to of others(0)) await ts[0]!.send(to, 'alias', buf);
        buf.fill(0xee);
        const got = await Promise.all(others(0).map((r) => ts[r]!.recv(0, 'alias')));
        for (const [i, g] of got.entries()) {
          expect(equalBytes(g, want), `rank ${others(0)[i]} got the bytes as they were at send`).toBe(true);
          expect(g.buffer === backing.buffer, 'the payload must not share memory with the sender').toBe(false);
        }
        got[0]!.fill(0x55); // one receiver scribbles on its payload
        expect(backing.subarray(8, 40).every((x) => x === 0xee), "a receiver's payload shares the sender's memory").toBe(true);
        for (const g of got.slice(1)) expect(equalBytes(g, want), 'two receivers share one payload').toBe(true);
      });
    });

    it('throws a RangeError at once for its own rank or a rank out of range', async () => {
      await withGroup(n, {}, async (_g, ts) => {
        for (const t of ts) {
          for (const bad of [t.rank, -1, n, 1.5, Number.NaN]) {
            expect(() => t.send(bad, 'x', new Uint8Array(1)), `rank ${t.rank} send(${bad})`).toThrow(RangeError);
            expect(() => t.recv(bad, 'x'), `rank ${t.rank} recv(${bad})`).toThrow(RangeError);
          }
        }
      });
    });

    it('fails the group when a member dies: every pending and later operation elsewhere rejects naming it, with no timeout set', async () => {
      await withGroup(n, {}, async (g, ts) => {
        const dead = n - 1;
        const survivors = others(dead);
        const ops: Promise<unknown>[] = [];
        const labels: string[] = [];
        for (const r of survivors) {
          ops.push(ts[r]!.recv(dead, 'from the dead'));
          labels.push(`rank ${r} recv(from ${dead})`);
          const live = survivors.find((s) => s !== r);
          if (live !== undefined) {
            // waits on a live member that will never send: only the group failure can end it
            ops.push(ts[r]!.recv(live, 'from the living'));
            labels.push(`rank ${r} recv(from live ${live})`);
          }
        }
        await sleep(20);
        g.kill(dead);
        const settled = await settleWithin(5000, ops, labels);
        settled.forEach((s, i) => expectCollectiveError(s, 'PEER_FAILED', dead, labels[i]!));
        // Later operations reject too, at once.
        const later: Promise<unknown>[] = [];
        const laterLabels: string[] = [];
        for (const r of survivors) {
          const to = survivors.find((s) => s !== r) ?? dead;
          later.push(ts[r]!.send(to, 'after', Uint8Array.of(1)), ts[r]!.recv(to, 'after'));
          laterLabels.push(`rank ${r} later send(to ${to})`, `rank ${r} later recv(from ${to})`);
        }
        const after = await settleWithin(5000, later, laterLabels);
        after.forEach((s, i) => expectCollectiveError(s, 'PEER_FAILED', dead, laterLabels[i]!));
      });
    });

    it('fails the group when a receive times out: every member rejects with RECV_TIMEOUT naming the awaited rank', async () => {
      const ms = 400;
      await withGroup(n, { recvTimeoutMs: ms }, async (_g, ts) => {
        const silent = n - 1;
        // Rank 0 waits on the silent rank; the others start waiting on rank 0 (alive, but stuck)
        // half a timeout later, so rank 0's receive is the first to time out.
        const ops: Promise<unknown>[] = [ts[0]!.recv(silent, 'never sent')];
        const labels = [`rank 0 recv(from ${silent})`];
        await sleep(ms / 2);
        for (const r of others(0)) {
          ops.push(ts[r]!.recv(0, 'stuck'));
          labels.push(`rank ${r} recv(from 0)`);
        }
        const settled = await settleWithin(2 * ms + 5000, ops, labels);
        settled.forEach((s, i) => expectCollectiveError(s, 'RECV_TIMEOUT', silent, labels[i]!));
        // Every member has learned of it: later operations reject at once, the silent rank's too.
        const later: Promise<unknown>[] = [];
        const laterLabels: string[] = [];
        for (const t of ts) {
          const to = t.rank === 0 ? 1 : 0;
          later.push(t.send(to, 'after', Uint8Array.of(1)), t.recv(to, 'after'));
          laterLabels.push(`rank ${t.rank} later send(to ${to})`, `rank ${t.rank} later recv(from ${to})`);
        }
        const after = await settleWithin(1000, later, laterLabels);
        after.forEach((s, i) => expectCollectiveError(s, 'RECV_TIMEOUT', silent, laterLabels[i]!));
      });
    });
  });
}
