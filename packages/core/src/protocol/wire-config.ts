/**
 * The training settings that travel from the coordinator's flags to every worker, declared once.
 * Each entry gives the flag that sets it, its choices or bounds, its default and its help; from
 * this one table come the TypeScript type, the defaults, the CLI flags (cli/src/training-flags.ts
 * maps the table), the welcome message's `config` field and its validation. A new setting that
 * workers must know is one entry here, plus the code that uses it and its test.
 */
import { COMPRESSION_MODES } from '../allreduce/allreduce-options.js';
import { REDUCTIONS } from '../model/reduction.js';
import { int, oneOf, type Field } from './schema.js';

/** How gradients are reduced: at the coordinator ('star'), or by the workers among themselves ('ring'). */
export const ALLREDUCE_MODES = ['star', 'ring'] as const;
export type AllreduceMode = (typeof ALLREDUCE_MODES)[number];

/** How gradients travel: float32, or rounded to float16 (half the bytes). */
export const COMPRESSIONS = COMPRESSION_MODES;

interface ChoiceSetting<T extends string> {
  flag: string;
  choices: readonly T[];
  default: T;
  help: string;
}
interface IntSetting {
  flag: string;
  min: number;
  max: number;
  default: number;
  help: string;
}

export const WIRE_SETTINGS = {
  allreduce: {
    flag: 'allreduce',
    choices: ALLREDUCE_MODES,
    default: 'ring',
    help: 'ring: the workers draw their own shards, reduce among themselves over direct links and each applies Adam to its replica (the coordinator is off the step\'s path); star: the coordinator adds the gradients and applies Adam',
  } satisfies ChoiceSetting<AllreduceMode>,
  compress: {
    flag: 'compress',
    choices: COMPRESSIONS,
    default: 'none',
    help: 'fp16: gradients travel as float16 (half the bytes; sums are still added in float32); it cannot be exact, so without --reduction it selects --reduction fast, and with --reduction exact it is refused',
  } satisfies ChoiceSetting<(typeof COMPRESSIONS)[number]>,
  reduction: {
    flag: 'reduction',
    choices: REDUCTIONS,
    default: 'exact',
    help: 'exact: every batch is computed in fixed micro-shards of 16 samples whose float32 gradient and loss sums are added exactly and rounded once, so any number of workers, star or ring, with workers lost or joining, gives the weights and losses of `ddp train --workers 0` bit for bit (same backend on every process); fast: float32 sums inside the kernels and across workers, so the bits depend on the split (equal to one process only up to float rounding). Default: exact, or fast with --compress fp16 (which cannot be exact)',
  } satisfies ChoiceSetting<(typeof REDUCTIONS)[number]>,
  hashEvery: {
    flag: 'hash-every',
    min: 1,
    max: 1_000_000,
    default: 50,
    help: 'ring mode: the workers report a hash of their weights every N steps (and at every evaluation), and the coordinator checks that all agree',
  } satisfies IntSetting,
} as const;

type Settings = typeof WIRE_SETTINGS;
export type WireConfig = {
  -readonly [K in keyof Settings]: Settings[K] extends { choices: readonly (infer C)[] } ? C : number;
};
export type WireSettingName = keyof WireConfig;
export const WIRE_SETTING_NAMES = Object.keys(WIRE_SETTINGS) as WireSettingName[];

/** The welcome's `config` map, field by field (schema.ts): each setting's choices or bounds. */
export const WIRE_FIELDS = Object.fromEntries(
  WIRE_SETTING_NAMES.map((name) => {
    const s: ChoiceSetting<string> | IntSetting = WIRE_SETTINGS[name];
    return [name, 'choices' in s ? oneOf(s.choices) : int(s.min, s.max)];
  }),
) as { readonly [K in WireSettingName]: Field<WireConfig[K], unknown, false> };

/** Every setting at its default. */
export const DEFAULT_WIRE: Readonly<WireConfig> = Object.freeze(
  Object.fromEntries(WIRE_SETTING_NAMES.map((k) => [k, WIRE_SETTINGS[k].default])) as WireConfig,
);

/**
 * The reduction when none is given: exact, except with fp16 compression, which rounds every partial
 * sum to float16 on its way and so cannot be exact: there it is fast. An explicit exact with fp16 is
 * refused by wireConflict.
 */
export const defaultReduction = (compress: WireConfig['compress']): WireConfig['reduction'] =>
  compress === 'none' ? WIRE_SETTINGS.reduction.default : 'fast';

/** The defaults with some settings replaced (a reduction left out follows defaultReduction). */
export const wireConfig = (over: Partial<WireConfig> = {}): WireConfig => {
  const c = { ...DEFAULT_WIRE, ...over };
  return over.reduction === undefined ? { ...c, reduction: defaultReduction(c.compress) } : c;
};

/** Why a combination of settings cannot run, or null. */
export function wireConflict(c: WireConfig): string | null {
  if (c.reduction === 'exact' && c.compress !== 'none') {
    return '--reduction exact cannot be combined with --compress fp16 (float16 rounds each partial sum on its way, so the result would depend on the split again): give --reduction fast, or leave --reduction out and --compress fp16 selects it';
  }
  return null;
}
