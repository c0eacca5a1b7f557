import { parse, parseAllDocuments } from 'yaml';
import { describe, expect, it } from 'vitest';
import { toYaml, yamlDocuments, yamlScalar } from './yaml.js';

describe('the YAML emitter', () => {
  it('writes strings that could be read as something else quoted, the rest plain', () => {
    for (const s of ['true', 'No', 'on', 'null', '~', '7070', '1Gi', '0.0.0.0', '-e', '', ' x', 'a: b', 'a #b', '*x', '&x', '!x', '[x]', '{x}', "it's", '"q"', '0x1F', '.5', 'a\nb', 'key:', '@x', '%x', '|', '>']) {
      expect(yamlScalar(s), s).toMatch(/^"/);
    }
    for (const s of ['ddp', 'ws://ddp-coordinator:7070', '/ddp/model', 'app.kubernetes.io/name', 'registry.example/ddp:1', 'ReadWriteOnce', 'DDP_TOKEN']) expect(yamlScalar(s), s).toBe(s);
  });

  it('round-trips nested objects, arrays, empty ones and awkward strings through a real YAML parser', () => {
    const value = {
      apiVersion: 'v1',
      n: 3,
      f: 0.001,
      neg: -2,
      yes: true,
      empty: {},
      none: [],
      list: ['a', 'true', '7070', { name: 'x', value: '1' }, [1, [2, 'no']], {}, []],
      nested: { deeper: { items: [{ a: { b: ['c'] }, d: 'e: f' }] } },
      'key with space': 'v',
      'a.b/c': "quote ' and \" and \\ and \t tab",
      script: "const x = (a) => process.exit(a ? 0 : 1); // #",
      unicode: 'é ü 漢字',
    };
    expect(parse(toYaml(value))).toEqual(value);
  });

  it('leaves undefined keys out and rejects numbers YAML cannot hold', () => {
    expect(parse(toYaml({ a: 1, b: undefined }))).toEqual({ a: 1 });
    expect(() => toYaml({ a: Number.NaN })).toThrow(/NaN/);
  });

  it('writes several documents after a comment block', () => {
    const text = yamlDocuments([{ a: 1 }, { b: ['x'] }], ['first line', '', 'third: with # and $(x)']);
    expect(text.startsWith('# first line\n#\n# third: with # and $(x)\n---\n')).toBe(true);
    const docs = parseAllDocuments(text);
    expect(docs.map((d) => d.toJS())).toEqual([{ a: 1 }, { b: ['x'] }]);
  });
});
