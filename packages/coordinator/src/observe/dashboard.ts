/**
 * The live dashboard's files: GET / (dashboard/index.html) and GET /assets/* (the page's script and
 * style, and uPlot's from node_modules). No build step: the files sit in packages/coordinator/dashboard/
 * and are read from there (src/observe/ and dist/observe/ are both two levels below the package), once,
 * on the first request. Nothing comes from a CDN: the page works offline.
 */
import * as fs from 'node:fs';
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';

export interface Asset {
  body: Buffer;
  contentType: string;
}

const JS = 'text/javascript; charset=utf-8';
const CSS = 'text/css; charset=utf-8';
const own = (name: string) => fileURLToPath(new URL(`../../dashboard/${name}`, import.meta.url));
const fromNodeModules = (spec: string) => createRequire(import.meta.url).resolve(spec);

/** URL path under /assets/ -> where the file is and what it is. */
const ASSETS: Record<string, { file: () => string; contentType: string }> = {
  'dashboard.js': { file: () => own('dashboard.js'), contentType: JS },
  'dashboard.css': { file: () => own('dashboard.css'), contentType: CSS },
  'uplot.iife.min.js': { file: () => fromNodeModules('uplot/dist/uPlot.iife.min.js'), contentType: JS },
  'uPlot.min.css': { file: () => fromNodeModules('uplot/dist/uPlot.min.css'), contentType: CSS },
};

const cache = new Map<string, Asset>();

/** The asset served at /assets/NAME, or null when there is none by that name. Throws if its file is missing. */
export function dashboardAsset(name: string): Asset | null {
  const spec = Object.hasOwn(ASSETS, name) ? ASSETS[name] : undefined;
  if (!spec) return null;
  let asset = cache.get(name);
  if (!asset) {
    asset = { body: fs.readFileSync(spec.file()), contentType: spec.contentType };
    cache.set(name, asset);
  }
  return asset;
}

let page: string | null = null;

/**
 * The page, with `token` (the one the request presented, '' for none) passed on to the URLs it loads
 * (/assets/..., /events), since a browser sends no Authorization header for those.
 */
export function dashboardPage(token: string): string {
  page ??= fs.readFileSync(own('index.html'), 'utf8');
  const qs = token === '' ? '' : `?token=${encodeURIComponent(token).replace(/'/g, '%27')}`;
  return page.replaceAll('{{QS}}', qs);
}

/** The names under /assets/. */
export const ASSET_NAMES: readonly string[] = Object.keys(ASSETS);
