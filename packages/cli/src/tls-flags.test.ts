import { describe, expect, it } from 'vitest';
import { UsageError } from './args.js';
import { certKeyFiles } from './tls-flags.js';

describe('certKeyFiles', () => {
  it('gives both files, nothing without either, and refuses one without the other', () => {
    expect(certKeyFiles({})).toBeUndefined();
    expect(certKeyFiles({ 'tls-cert': 'n.crt', 'tls-key': 'n.key' })).toEqual({ cert: 'n.crt', key: 'n.key' });
    expect(() => certKeyFiles({ 'tls-cert': 'n.crt' })).toThrow(new UsageError('--tls-cert needs --tls-key too'));
    expect(() => certKeyFiles({ 'tls-key': 'n.key' })).toThrow(new UsageError('--tls-key needs --tls-cert too'));
  });
});
