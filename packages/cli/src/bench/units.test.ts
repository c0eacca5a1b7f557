import { describe, expect, it } from 'vitest';
import { UsageError } from '../args.js';
import { formatBandwidth, formatDuration, parseBandwidth, parseChoiceList, parseCountList, parseDuration, parseSizeList } from './units.js';

describe('bench units', () => {
  it('reads bandwidths in bits (decimal) and bytes (decimal and binary)', () => {
    const cases: Array<[string, number]> = [
      ['10Gbit', 1.25e9],
      ['10 Gbit/s', 1.25e9],
      ['10Gbps', 1.25e9],
      ['10Gb/s', 1.25e9],
      ['100Mbit', 12.5e6],
      ['1.5kbit', 187.5],
      ['800bit', 100],
      ['1.25GB/s', 1.25e9],
      ['3MB/s', 3e6],
      ['2KB/s', 2000],
      ['7B/s', 7],
      ['1GiB/s', 2 ** 30],
      ['2MiB/s', 2 * 2 ** 20],
      ['1e3Mbit', 1.25e8],
    ];
    for (const [raw, want] of cases) expect(parseBandwidth('bandwidth', raw), raw).toBeCloseTo(want, 6);
    for (const bad of ['10', '10 furlongs', 'Gbit', '0Gbit', '10Gib', '10 iB/s']) expect(() => parseBandwidth('bandwidth', bad), bad).toThrow(UsageError);
    expect(() => parseBandwidth('bandwidth', '10 parsecs')).toThrow(/--bandwidth: unknown unit 'parsecs' in '10 parsecs'/);
  });

  it('reads latencies', () => {
    expect(parseDuration('latency', '50us')).toBeCloseTo(50e-6, 15);
    expect(parseDuration('latency', '50µs')).toBeCloseTo(50e-6, 15);
    expect(parseDuration('latency', '0.2ms')).toBeCloseTo(2e-4, 15);
    expect(parseDuration('latency', '1.5 s')).toBe(1.5);
    expect(parseDuration('latency', '300ns')).toBeCloseTo(3e-7, 15);
    expect(() => parseDuration('latency', '50')).toThrow(/--latency: unknown unit '\(none\)' in '50' \(accepted: ns, us, ms, s\)/);
    expect(() => parseDuration('latency', 'soon')).toThrow(UsageError);
  });

  it('reads worker counts as doubling ranges and lists', () => {
    expect(parseCountList('workers', '2..256', 1)).toEqual([2, 4, 8, 16, 32, 64, 128, 256]);
    expect(parseCountList('workers', '3..20', 1)).toEqual([3, 6, 12, 20]);
    expect(parseCountList('workers', '1,2,8', 1)).toEqual([1, 2, 8]);
    expect(parseCountList('workers', '2,2..4', 1)).toEqual([2, 4]);
    expect(() => parseCountList('workers', '8..2', 1)).toThrow(/ends before it starts/);
    expect(() => parseCountList('workers', '1', 2)).toThrow(/--workers: 1 is out of range \[2, /);
    expect(() => parseCountList('workers', 'two', 1)).toThrow(/'two' is not a whole number/);
  });

  it('reads sizes and choice lists', () => {
    expect(parseSizeList('sizes', '93322,1e6,10000000')).toEqual([93322, 1e6, 1e7]);
    expect(() => parseSizeList('sizes', '1.5')).toThrow(/--sizes: '1.5' is not a whole number/);
    expect(() => parseSizeList('sizes', '1,,2')).toThrow(UsageError);
    expect(parseChoiceList('algo', 'ring,star,ring', ['star', 'ring'])).toEqual(['ring', 'star']);
    expect(() => parseChoiceList('algo', 'tree', ['star', 'ring'])).toThrow(/--algo: 'tree' is not one of star, ring/);
  });

  it('formats what it reads back to the same quantity', () => {
    for (const raw of ['10Gbit', '100Mbit', '1.5Gbit', '64Kbit']) expect(parseBandwidth('b', formatBandwidth(parseBandwidth('b', raw)).replace(' ', ''))).toBeCloseTo(parseBandwidth('b', raw), 3);
    for (const raw of ['50us', '2ms', '1.5s', '300ns']) expect(parseDuration('l', formatDuration(parseDuration('l', raw)).replace(' ', ''))).toBeCloseTo(parseDuration('l', raw), 12);
  });
});
