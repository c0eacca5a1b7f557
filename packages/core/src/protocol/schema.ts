/**
 * The vocabulary the wire messages are declared in (messages.ts), and the one walker that checks a
 * decoded value against a declaration. A declaration is plain data: a map of field names to fields
 * such as `int(0, 65535)`, `text(64)` or `float32s(paramCount)`, from which both the TypeScript
 * type (`Shape<typeof fields>`, `Infer<typeof field>`) and the check at the boundary follow.
 *
 * Sizes that depend on the job (the parameter count, the training split's size, ...) are `Bound`s:
 * a number, or a function of the receiver's limits (and of the fields declared above, for a size
 * that follows another field), called once per message, never per element.
 * The vector checks are one tight loop each. Every refusal is a ProtocolError('DDP_BAD_MESSAGE')
 * whose message names `message.field` (or `message.field[i]`), what was expected and what arrived.
 */
import { ProtocolError } from './protocol-error.js';

/**
 * A size or bound: fixed, or read from the receiver's limits (`L`) and, for a bound that depends
 * on another field (a chunk's pixels on its labels), from `earlier`: the fields declared above this
 * one, already checked.
 */
export type Bound<L> = number | ((limits: L, earlier: Earlier) => number);
/** The fields of a map checked so far (those declared above the one being checked). */
export type Earlier = Readonly<Record<string, unknown>>;

/** What a field checks; the walker below switches on `kind`. */
export type Spec<L> =
  | { readonly kind: 'int'; readonly min: number; readonly max: Bound<L> }
  | { readonly kind: 'finite'; readonly min: number; readonly positive: boolean }
  | { readonly kind: 'text'; readonly maxLength: number }
  | { readonly kind: 'bool' }
  | { readonly kind: 'oneOf'; readonly choices: readonly string[] }
  | { readonly kind: 'pattern'; readonly pattern: RegExp; readonly maxLength: number; readonly expected: string }
  | { readonly kind: 'float32s' | 'float64s' | 'halves'; readonly length: Bound<L>; readonly note: string }
  | { readonly kind: 'uint32s'; readonly maxLength: Bound<L>; readonly below: Bound<L> }
  | { readonly kind: 'bytes'; readonly length?: Bound<L>; readonly min: number; readonly max?: Bound<L>; readonly below?: Bound<L>; readonly noun: string }
  | { readonly kind: 'list'; readonly of: Spec<L>; readonly min: number; readonly max: number; readonly noun: string }
  | { readonly kind: 'map'; readonly shape: CompiledShape }
  | { readonly kind: 'pick'; readonly select: (limits: L) => string; readonly options: { readonly [key: string]: Spec<L> } };

/**
 * One field: what it checks, whether it may be absent, and (`__type`, never set at run time) the
 * TypeScript type of its value. `L` is the limits type its bounds read (unknown: none).
 */
export interface Field<T, L = unknown, O extends boolean = boolean> {
  readonly spec: Spec<L>;
  readonly optional: O;
  readonly __type?: T;
}

/** A map of field names to fields: a message's payload, or a nested map such as welcome.data. */
export type Fields<L = unknown> = { readonly [name: string]: Field<unknown, L> };

/** The type of a field's value. */
export type Infer<F> = F extends Field<infer T, never, boolean> ? T : never;

type OptionalKeys<S> = { [K in keyof S]: S[K] extends { readonly optional: true } ? K : never }[keyof S];
/** Flattens an intersection into one object type (for readable hovers and errors). */
export type Simplify<T> = { [K in keyof T]: T[K] } & {};
/** The type of a value that passes a map of fields: required fields, then `name?:` optional ones. */
export type Shape<S> = Simplify<
  { -readonly [K in keyof S as K extends OptionalKeys<S> ? never : K]: Infer<S[K]> } & { -readonly [K in keyof S as K extends OptionalKeys<S> ? K : never]?: Infer<S[K]> }
>;

const field = <T, L = unknown>(spec: Spec<L>): Field<T, L, false> => ({ spec, optional: false });

export const MAX_TEXT = 4096;
export const MAX_U32 = 0xffffffff;

/** An integer in [min, max]. */
export const int = <L = unknown>(min = 0, max: Bound<L> = Number.MAX_SAFE_INTEGER) => field<number, L>({ kind: 'int', min, max });
/** A finite number >= min. */
export const finite = (min = -Infinity) => field<number>({ kind: 'finite', min, positive: false });
/** A finite number > 0. */
export const positive = () => field<number>({ kind: 'finite', min: 0, positive: true });
/** A string of at most maxLength characters. */
export const text = (maxLength = MAX_TEXT) => field<string>({ kind: 'text', maxLength });
export const bool = () => field<boolean>({ kind: 'bool' });
/** One of these strings. */
export const oneOf = <const C extends string>(choices: readonly C[]) => field<C>({ kind: 'oneOf', choices });
/** A string of at most maxLength characters matching `pattern`; `expected` says what in errors. */
export const pattern = (re: RegExp, expected: string, maxLength = MAX_TEXT) => field<string>({ kind: 'pattern', pattern: re, maxLength, expected });
/** A peer endpoint, ws://HOST:PORT (or wss://). */
export const url = () => pattern(/^wss?:\/\/[^/\s]+/, 'ws://HOST:PORT', 512);
/** Exactly `length` finite float32 values. `note` (e.g. the flag that chose this layout) goes into errors. */
export const float32s = <L = unknown>(length: Bound<L>, note = '') => field<Float32Array, L>({ kind: 'float32s', length, note });
/** Exactly `length` finite float64 values. */
export const float64s = <L = unknown>(length: Bound<L>, note = '') => field<Float64Array, L>({ kind: 'float64s', length, note });
/** Exactly `length` float16 bit patterns (Uint16Array), none of them Infinity or NaN. */
export const halves = <L = unknown>(length: Bound<L>, note = '') => field<Uint16Array, L>({ kind: 'halves', length, note });
/** At most maxLength uint32 values, each below `below`. */
export const uint32s = <L = unknown>(maxLength: Bound<L>, below: Bound<L>) => field<Uint32Array, L>({ kind: 'uint32s', maxLength, below });
/**
 * A Uint8Array: of exactly `length` bytes, or of min..max (either unbounded when absent), each
 * below `below` (when given). `noun` names the elements in errors ('bytes').
 */
export const bytes = <L = unknown>(o: { length?: Bound<L>; min?: number; max?: Bound<L>; below?: Bound<L>; noun?: string } = {}) =>
  field<Uint8Array, L>({ kind: 'bytes', length: o.length, min: o.min ?? 0, max: o.max, below: o.below, noun: o.noun ?? 'bytes' });
/** A plain array of min..max values, each checked as `of` (errors name `field[i]`). For short lists only. */
export const list = <T, L = unknown>(of: Field<T, L, false>, min: number, max: number, noun = 'values') =>
  field<T[], L>({ kind: 'list', of: of.spec, min, max, noun });
/** A nested map with exactly these fields (their bounds may not read the limits). */
export const map = <S extends Fields<null>>(fields: S) => field<Shape<S>>({ kind: 'map', shape: compileShape(fields) });
/**
 * One of several layouts, chosen by the receiver's limits (e.g. the gradient's float32 / float16 /
 * float64 by the job's compress and reduction): the value's type is the union of the options'.
 */
export const pick = <L, const K extends string, O extends { readonly [key in K]: Field<unknown, L, false> }>(select: (limits: L) => K, options: O) =>
  field<Infer<O[K]>, L>({ kind: 'pick', select, options: Object.fromEntries(Object.entries<Field<unknown, L>>(options).map(([k, f]) => [k, f.spec])) });
/** The same field, which may be absent (or undefined). */
export const optional = <T, L>(f: Field<T, L, false>): Field<T, L, true> => ({ spec: f.spec, optional: true });

// ---------------------------------------------------------------------------------------------
// The walker.

type Obj = Record<string, unknown>;

/** A map of fields prepared for the walker: an array to loop over and a set of the names. */
export interface CompiledShape {
  readonly entries: ReadonlyArray<{ readonly name: string; readonly spec: Spec<unknown>; readonly optional: boolean }>;
  readonly names: ReadonlySet<string>;
}

export function compileShape(fields: Fields<never>): CompiledShape {
  const entries = Object.entries(fields).map(([name, f]) => ({ name, spec: f.spec as Spec<unknown>, optional: f.optional }));
  return { entries, names: new Set(entries.map((e) => e.name)) };
}

export function bad(message: string): ProtocolError {
  return new ProtocolError('DDP_BAD_MESSAGE', message);
}

/** What arrived, in a few words (never the value of a long string or vector). */
export function describe(value: unknown): string {
  if (value === null) return 'null';
  if (value === undefined) return 'nothing';
  if (ArrayBuffer.isView(value)) return `${value.constructor.name} of ${(value as unknown as ArrayLike<unknown>).length ?? value.byteLength} elements`;
  if (Array.isArray(value)) return `an array of ${value.length}`;
  if (typeof value === 'number') return `${value}`;
  if (typeof value === 'string') return `a string of ${value.length} characters`;
  return typeof value === 'object' ? `${(value as object).constructor?.name ?? 'an object'}` : typeof value;
}

export function isPlainObject(value: unknown): value is Obj {
  return typeof value === 'object' && value !== null && !Array.isArray(value) && !ArrayBuffer.isView(value);
}

const hasOwn = (obj: object, name: string) => Object.prototype.hasOwnProperty.call(obj, name);

/**
 * Checks that `obj` has exactly the fields of `shape` (plus `type` when `typed`), then each value;
 * returns a fresh object with the declared fields only (absent optional fields left out). Errors
 * name `where.field`. Structure first: a missing or unexpected field is reported before any value.
 */
export function checkShape(obj: Obj, where: string, shape: CompiledShape, limits: unknown, typed: boolean): Obj {
  const entries = shape.entries;
  let own = typed ? 1 : 0;
  for (let i = 0; i < entries.length; i++) {
    const e = entries[i];
    if (obj[e.name] === undefined) {
      if (!e.optional) throw bad(`${where}: missing field '${e.name}'`);
      if (hasOwn(obj, e.name)) own++;
    } else if (hasOwn(obj, e.name)) own++;
    else throw bad(`${where}: missing field '${e.name}'`);
  }
  const keys = Object.keys(obj);
  if (keys.length !== own) {
    for (const k of keys) if (!shape.names.has(k) && !(typed && k === 'type')) throw bad(`${where}: unexpected field '${k.slice(0, 40)}'`);
  }
  const out: Obj = typed ? { type: obj.type } : {};
  for (let i = 0; i < entries.length; i++) {
    const e = entries[i];
    const v = obj[e.name];
    if (v !== undefined) out[e.name] = checkValue(e.spec, v, where, e.name, limits, out);
  }
  return out;
}

const bound = (b: Bound<any>, limits: unknown, earlier: Earlier): number => (typeof b === 'number' ? b : b(limits, earlier));

/**
 * Checks one value against a field (errors name `where.name`); returns it (a nested map: a fresh
 * copy). `earlier`: the fields of the same map already checked, for bounds that read them.
 */
export function checkValue(spec: Spec<any>, v: unknown, where: string, name: string, limits: unknown, earlier: Earlier): unknown {
  switch (spec.kind) {
    case 'int': {
      const max = bound(spec.max, limits, earlier);
      if (typeof v !== 'number' || !Number.isInteger(v) || v < spec.min || v > max) throw bad(`${where}.${name}: expected an integer in [${spec.min}, ${max}], got ${describe(v)}`);
      return v;
    }
    case 'finite':
      if (typeof v !== 'number' || !Number.isFinite(v) || v < spec.min || (spec.positive && !(v > 0))) {
        throw bad(`${where}.${name}: expected a ${spec.positive ? 'positive finite number' : `finite number${spec.min > -Infinity ? ` >= ${spec.min}` : ''}`}, got ${describe(v)}`);
      }
      return v;
    case 'text':
      if (typeof v !== 'string' || v.length > spec.maxLength) throw bad(`${where}.${name}: expected a string of at most ${spec.maxLength} characters, got ${describe(v)}`);
      return v;
    case 'bool':
      if (typeof v !== 'boolean') throw bad(`${where}.${name}: expected true or false, got ${describe(v)}`);
      return v;
    case 'oneOf':
      if (typeof v !== 'string' || !spec.choices.includes(v)) throw bad(`${where}.${name}: expected one of ${spec.choices.join(', ')}, got ${quoted(v, 40)}`);
      return v;
    case 'pattern':
      if (typeof v !== 'string' || v.length > spec.maxLength || !spec.pattern.test(v)) {
        const long = typeof v === 'string' && v.length > spec.maxLength;
        throw bad(`${where}.${name}: expected ${spec.expected}${long ? ` of at most ${spec.maxLength} characters` : ''}, got ${long ? describe(v) : quoted(v, 80)}`);
      }
      return v;
    case 'float32s':
      return float32sOf(v, where, name, bound(spec.length, limits, earlier), spec.note);
    case 'float64s':
      return float64sOf(v, where, name, bound(spec.length, limits, earlier), spec.note);
    case 'halves':
      return halvesOf(v, where, name, bound(spec.length, limits, earlier), spec.note);
    case 'uint32s':
      return uint32sOf(v, where, name, bound(spec.maxLength, limits, earlier), bound(spec.below, limits, earlier));
    case 'bytes':
      return bytesOf(v, where, name, spec, limits, earlier);
    case 'list': {
      if (!Array.isArray(v) || v.length < spec.min || v.length > spec.max) throw bad(`${where}.${name}: expected an array of ${spec.min}..${spec.max} ${spec.noun}, got ${describe(v)}`);
      for (let i = 0; i < v.length; i++) checkValue(spec.of, v[i], where, `${name}[${i}]`, limits, earlier);
      return v;
    }
    case 'map':
      if (!isPlainObject(v)) throw bad(`${where}.${name}: expected a map, got ${describe(v)}`);
      return checkShape(v, `${where}.${name}`, spec.shape, limits, false);
    case 'pick':
      return checkValue(spec.options[spec.select(limits)], v, where, name, limits, earlier);
  }
}

/** A string quoted (its first `max` characters), anything else described. */
const quoted = (v: unknown, max: number) => (typeof v === 'string' ? `'${v.slice(0, max)}'` : describe(v));
const withNote = (note: string) => (note ? ` (${note})` : '');

function float32sOf(v: unknown, where: string, name: string, length: number, note: string): Float32Array {
  if (!(v instanceof Float32Array) || v.length !== length) throw bad(`${where}.${name}: expected a Float32Array of ${length} values${withNote(note)}, got ${describe(v)}`);
  // One tight loop: `i < v.length` (not `length`) lets V8 drop the bounds checks, and the limit is a
  // literal (the largest float32). NaN fails the comparison; so does ±Infinity.
  for (let i = 0; i < v.length; i++) {
    if (!(Math.abs(v[i]) <= 3.4028234663852886e38)) throw bad(`${where}.${name}[${i}] is ${v[i]}, expected a finite number`);
  }
  return v;
}

function float64sOf(v: unknown, where: string, name: string, length: number, note: string): Float64Array {
  if (!(v instanceof Float64Array) || v.length !== length) throw bad(`${where}.${name}: expected a Float64Array of ${length} values${withNote(note)}, got ${describe(v)}`);
  for (let i = 0; i < v.length; i++) {
    if (!Number.isFinite(v[i])) throw bad(`${where}.${name}[${i}] is ${v[i]}, expected a finite number`);
  }
  return v;
}

/** Float16 bit patterns: exponent all ones is Infinity or NaN, which no gradient may carry. */
function halvesOf(v: unknown, where: string, name: string, length: number, note: string): Uint16Array {
  if (!(v instanceof Uint16Array) || v.length !== length) throw bad(`${where}.${name}: expected a Uint16Array of ${length} float16 values${withNote(note)}, got ${describe(v)}`);
  for (let i = 0; i < v.length; i++) {
    if ((v[i] & 0x7c00) === 0x7c00) throw bad(`${where}.${name}[${i}] is the float16 ${v[i] & 0x3ff ? 'NaN' : 'Infinity'} 0x${v[i].toString(16)}, expected a finite number`);
  }
  return v;
}

function uint32sOf(v: unknown, where: string, name: string, maxLength: number, below: number): Uint32Array {
  if (!(v instanceof Uint32Array) || v.length > maxLength) throw bad(`${where}.${name}: expected a Uint32Array of at most ${maxLength} values, got ${describe(v)}`);
  for (let i = 0; i < v.length; i++) {
    if (v[i] >= below) throw bad(`${where}.${name}[${i}] = ${v[i]} is not in [0, ${below - 1}]`);
  }
  return v;
}

function bytesOf(v: unknown, where: string, name: string, spec: Extract<Spec<any>, { kind: 'bytes' }>, limits: unknown, earlier: Earlier): Uint8Array {
  const length = spec.length === undefined ? undefined : bound(spec.length, limits, earlier);
  const max = spec.max === undefined ? Infinity : bound(spec.max, limits, earlier);
  if (!(v instanceof Uint8Array) || (length !== undefined ? v.length !== length : v.length < spec.min || v.length > max)) {
    const size = length !== undefined ? ` of ${length} ${spec.noun}` : spec.min > 0 || max < Infinity ? ` of ${spec.min}..${max} ${spec.noun}` : '';
    throw bad(`${where}.${name}: expected a Uint8Array${size}, got ${describe(v)}`);
  }
  const below = spec.below === undefined ? 256 : bound(spec.below, limits, earlier);
  if (below < 256) {
    for (let i = 0; i < v.length; i++) if (v[i] >= below) throw bad(`${where}.${name}[${i}] = ${v[i]} is not in [0, ${below - 1}]`);
  }
  return v;
}
