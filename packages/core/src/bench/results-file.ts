/**
 * Where benchmark results go: bench/results/<name>-<YYYYMMDD-HHMMSS>.json under the workspace root,
 * each starting with the same header (benchmark, date, machine), so that a figure can be traced
 * and rerun. Every benchmark, here and in `ddp bench`, writes through this module.
 */
import fs from 'node:fs';
import path from 'node:path';
import { machineInfo, type MachineInfo } from './machine-info.js';

/** The fields every result file starts with. */
export interface ResultHeader<B extends string = string> {
  benchmark: B;
  /** When the result was recorded (ISO 8601). */
  date: string;
  machine: MachineInfo;
}

/** The header for a result recorded now, on this machine. */
export function resultHeader<B extends string>(benchmark: B): ResultHeader<B> {
  return { benchmark, date: new Date().toISOString(), machine: machineInfo() };
}

/** The workspace root (the folder holding nx.json), searched upward from `from`. */
export function workspaceRoot(from: string = process.cwd()): string {
  for (let dir = path.resolve(from); ; dir = path.dirname(dir)) {
    if (fs.existsSync(path.join(dir, 'nx.json'))) return dir;
    if (path.dirname(dir) === dir) return path.resolve(from);
  }
}

export function resultsDir(): string {
  return path.join(workspaceRoot(), 'bench', 'results');
}

function timestamp(when: Date): string {
  const p = (n: number) => String(n).padStart(2, '0');
  return `${when.getFullYear()}${p(when.getMonth() + 1)}${p(when.getDate())}-${p(when.getHours())}${p(when.getMinutes())}${p(when.getSeconds())}`;
}

/** bench/results/<name>-<YYYYMMDD-HHMMSS>.json under the workspace root. */
export function defaultResultFile(name: string, when: Date = new Date()): string {
  return path.join(resultsDir(), `${name}-${timestamp(when)}.json`);
}

/** Writes `value` as indented JSON, creating folders; returns the absolute path. */
export function writeResultFile(file: string, value: unknown): string {
  const abs = path.resolve(file);
  fs.mkdirSync(path.dirname(abs), { recursive: true });
  fs.writeFileSync(abs, JSON.stringify(value, null, 2) + '\n');
  return abs;
}

/** The newest bench/results/<name>-*.json by the time stamp in its name, or undefined. */
export function newestResultFile(name: string, dir: string = resultsDir()): string | undefined {
  let names: string[];
  try {
    names = fs.readdirSync(dir);
  } catch {
    return undefined;
  }
  const pattern = new RegExp(`^${name}-(\\d{8}-\\d{6})\\.json$`);
  const hits = names.filter((n) => pattern.test(n)).sort();
  return hits.length ? path.join(dir, hits[hits.length - 1]!) : undefined;
}

/** Reads a JSON file, with an error naming the file when it is missing or not JSON. */
export function readJsonFile(file: string): unknown {
  let text: string;
  try {
    text = fs.readFileSync(file, 'utf8');
  } catch (err) {
    throw new ResultFileError(`cannot read ${file}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
  }
  try {
    return JSON.parse(text);
  } catch (err) {
    throw new ResultFileError(`${file} is not JSON: ${(err as Error).message}`);
  }
}

/** A benchmark result file given by the user cannot be read: a usage error, not a bug. */
export class ResultFileError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'ResultFileError';
  }
}
