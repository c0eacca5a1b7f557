import { afterEach, describe, expect, it } from 'vitest';
import { formatFlags, parseFlags } from './args.js';
import { WIRE_FLAGS, wireConfigFromFlags } from './training-flags.js';

const config = (argv: string[]) => wireConfigFromFlags(parseFlags(argv, WIRE_FLAGS).values);

describe('the reduction flag: exact by default, fast with --compress fp16 unless given', () => {
  const saved = { DDP_REDUCTION: process.env.DDP_REDUCTION, DDP_COMPRESS: process.env.DDP_COMPRESS };
  afterEach(() => {
    for (const [k, v] of Object.entries(saved)) {
      if (v === undefined) delete process.env[k];
      else process.env[k] = v;
    }
  });
  const clean = () => {
    delete process.env.DDP_REDUCTION;
    delete process.env.DDP_COMPRESS;
  };

  it('left out: exact; with --compress fp16 (flag or DDP_COMPRESS): fast', () => {
    clean();
    expect(config([])).toMatchObject({ reduction: 'exact', compress: 'none' });
    expect(config(['--compress', 'fp16'])).toMatchObject({ reduction: 'fast', compress: 'fp16' });
    process.env.DDP_COMPRESS = 'fp16';
    expect(config([])).toMatchObject({ reduction: 'fast', compress: 'fp16' });
  });

  it('given (flag or DDP_REDUCTION): kept as given, exact with fp16 included (wireConflict refuses it)', () => {
    clean();
    expect(config(['--reduction', 'fast']).reduction).toBe('fast');
    expect(config(['--reduction', 'exact', '--compress', 'fp16']).reduction).toBe('exact');
    process.env.DDP_REDUCTION = 'exact';
    expect(config(['--compress', 'fp16']).reduction).toBe('exact');
    expect(config(['--reduction', 'fast', '--compress', 'fp16']).reduction).toBe('fast');
  });

  it('the help says the default and the fp16 rule', () => {
    const help = formatFlags(WIRE_FLAGS);
    expect(help).toMatch(/--reduction fast\|exact/);
    expect(help).toMatch(/Default: exact, or fast with --compress fp16/);
    expect(help).toMatch(/without --reduction it selects --reduction fast/);
  });
});
