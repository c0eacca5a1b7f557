/**
 * Renders a vega-lite spec to SVG (vega-lite compiles it to a vega spec, vega renders it headless in
 * Node) and the SVG to PNG (resvg, a Rust SVG renderer shipped as prebuilt binaries in npm packages).
 *
 * Fonts: SVG names the font and the viewer picks one, but resvg draws text only with fonts it was
 * given. It gets DejaVu Sans (Debian's fonts-dejavu-core, in the build machines' image; CI:
 * `apt-get install -y fonts-dejavu-core`) when found at one of the usual paths, or the file given
 * with --font, and the system's fonts besides. Without any font the PNG has no text: fontWarning()
 * says so.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import * as vega from 'vega';
import { compile, type TopLevelSpec } from 'vega-lite';
import { Resvg } from '@resvg/resvg-js';

/** Where distributions put DejaVu Sans (Debian/Ubuntu, Fedora, Arch, Alpine, Homebrew). */
export const DEJAVU_SANS_PATHS = [
  '/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf',
  '/usr/share/fonts/dejavu-sans-fonts/DejaVuSans.ttf',
  '/usr/share/fonts/TTF/DejaVuSans.ttf',
  '/usr/share/fonts/dejavu/DejaVuSans.ttf',
  '/opt/homebrew/share/fonts/DejaVuSans.ttf',
];

export interface FontChoice {
  /** A TTF/OTF file resvg loads first, if one was found or given. */
  file: string | undefined;
  /** Its family, used for every text of the charts. */
  family: string | undefined;
}

/** The font for PNG text: `given` (--font) if set, else DejaVu Sans where the system keeps it. */
export function chooseFont(given?: string): FontChoice {
  if (given !== undefined) return { file: given, family: undefined };
  const file = DEJAVU_SANS_PATHS.find((p) => fs.existsSync(p));
  return { file, family: file ? 'DejaVu Sans' : undefined };
}

/** A line for stderr when the PNGs may come out without text, else undefined. */
export function fontWarning(font: FontChoice): string | undefined {
  if (font.file) return undefined;
  return `no DejaVu Sans found (${DEJAVU_SANS_PATHS[0]}; Debian: apt-get install fonts-dejavu-core): the PNGs use the system's fonts, and have no text if it has none (--font FILE.ttf picks one)`;
}

/** The spec as SVG text. */
export async function specToSvg(spec: TopLevelSpec): Promise<string> {
  const view = new vega.View(vega.parse(compile(spec).spec), { renderer: 'none' });
  try {
    return await view.toSVG();
  } finally {
    view.finalize();
  }
}

/** SVG text as PNG bytes, at `scale` times the SVG's size, on white. */
export function svgToPng(svg: string, font: FontChoice, scale = 2): Buffer {
  const resvg = new Resvg(svg, {
    fitTo: { mode: 'zoom', value: scale },
    background: 'white',
    font: {
      loadSystemFonts: true,
      fontFiles: font.file ? [font.file] : [],
      ...(font.family ? { defaultFontFamily: font.family, sansSerifFamily: font.family } : {}),
    },
  });
  return resvg.render().asPng();
}

/** Writes `<base>.svg` and `<base>.png`; returns their paths. */
export async function writeChart(spec: TopLevelSpec, base: string, font: FontChoice): Promise<{ svg: string; png: string }> {
  const svg = await specToSvg(spec);
  fs.mkdirSync(path.dirname(base), { recursive: true });
  const files = { svg: `${base}.svg`, png: `${base}.png` };
  fs.writeFileSync(files.svg, svg);
  fs.writeFileSync(files.png, svgToPng(svg, font));
  return files;
}

/**
 * A benchmark's plot beside its JSON result: bench/results/x.json gets x.svg and x.png. Returns the
 * lines to log (the files, and the font warning if any).
 */
export async function writePlotBeside(jsonFile: string, spec: TopLevelSpec): Promise<string[]> {
  const font = chooseFont();
  const base = jsonFile.endsWith('.json') ? jsonFile.slice(0, -'.json'.length) : jsonFile;
  const files = await writeChart(spec, base, font);
  const warning = fontWarning(font);
  return [`plotted ${files.svg} and ${path.basename(files.png)}`, ...(warning ? [`warning: ${warning}`] : [])];
}
