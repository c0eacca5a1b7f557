/**
 * Validation at the boundary: every decoded frame goes through one of the two parsers below before
 * it touches any state. Each message's fields and rules are declared once, in MESSAGES
 * (messages.ts); the parsers find the declaration by `type`, apply the rules of when it may come
 * (before or after the welcome, in which --allreduce mode) and walk its fields (schema.ts): exactly
 * the declared fields, their types, sizes and shapes, finite numbers, then the rules across fields.
 * What comes out is a typed message the rest of the code trusts. Anything else throws a
 * ProtocolError whose message names the message type, the field, what was expected and what arrived.
 */
import {
  MESSAGES,
  type CoordinatorInboundLimits,
  type CoordinatorToWorker,
  type MessageDecl,
  type MessageType,
  type WorkerInboundLimits,
  type WorkerToCoordinator,
} from './messages.js';
import { bad, checkShape, describe, isPlainObject } from './schema.js';

export type { CoordinatorInboundLimits, WorkerInboundLimits } from './messages.js';

type Side = 'worker' | 'coordinator';

/** The declarations a side accepts, by type (a Map: no inherited names such as 'constructor'). */
function accepted(from: Side): ReadonlyMap<string, MessageDecl> {
  const out = new Map<string, MessageDecl>();
  for (const [type, decl] of Object.entries(MESSAGES) as Array<[MessageType, MessageDecl]>) {
    if (decl.from === from || decl.from === 'either') out.set(type, decl);
  }
  return out;
}
const FROM_WORKER = accepted('worker');
const FROM_COORDINATOR = accepted('coordinator');

function envelope(raw: unknown, from: Side): Record<string, unknown> & { type: string } {
  if (!isPlainObject(raw)) throw bad(`message from ${from}: expected a map with a 'type' field, got ${describe(raw)}`);
  if (typeof raw.type !== 'string') throw bad(`message from ${from}: 'type' must be a string, got ${describe(raw.type)}`);
  return raw as Record<string, unknown> & { type: string };
}

function declaration(obj: { type: string }, from: Side, known: ReadonlyMap<string, MessageDecl>): MessageDecl {
  const decl = known.get(obj.type);
  if (decl === undefined) throw bad(`message from ${from}: unknown type '${obj.type.slice(0, 40)}' (expected one of ${[...known.keys()].join(', ')})`);
  return decl;
}

/** The walk shared by both sides, once the declaration and the limits its rules read are settled. */
function walk(obj: Record<string, unknown> & { type: string }, decl: MessageDecl, from: Side, limits: CoordinatorInboundLimits | WorkerInboundLimits | null): unknown {
  if (decl.mode !== undefined && limits && limits.config.allreduce !== decl.mode) {
    throw bad(`${obj.type} from ${from}: not part of --allreduce ${limits.config.allreduce}`);
  }
  const l = decl.limited ? limits : null;
  decl.first?.(obj, l);
  const msg = checkShape(obj, obj.type, decl.shape, l, true);
  decl.check?.(msg, l);
  return msg;
}

/** Validates a decoded frame from a worker. Throws ProtocolError (DDP_BAD_MESSAGE, DDP_VERSION). */
export function parseWorkerMessage(raw: unknown, limits: CoordinatorInboundLimits): WorkerToCoordinator {
  const obj = envelope(raw, 'worker');
  return walk(obj, declaration(obj, 'worker', FROM_WORKER), 'worker', limits) as WorkerToCoordinator;
}

/**
 * Validates a decoded frame from the coordinator. Before the welcome (`limits` null) only welcome,
 * error and done make sense. Throws ProtocolError (DDP_BAD_MESSAGE, DDP_VERSION).
 */
export function parseCoordinatorMessage(raw: unknown, limits: WorkerInboundLimits | null): CoordinatorToWorker {
  const obj = envelope(raw, 'coordinator');
  const decl = declaration(obj, 'coordinator', FROM_COORDINATOR);
  if (decl.stage === 'first' && limits) throw bad(`${obj.type}: a second ${obj.type} on the same connection`);
  if (decl.stage === 'welcomed' && !limits) throw bad(`${obj.type}: received before welcome`);
  return walk(obj, decl, 'coordinator', limits) as CoordinatorToWorker;
}
