import { describe, expect, it } from 'vitest';
import { withoutFlag } from './args.js';

describe('withoutFlag', () => {
  it('drops --name VALUE and --name=VALUE, keeps everything else in order', () => {
    expect(withoutFlag(['--workers', '2', '--epochs', '1', '--workers=3', '--workersx', 'y'], 'workers')).toEqual(['--epochs', '1', '--workersx', 'y']);
    expect(withoutFlag(['--log-format', 'text', '--out', 'd'], 'log-format')).toEqual(['--out', 'd']);
  });
});
