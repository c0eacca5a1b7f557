/**
 * A container's ddp flags as environment variables, named the way parseFlags reads them (envOf: the
 * flag's own variable, else DDP_FOO_BAR for --foo-bar), and checked against the flag table of the
 * command the container runs: a manifest cannot set a variable that no flag of that command reads.
 */
import { envOf, type FlagSpec } from '../args.js';

/** A Kubernetes EnvVar: a literal value or one read from a Secret. */
export type EnvVar =
  | { name: string; value: string }
  | { name: string; valueFrom: { secretKeyRef: { name: string; key: string; optional?: boolean } } }
  | { name: string; valueFrom: { fieldRef: { fieldPath: string } } };

/** A flag's value: literal, or a Secret's key (never written into the manifest). */
export type FlagSource = string | number | boolean | { secret: string; key: string; optional?: boolean };

/**
 * The env entries for `flags` (name -> value; undefined ones are left out), in the order given.
 * `pending` names flags that are not in `specs` yet but are read as DDP_* variables all the same
 * (flags being added elsewhere); anything else unknown is a bug in the caller.
 */
export function flagEnv(command: string, specs: readonly FlagSpec[], flags: Record<string, FlagSource | undefined>, pending: readonly string[] = []): EnvVar[] {
  const byName = new Map(specs.map((s) => [s.name, s]));
  const out: EnvVar[] = [];
  for (const [flag, source] of Object.entries(flags)) {
    if (source === undefined) continue;
    const spec = byName.get(flag) ?? (pending.includes(flag) ? ({ name: flag, type: 'string', help: '' } satisfies FlagSpec) : undefined);
    if (!spec) throw new Error(`ddp ${command} has no flag --${flag}: it cannot be set in its container`);
    const name = envOf(spec);
    out.push(typeof source === 'object' ? { name, valueFrom: { secretKeyRef: { name: source.secret, key: source.key, ...(source.optional ? { optional: true } : {}) } } } : { name, value: String(source) });
  }
  return out;
}
