import fs from 'node:fs';
import path from 'node:path';

/** The workspace root (the folder with nx.json), searched upward from the working directory. */
export function repoRoot(from: string = process.cwd()): string {
  for (let dir = path.resolve(from); ; dir = path.dirname(dir)) {
    if (fs.existsSync(path.join(dir, 'nx.json'))) return dir;
    if (path.dirname(dir) === dir) return path.resolve(from);
  }
}

/** `bench/results/<name>-<YYYYMMDD-HHMMSS>.json` under the workspace root. */
export function defaultResultPath(name: string, when: Date = new Date()): string {
  const p = (n: number) => String(n).padStart(2, '0');
  const stamp = `${when.getFullYear()}${p(when.getMonth() + 1)}${p(when.getDate())}-${p(when.getHours())}${p(when.getMinutes())}${p(when.getSeconds())}`;
  return path.join(repoRoot(), 'bench', 'results', `${name}-${stamp}.json`);
}

export function writeJsonResult(file: string, value: unknown): string {
  fs.mkdirSync(path.dirname(path.resolve(file)), { recursive: true });
  fs.writeFileSync(file, JSON.stringify(value, null, 2) + '\n');
  return path.resolve(file);
}
