/**
 * A tiny YAML emitter for plain data (objects, arrays, strings, finite numbers, booleans): block
 * style, two-space indent, what kubectl users expect to read. Strings are written plain only when
 * that cannot be read as anything else; otherwise as JSON strings, which YAML reads as the same
 * double-quoted scalars. Enough for manifests; no dependency for a few dozen lines.
 */
export type YamlValue = string | number | boolean | null | readonly YamlValue[] | { readonly [key: string]: YamlValue | undefined };

// Words YAML 1.1 or 1.2 reads as booleans or null (kubectl's parser still knows the 1.1 ones).
const RESERVED = /^(true|false|yes|no|on|off|y|n|null|~)$/i;
// Plain only if it starts with a letter, digit or '/', holds no ': ' or ' #', and is not a number.
const PLAIN = /^[A-Za-z0-9/$(][A-Za-z0-9_./$()=-]*(:[A-Za-z0-9_./$()=-]+)*$/;
const NUMBER_LIKE = /^[-+]?(\.?[0-9]|0x|0o|\.inf|\.nan)/i;

export function yamlScalar(v: string | number | boolean | null): string {
  if (v === null) return 'null';
  if (typeof v === 'boolean') return String(v);
  if (typeof v === 'number') {
    if (!Number.isFinite(v)) throw new Error(`yaml: cannot write the number ${v}`);
    return String(v);
  }
  return PLAIN.test(v) && !RESERVED.test(v) && !NUMBER_LIKE.test(v) ? v : JSON.stringify(v);
}

const isScalar = (v: YamlValue): v is string | number | boolean | null => v === null || typeof v !== 'object';
const isEmpty = (v: YamlValue) => !isScalar(v) && (Array.isArray(v) ? v.length === 0 : entries(v).length === 0);
const entries = (v: YamlValue) => Object.entries(v as Record<string, YamlValue | undefined>).filter((e): e is [string, YamlValue] => e[1] !== undefined);
const inline = (v: YamlValue) => (isScalar(v) ? yamlScalar(v) : Array.isArray(v) ? '[]' : '{}');

function block(v: YamlValue, indent: string): string[] {
  const lines: string[] = [];
  if (Array.isArray(v)) {
    for (const item of v as YamlValue[]) {
      if (isScalar(item) || isEmpty(item)) {
        lines.push(`${indent}- ${inline(item)}`);
        continue;
      }
      // The item's first line goes on the dash; the rest keep the item's indent.
      const inner = block(item, `${indent}  `);
      lines.push(`${indent}- ${inner[0]!.slice(indent.length + 2)}`, ...inner.slice(1));
    }
    return lines;
  }
  for (const [key, value] of entries(v)) {
    const k = yamlScalar(key);
    if (isScalar(value) || isEmpty(value)) lines.push(`${indent}${k}: ${inline(value)}`);
    // Sequences under a key are not indented further (kubectl's own style).
    else lines.push(`${indent}${k}:`, ...block(value, Array.isArray(value) ? indent : `${indent}  `));
  }
  return lines;
}

/** One YAML document for `value` (an object or array), ending in a newline. */
export function toYaml(value: YamlValue): string {
  if (isScalar(value) || isEmpty(value)) return `${inline(value)}\n`;
  return `${block(value, '').join('\n')}\n`;
}

/** Several documents, `---` between them, after `comments` (each line prefixed with '# '). */
export function yamlDocuments(docs: readonly YamlValue[], comments: readonly string[] = []): string {
  const head = comments.map((c) => (c === '' ? '#' : `# ${c}`)).join('\n');
  const body = docs.map(toYaml).join('---\n');
  return head === '' ? body : `${head}\n---\n${body}`;
}
