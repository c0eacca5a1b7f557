// The /events stream without a server: the bounded history and its order. Over real sockets (replay,
// then live events; the token rules): net/coordinator-server.test.ts.
import type { DdpEvent } from '@ddp/core';
import { describe, expect, it } from 'vitest';
import { EventStream } from './event-stream.js';

const step = (n: number): DdpEvent => ({ event: 'step', step: n, epoch: 0, loss: 1 / (n + 1), samples: 64 });
const joined = (rank: number): DdpEvent => ({ event: 'worker_joined', rank, workers: rank + 1 });
const parse = (frames: string[]) => frames.map((f) => JSON.parse(f.replace(/^data: /, '')) as Record<string, unknown>);

describe('EventStream history', () => {
  it('replays every event in the order it happened, as `data: <json>` frames stamped with the time', () => {
    const s = new EventStream({ now: () => 1234 });
    const events = [joined(0), step(1), joined(1), step(2), step(3)];
    events.forEach((e) => s.observe(e));
    const frames = s.history();
    expect(frames.every((f) => /^data: \{.*\}\n\n$/.test(f))).toBe(true);
    expect(parse(frames)).toEqual(events.map((e) => ({ ...e, time: 1234 })));
  });

  it('keeps every non-step event but only the last maxSteps step events', () => {
    const s = new EventStream({ maxSteps: 3 });
    s.observe(joined(0));
    for (let n = 1; n <= 10; n++) {
      s.observe(step(n));
      if (n === 5) s.observe(joined(1));
    }
    const got = parse(s.history()).map((e) => (e.event === 'step' ? `s${e.step}` : `j${e.rank}`));
    expect(got).toEqual(['j0', 'j1', 's8', 's9', 's10']);
    for (let n = 11; n <= 100; n++) s.observe(step(n)); // compaction keeps the order and the bound
    expect(parse(s.history()).map((e) => e.step ?? `j${e.rank}`)).toEqual(['j0', 'j1', 98, 99, 100]);
  });

  it('refuses a bound that is not a positive integer', () => {
    expect(() => new EventStream({ maxSteps: 0 })).toThrow(RangeError);
  });
});
