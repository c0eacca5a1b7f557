import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, expect, it } from 'vitest';
import { defaultResultFile, newestResultFile, readJsonFile, resultHeader, writeResultFile } from './results-file.js';

const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ddp-results-'));
afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

it('every result starts with the benchmark, the date and the one machine record', () => {
  const h = resultHeader('demo');
  expect(h.benchmark).toBe('demo');
  expect(Number.isNaN(Date.parse(h.date))).toBe(false);
  expect(Object.keys(h.machine).sort()).toEqual(
    ['backend', 'backendFlags', 'cpuModel', 'loadAverage', 'niceness', 'nodeVersion', 'nproc', 'platform', 'tfjsVersion', 'totalMemGiB'].sort(),
  );
  expect(h.machine.nproc).toBeGreaterThan(0);
  expect(h.machine.nodeVersion).toBe(process.version);
  expect(h.machine.loadAverage).toHaveLength(3);
});

it('writes indented JSON under new folders, and finds the newest result of a name by its time stamp', () => {
  const older = path.join(dir, path.basename(defaultResultFile('demo', new Date(2026, 0, 2, 3, 4, 5))));
  const newer = path.join(dir, path.basename(defaultResultFile('demo', new Date(2026, 0, 2, 3, 4, 6))));
  expect(path.basename(older)).toBe('demo-20260102-030405.json');
  expect(writeResultFile(newer, { a: 1 })).toBe(path.resolve(newer));
  writeResultFile(older, { a: 0 });
  writeResultFile(path.join(dir, 'demo-other-20270101-000000.json'), {});
  expect(newestResultFile('demo', dir)).toBe(newer);
  expect(newestResultFile('none', dir)).toBeUndefined();
  expect(readJsonFile(newer)).toEqual({ a: 1 });
  expect(fs.readFileSync(newer, 'utf8')).toBe('{\n  "a": 1\n}\n');
});

it('readJsonFile names the file that is missing or not JSON', () => {
  const bad = path.join(dir, 'bad.json');
  fs.writeFileSync(bad, '{');
  expect(() => readJsonFile(bad)).toThrow(new RegExp(`${bad} is not JSON`));
  expect(() => readJsonFile(path.join(dir, 'missing.json'))).toThrow(/cannot read .*missing\.json: ENOENT/);
});
