import { afterEach, describe, expect, it } from 'vitest';
import { envName, formatFlags, parseFlags, UsageError, withoutFlag, type FlagSpec } from './args.js';

describe('withoutFlag', () => {
  it('drops --name VALUE and --name=VALUE, keeps everything else in order', () => {
    expect(withoutFlag(['--workers', '2', '--epochs', '1', '--workers=3', '--workersx', 'y'], 'workers')).toEqual(['--epochs', '1', '--workersx', 'y']);
    expect(withoutFlag(['--log-format', 'text', '--out', 'd'], 'log-format')).toEqual(['--out', 'd']);
  });
});

describe('every flag from a DDP_* variable', () => {
  const SPECS: FlagSpec[] = [
    { name: 'batch-size', type: 'int', min: 1, default: 64, help: 'b' },
    { name: 'serve-data', type: 'bool', help: 's' },
    { name: 'token', type: 'string', env: 'DDP_TOKEN', help: 't' },
    { name: 'allreduce', type: 'string', choices: ['ring', 'star'], default: 'ring', help: 'a' },
  ];
  const set: string[] = [];
  const setEnv = (k: string, v: string) => {
    set.push(k);
    process.env[k] = v;
  };
  afterEach(() => {
    for (const k of set.splice(0)) delete process.env[k];
  });

  it('names the variable after the flag', () => {
    expect(envName('batch-size')).toBe('DDP_BATCH_SIZE');
    expect(envName('connect')).toBe('DDP_CONNECT');
  });

  it('takes the variable when the flag is absent; the command line wins; the default comes last', () => {
    expect(parseFlags([], SPECS).values).toMatchObject({ 'batch-size': 64, allreduce: 'ring' });
    setEnv('DDP_BATCH_SIZE', '32');
    setEnv('DDP_SERVE_DATA', '1');
    setEnv('DDP_ALLREDUCE', 'star');
    expect(parseFlags([], SPECS).values).toMatchObject({ 'batch-size': 32, 'serve-data': true, allreduce: 'star' });
    expect(parseFlags(['--batch-size', '16', '--allreduce=ring'], SPECS).values).toMatchObject({ 'batch-size': 16, allreduce: 'ring', 'serve-data': true });
    setEnv('DDP_SERVE_DATA', 'false');
    expect(parseFlags([], SPECS).values['serve-data']).toBe(false);
  });

  it('an empty variable counts as unset', () => {
    setEnv('DDP_BATCH_SIZE', '');
    expect(parseFlags([], SPECS).values['batch-size']).toBe(64);
  });

  it('a bad value names the variable and the flag', () => {
    setEnv('DDP_BATCH_SIZE', 'lots');
    expect(() => parseFlags([], SPECS)).toThrow(UsageError);
    expect(() => parseFlags([], SPECS)).toThrow(/DDP_BATCH_SIZE \(--batch-size\) expects an integer, got 'lots'/);
    setEnv('DDP_BATCH_SIZE', '8');
    setEnv('DDP_ALLREDUCE', 'tree');
    expect(() => parseFlags([], SPECS)).toThrow(/DDP_ALLREDUCE \(--allreduce\) must be one of ring, star, got 'tree'/);
  });

  it('a table that names its own variable keeps it', () => {
    setEnv('DDP_TOKEN', 's3cret');
    expect(parseFlags([], SPECS).values.token).toBe('s3cret');
  });

  it('--help lists the variable of every flag', () => {
    const help = formatFlags(SPECS);
    for (const v of ['DDP_BATCH_SIZE', 'DDP_SERVE_DATA', 'DDP_TOKEN', 'DDP_ALLREDUCE']) expect(help).toContain(`[env ${v}]`);
  });
});
