import { randomBytes } from 'node:crypto';
import { beforeAll, describe, expect, it } from 'vitest';
import { randomSplit } from '../test-support.js';
import type { Split } from '../data/datasets.js';
import { EVAL_BATCH, combineEvaluation, evaluateRange, evaluateSplit, evaluationRanges } from './evaluate.js';
import { initSeedCnnParams } from './init.js';
import { initBackend } from '../backend/select.js';

// The property is about how batches are cut and added, not about a backend: wasm keeps it fast.
beforeAll(async () => {
  await initBackend('wasm');
});


describe('an evaluation shared among workers', () => {
  it('ranges of whole batches, in order, cover the split once, for any number of members', () => {
    for (const count of [1, 499, 500, 501, 10000, 10001]) {
      for (const members of [1, 2, 3, 7, 40]) {
        const r = evaluationRanges(count, members);
        expect(r.length).toBeLessThanOrEqual(members);
        expect(r[0]!.start).toBe(0);
        expect(r.at(-1)!.end).toBe(count);
        r.forEach((x, i) => {
          expect(x.start % EVAL_BATCH).toBe(0);
          expect(x.end).toBeGreaterThan(x.start);
          if (i > 0) expect(x.start).toBe(r[i - 1]!.end);
        });
      }
    }
  });

  it('combined in order, the shares give bitwise the one-pass evaluation (loss and accuracy)', () => {
    const split = randomSplit(2 * EVAL_BATCH + 37); // three batches, the last partial
    const params = initSeedCnnParams(randomBytes(4).readUInt32LE());
    const whole = evaluateSplit(params, split);
    for (const members of [2, 3]) {
      const parts = evaluationRanges(split.count, members).map(({ start, end }) => evaluateRange(params, split, start, end));
      expect(parts.reduce((n, p) => n + p.lossSums.length, 0)).toBe(3);
      const shared = combineEvaluation(parts, split.count);
      expect(shared).toEqual(whole);
      expect(Object.is(shared.loss, whole.loss)).toBe(true);
    }
  }, 60_000);

  it('refuses a range outside the split', () => {
    const split = randomSplit(3);
    expect(() => evaluateRange(initSeedCnnParams(1), split, 2, 4)).toThrow(RangeError);
    expect(() => evaluateRange(initSeedCnnParams(1), split, 2, 2)).toThrow(RangeError);
  });
});
