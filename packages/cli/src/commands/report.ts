import * as fs from 'node:fs';
import * as path from 'node:path';
import { formatFlags, parseFlags, str, UsageError, type FlagSpec } from '../args.js';
import { readRunEvents } from '../report/read-run.js';
import { runCharts } from '../report/specs.js';
import { chooseFont, fontWarning, writeChart } from '../report/render.js';

const FLAGS: readonly FlagSpec[] = [
  { name: 'out', type: 'string', metavar: 'DIR', help: 'folder for the plots (created if missing; default: beside RUN.ndjson, RUN-report/)' },
  { name: 'font', type: 'string', metavar: 'FILE', help: 'TTF/OTF font for the PNGs\' text (default: DejaVu Sans where the system keeps it)' },
];

export const REPORT_HELP = `Usage: ddp report RUN.ndjson [--out DIR]

Plots a training run from the events it printed with --log-format json
(ddp train ... --log-format json > RUN.ndjson), each as DIR/NAME.svg and DIR/NAME.png:

  loss         the loss of every step (step events)
  accuracy     test accuracy per epoch (epoch events)
  throughput   samples/s per epoch: the epoch's samples over its epoch event's seconds, which include
               the epoch's evaluation (step events carry no times); and the done event's samplesPerSec
               (training time only) as a dashed rule
  breakdown    mean ms per step by phase (compute, allreduce, waiting, optimizer, ...) from the done
               event, as a stacked bar; ddp averages the phases over the workers, so a run has one bar

A plot whose events the file lacks (a run stopped by --max-steps inside an epoch has no epoch event;
a run that did not finish has no done event) is skipped with a note. A missing or empty file, a line
that is not JSON or a file without step events is an error (exit 2).

Flags:
${formatFlags(FLAGS)}`;

export async function runReportCommand(argv: string[]): Promise<number> {
  const parsed = parseFlags(argv, FLAGS, { positionals: 1 });
  if (parsed.help) {
    console.log(REPORT_HELP);
    return 0;
  }
  const file = parsed.positionals[0];
  if (file === undefined) throw new UsageError('ddp report needs the NDJSON file of a run (ddp train ... --log-format json > RUN.ndjson; see ddp report --help)');
  const fontFile = str(parsed.values, 'font');
  if (fontFile !== undefined && !fs.existsSync(fontFile)) throw new UsageError(`--font ${fontFile}: no such file`);
  const events = readRunEvents(file);
  const out = str(parsed.values, 'out') ?? path.join(path.dirname(file), `${path.basename(file, path.extname(file))}-report`);
  if (fs.existsSync(out) && !fs.statSync(out).isDirectory()) throw new UsageError(`--out ${out} is a file, not a folder`);
  const font = chooseFont(fontFile);
  const warning = fontWarning(font);
  if (warning) console.error(`ddp: warning: ${warning}`);
  const { charts, missing } = runCharts(events);
  for (const chart of charts) {
    const written = await writeChart(chart.spec, path.join(out, chart.name), font);
    console.log(`written ${written.svg} and .png`);
  }
  for (const m of missing) console.log(`skipped ${m}`);
  return 0;
}
