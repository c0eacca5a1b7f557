/**
 * A worker's part in star mode (the step protocol is written out in coordinator/src/star/star-step.ts):
 * each work order names a shard and carries the weights; the member answers with the gradient SUM
 * over that shard (float32; float16 bits with compress 'fp16'; with reduction 'exact' the exact-sum
 * encoding of its micro-shards' gradient and loss sums).
 */
import { MSG, encodeFp16, type EvaluateMessage, type GradientMessage, type WorkMessage } from '@ddp/core';
import { answerEvaluate } from '../evaluate-shard.js';
import type { Member, MemberContext } from '../member.js';
import { shardGradient } from './shard-gradient.js';

/** The largest magnitude that does not round to Infinity in float16 (65504 plus half an ulp). */
const FP16_LIMIT = 65520;

export class StarMember implements Member<WorkMessage | EvaluateMessage> {
  private closed = false;

  constructor(private readonly ctx: MemberContext) {}

  handle(msg: WorkMessage | EvaluateMessage, receivedAt: number): void {
    if (this.closed) return;
    if (msg.type === MSG.EVALUATE) {
      if (!msg.params) this.ctx.fail('DDP_BAD_MESSAGE', 'evaluate: star mode sends the weights with it');
      else answerEvaluate(this.ctx, msg, msg.params);
      return;
    }
    const { config } = this.ctx.welcome;
    let r;
    try {
      r = shardGradient(msg.params, msg.indices, this.ctx.train, config.reduction);
    } catch (err) {
      this.ctx.fail('DDP_WORKER', `gradient computation failed at step ${msg.step + 1}: ${err instanceof Error ? err.message : String(err)}`);
      return;
    }
    let grad: GradientMessage['grad'] = r.grad;
    if (config.compress === 'fp16' && r.grad instanceof Float32Array) {
      const i = r.grad.findIndex((x) => !(Math.abs(x) < FP16_LIMIT));
      if (i >= 0) {
        this.ctx.fail('DDP_WORKER', `the gradient sum at step ${msg.step + 1} is ${r.grad[i]} at index ${i}, beyond the float16 range (run with --compress none)`);
        return;
      }
      grad = encodeFp16(r.grad);
    }
    this.ctx.send({
      type: MSG.GRADIENT, step: msg.step, task: msg.task, count: msg.indices.length, lossSum: r.lossSum, grad,
      computeMs: r.computeMs, busyMs: performance.now() - receivedAt,
    });
  }

  close(): void {
    this.closed = true;
  }
}
