// A worker's share of an evaluation (either mode): whole evaluation batches of the test split, at
// the weights it is told, answered batch by batch so that the coordinator's sum is one process's.
import { MSG, evaluateRange, type EvaluateMessage } from '@ddp/core';
import type { MemberContext } from './member.js';

export function answerEvaluate(ctx: MemberContext, msg: EvaluateMessage, params: Float32Array): void {
  if (!ctx.test) {
    ctx.fail('DDP_DATASET', 'evaluate: this worker has no test split');
    return;
  }
  if (msg.end > ctx.test.count) {
    ctx.fail('DDP_DATASET', `evaluate: test samples up to ${msg.end} asked for, this worker has ${ctx.test.count}`);
    return;
  }
  const r = evaluateRange(params, ctx.test, msg.start, msg.end);
  ctx.send({ type: MSG.EVALUATION, request: msg.request, batches: r.lossSums.length, lossSums: r.lossSums, correct: r.correct });
}
