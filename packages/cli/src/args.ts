/**
 * A small, strict flag parser: every command declares its flags once, and the same table gives
 * the parsing, the validation and the --help text, so the help cannot drift from what is accepted.
 */
export type FlagType = 'string' | 'int' | 'number' | 'bool';

export interface FlagSpec {
  name: string;
  type: FlagType;
  help: string;
  default?: string | number | boolean;
  choices?: readonly string[];
  /** For int/number: the smallest accepted value. */
  min?: number;
  /** For int/number: the largest accepted value. */
  max?: number;
  /** Placeholder in help, e.g. DIR. */
  metavar?: string;
  /** Environment variable read when the flag is absent (default: envName(name), e.g. DDP_BATCH_SIZE). */
  env?: string;
}

/**
 * The variable every flag can also be set by, for containers and schedulers: --batch-size is
 * DDP_BATCH_SIZE. A flag given on the command line wins over its variable, which wins over the default.
 */
export function envName(flag: string): string {
  return `DDP_${flag.toUpperCase().replace(/-/g, '_')}`;
}

/** The variable a flag reads: its own `env`, else envName(name). */
export const envOf = (spec: FlagSpec): string => spec.env ?? envName(spec.name);

export type FlagValues = Record<string, string | number | boolean | undefined>;

/** A mistake in how the command was called: one line on stderr, exit code 2. */
export class UsageError extends Error {
  readonly exitCode = 2;
}

function convert(spec: FlagSpec, raw: string, from?: string): string | number | boolean {
  const where = from ?? `--${spec.name}`;
  switch (spec.type) {
    case 'bool':
      if (raw === 'true' || raw === '' || raw === '1') return true;
      if (raw === 'false' || raw === '0') return false;
      throw new UsageError(`${where} takes no value or true/false, got '${raw}'`);
    case 'int':
    case 'number': {
      const n = Number(raw);
      if (raw.trim() === '' || !Number.isFinite(n) || (spec.type === 'int' && !Number.isInteger(n))) {
        throw new UsageError(`${where} expects ${spec.type === 'int' ? 'an integer' : 'a number'}, got '${raw}'`);
      }
      if (spec.min !== undefined && n < spec.min) throw new UsageError(`${where} must be at least ${spec.min}, got ${n}`);
      if (spec.max !== undefined && n > spec.max) throw new UsageError(`${where} must be at most ${spec.max}, got ${n}`);
      return n;
    }
    case 'string':
      if (spec.choices && !spec.choices.includes(raw)) {
        throw new UsageError(`${where} must be one of ${spec.choices.join(', ')}, got '${raw}'`);
      }
      return raw;
  }
}

export interface Parsed {
  values: FlagValues;
  positionals: string[];
  help: boolean;
}

export function parseFlags(argv: readonly string[], specs: readonly FlagSpec[], opts: { positionals?: number } = {}): Parsed {
  const byName = new Map(specs.map((s) => [s.name, s]));
  const values: FlagValues = {};
  const positionals: string[] = [];
  let help = false;
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i];
    if (arg === '--help' || arg === '-h') {
      help = true;
      continue;
    }
    if (!arg.startsWith('--')) {
      positionals.push(arg);
      continue;
    }
    const eq = arg.indexOf('=');
    const name = arg.slice(2, eq === -1 ? undefined : eq);
    const spec = byName.get(name);
    if (!spec) throw new UsageError(`unknown flag --${name} (see --help)`);
    let raw: string;
    if (eq !== -1) raw = arg.slice(eq + 1);
    else if (spec.type === 'bool') raw = '';
    else {
      if (i + 1 >= argv.length || (argv[i + 1].startsWith('--') && argv[i + 1] !== '--')) {
        throw new UsageError(`--${name} needs a value`);
      }
      raw = argv[++i];
    }
    values[name] = convert(spec, raw);
  }
  for (const spec of specs) {
    if (values[spec.name] !== undefined) continue;
    const variable = envOf(spec);
    const fromEnv = process.env[variable];
    if (fromEnv !== undefined && fromEnv !== '') values[spec.name] = convert(spec, fromEnv, `${variable} (--${spec.name})`);
    else if (spec.default !== undefined) values[spec.name] = spec.default;
  }
  if (!help && opts.positionals !== undefined && positionals.length > opts.positionals) {
    throw new UsageError(`unexpected argument '${positionals[opts.positionals]}'`);
  }
  return { values, positionals, help };
}

/**
 * parseFlags for a command that takes no positionals and prints `help` on --help: the flag values,
 * or undefined when the help was printed (the command then exits 0).
 */
export function parseOrHelp(argv: readonly string[], specs: readonly FlagSpec[], help: string): FlagValues | undefined {
  const parsed = parseFlags(argv, specs, { positionals: 0 });
  if (parsed.help) {
    console.log(help);
    return undefined;
  }
  return parsed.values;
}

/** The flag table as help text. */
export function formatFlags(specs: readonly FlagSpec[]): string {
  const rows = specs.map((s) => {
    const meta = s.type === 'bool' ? '' : ` ${s.metavar ?? (s.choices ? s.choices.join('|') : s.type === 'string' ? 'VALUE' : 'N')}`;
    const dflt = s.default !== undefined && s.type !== 'bool' ? ` (default: ${s.default})` : '';
    const env = ` [env ${envOf(s)}]`;
    return [`  --${s.name}${meta}`, `${s.help}${dflt}${env}`];
  });
  const width = Math.min(34, Math.max(...rows.map((r) => r[0].length)) + 2);
  return rows.map(([a, b]) => (a.length + 2 > width ? `${a}\n${' '.repeat(width)}${b}` : a.padEnd(width) + b)).join('\n');
}

/** `argv` without flag `--name` (as `--name VALUE` or `--name=VALUE`): for flags passed on to a child command. */
export function withoutFlag(argv: readonly string[], name: string): string[] {
  const out: string[] = [];
  for (let i = 0; i < argv.length; i++) {
    if (argv[i] === `--${name}`) {
      i++;
      continue;
    }
    if (!argv[i]!.startsWith(`--${name}=`)) out.push(argv[i]!);
  }
  return out;
}

export const str = (v: FlagValues, k: string): string | undefined => (v[k] === undefined ? undefined : String(v[k]));

/** A flag that has a default in its table: parseFlags always set it (its default is written there, once). */
export function numOf(v: FlagValues, k: string): number {
  if (v[k] === undefined) throw new Error(`--${k} has no value and no default: the flag table must give one`);
  return Number(v[k]);
}
export function strOf(v: FlagValues, k: string): string {
  if (v[k] === undefined) throw new Error(`--${k} has no value and no default: the flag table must give one`);
  return String(v[k]);
}
export const num = (v: FlagValues, k: string): number | undefined => (v[k] === undefined ? undefined : Number(v[k]));
