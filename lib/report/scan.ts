/**
 * The HTML page of a backdoor scan (`torch-saliency scan --out DIR` writes DIR/scan.html beside scan.json and
 * the pictures): the verdict, the per-class table (anomaly index, flip rates or mask norms, flagged), each
 * class's picture and map with the reported region drawn on it, the method, its options and thresholds, and
 * the timings. One file, pictures linked relatively, no script, no network.
 */
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { writeFileAtomic } from '../safe-write.js';
import { PAGES_STYLE, STYLE, escape, framed, ms, table } from './html.js';

/** A class as scan.json holds it: the fields every method gives, and the method's own numbers. */
export interface ScanClassJSON {
  class: number;
  label?: string;
  box: { top: number; left: number; height: number; width: number };
  anomalyIndex: number | null;
  flagged: boolean;
  [field: string]: unknown;
}

/** scan.json (BackdoorScan.toJSON()). */
export interface ScanJSON {
  method: string;
  suspicious: boolean;
  flagged: number[];
  score: number | null;
  classes: ScanClassJSON[];
  thresholds: Record<string, number>;
  options: Record<string, unknown>;
  timings: { totalMs: number; methodMs: number };
}

/** What the page says of the run besides scan.json. */
export interface ScanRun {
  model: string;
  device: string;
  /** The model's input size: the box coordinates are in these pixels. */
  height: number;
  width: number;
  labels?: string;
  started?: string;
  /** The clean images given, if any (else the scan used seeded random inputs). */
  images?: number;
}

/** The methods' own numbers in the order and with the titles the table shows them; other fields follow by name. */
const FIELDS: Record<string, string> = {
  signature: 'signature',
  concentration: 'concentration',
  areaFraction: 'area',
  lift: 'lift',
  flipRate: 'flip rate',
  controlFlipRate: 'control flip rate',
  specificFlipRate: 'specific flip rate',
  baseRate: 'base rate',
  fidelity: 'fidelity',
  norm: 'mask norm',
  attackSuccess: 'attack success',
  reached: 'reached',
  opacity: 'whole-image opacity',
  opacityIndex: 'opacity anomaly index',
  opacityReached: 'opacity reached',
  wholeImageFlagged: 'flagged by the whole-image test',
};
const COMMON = new Set(['class', 'label', 'box', 'anomalyIndex', 'flagged']);

/** The method's columns for these classes: known fields first, in FIELDS' order, then any others by name. */
export function scanColumns(classes: readonly ScanClassJSON[]): { field: string; title: string }[] {
  const present = new Set(classes.flatMap((c) => Object.keys(c)).filter((k) => !COMMON.has(k)));
  const known = Object.keys(FIELDS).filter((k) => present.has(k));
  const others = [...present].filter((k) => !(k in FIELDS)).sort();
  return [...known.map((field) => ({ field, title: FIELDS[field] })), ...others.map((field) => ({ field, title: field }))];
}

function cell(value: unknown): string {
  if (typeof value === 'boolean') return value ? 'yes' : 'no';
  if (typeof value === 'number') return Number.isFinite(value) ? (Number.isInteger(value) ? String(value) : value.toFixed(3)) : '-';
  if (value === null || value === undefined) return '-';
  // A method's note (e.g. why a map is empty) reads as text; anything else as its JSON.
  return escape(typeof value === 'string' ? value : JSON.stringify(value));
}

const nameOf = (c: ScanClassJSON) => `${c.class}${c.label ? ` ${c.label}` : ''}`;

function verdict(scan: ScanJSON): string {
  const byIndex = new Map(scan.classes.map((c) => [c.class, c]));
  const flagged = scan.flagged.map((k) => escape(byIndex.has(k) ? nameOf(byIndex.get(k)!) : String(k)));
  const score = typeof scan.score === 'number' && Number.isFinite(scan.score) ? scan.score.toFixed(2) : '-';
  const threshold = scan.thresholds.anomaly;
  return scan.suspicious
    ? `<div class="verdict suspicious"><strong>Suspicious.</strong> Flagged: class ${flagged.join(', class ')} (most anomalous first). Model score ${escape(score)} (anomaly index; flagged from ${escape(threshold)}).</div>`
    : `<div class="verdict clean"><strong>No trigger found.</strong> No class passes the thresholds together. Model score ${escape(score)} (the largest anomaly index of a class that may be a trigger; flagged from ${escape(threshold)}).</div>`;
}

function classTable(scan: ScanJSON): string {
  const columns = scanColumns(scan.classes);
  const rows = scan.classes.map((c) => [
    `<a href="#class-${c.class}">${escape(c.class)}</a>`,
    escape(c.label ?? ''),
    c.flagged ? '<strong>flagged</strong>' : '',
    cell(c.anomalyIndex),
    ...columns.map((col) => cell(c[col.field])),
    escape(`${c.box.top}, ${c.box.left}, ${c.box.height} x ${c.box.width}`),
  ]);
  return table(['class', 'label', 'verdict', 'anomaly index', ...columns.map((c) => c.title), 'region (top, left, h x w)'], rows, {
    className: 'scores',
    rowClass: (i) => (scan.classes[i].flagged ? 'flagged' : undefined),
  });
}

function gallery(scan: ScanJSON, run: ScanRun): string {
  const what =
    scan.method === 'neural-cleanse'
      ? ['reversed trigger (mask x pattern on grey)', 'reversed mask']
      : ['input-agnostic picture (the model alone: no data)', 'input-agnostic map'];
  const figures = scan.classes.map((c) => {
    const rect = [{ x: c.box.left, y: c.box.top, width: c.box.width, height: c.box.height }];
    const title = `class ${nameOf(c)}`;
    return `<div class="class${c.flagged ? ' flagged' : ''}" id="class-${c.class}"><h3>${escape(title)}${c.flagged ? ' <span class="flag">flagged</span>' : ''}</h3><div class="row">
<figure>${framed(`class-${c.class}-picture.png`, `${title}: ${what[0]}`, run.width, run.height, [])}<figcaption>${escape(what[0])}, region boxed in red</figcaption></figure>
<figure>${framed(`class-${c.class}-map.png`, `${title}: ${what[1]}`, run.width, run.height, rect)}<figcaption>${escape(what[1])}, region boxed in red</figcaption></figure>
</div><p class="meta">anomaly index ${cell(c.anomalyIndex)}${'flipRate' in c ? `, flip rate ${cell(c.flipRate)}` : ''}${'specificFlipRate' in c ? ` (specific ${cell(c.specificFlipRate)})` : ''}${'norm' in c ? `, mask norm ${cell(c.norm)}` : ''}${'attackSuccess' in c ? `, attack success ${cell(c.attackSuccess)}` : ''}</p></div>`;
  });
  return `<section><h2>Classes</h2><div class="classes">${figures.join('')}</div></section>`;
}

const SCAN_STYLE = `
.verdict { padding: 0.8em 1em; border-radius: 8px; margin: 1em 0; font-size: 1.1em; }
.verdict.suspicious { background: #fde8e8; border: 1px solid #f3a3a3; } .verdict.clean { background: #e7f6ec; border: 1px solid #9fd8b2; }
tr.flagged td { background: #fff1f1; }
.classes { display: flex; flex-wrap: wrap; gap: 1em; } .class { border: 1px solid #eee; border-radius: 6px; padding: 0.2em 0.8em 0.5em; }
.class.flagged { border-color: #dc2626; } .class h3 { margin-top: 0.4em; } .flag { color: #dc2626; font-size: 0.9em; }
.class .pic img { image-rendering: pixelated; } .class .pic .box { stroke: #ff2d2d; stroke-width: 2; }
table.scores td:nth-child(2), table.scores th:nth-child(2) { text-align: left; } .class p.meta { max-width: 370px; font-size: 12px; margin: 0.3em 0 0; }
`;

/** The page's HTML for scan.json and the run it came from. */
export function renderScanPage(scan: ScanJSON, run: ScanRun): string {
  const images = run.images ? `${run.images} clean image(s) given` : 'seeded random inputs (no data)';
  const about = `model ${escape(run.model)} on ${escape(run.device)}, input ${run.height} x ${run.width}${run.labels ? `, labels ${escape(run.labels)}` : ''}; method ${escape(scan.method)} on ${escape(images)}${run.started ? `; started ${escape(run.started)}` : ''}.`;
  const timings = table(
    ['step', 'time'],
    [
      [`${escape(scan.method)} (${scan.classes.length} classes)`, escape(ms(scan.timings.methodMs))],
      ['scoring the classes', escape(ms(scan.timings.totalMs - scan.timings.methodMs))],
      ['<strong>total</strong>', `<strong>${escape(ms(scan.timings.totalMs))}</strong>`],
    ],
  );
  const thresholds = table(
    ['threshold', 'value'],
    Object.entries(scan.thresholds).map(([k, v]) => [escape(k), cell(v)]),
  );
  const options = table(
    ['option', 'value'],
    Object.entries(scan.options).map(([k, v]) => [escape(k), `<code>${escape(JSON.stringify(v))}</code>`]),
  );
  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>torch-saliency scan: ${scan.suspicious ? 'suspicious' : 'no trigger found'}</title>
<style>${STYLE}${PAGES_STYLE}${SCAN_STYLE}</style>
</head>
<body>
<h1>torch-saliency backdoor scan</h1>
<p class="meta">${about}</p>
${verdict(scan)}
<section><h2>Per class</h2>${classTable(scan)}<p class="meta">A class is flagged when its anomaly index (robust z-score across the classes) and its method's own tests pass their thresholds together; see docs/methods/${scan.method === 'neural-cleanse' ? 'neural-cleanse' : 'input-agnostic'}.md.</p></section>
${gallery(scan, run)}
<section><h2>Method and options</h2><div class="head"><div><h3>options of ${escape(scan.method)}</h3>${options}</div><div><h3>thresholds</h3>${thresholds}</div><div><h3>timings</h3>${timings}</div></div></section>
</body>
</html>
`;
}

/** Reads `dir`/scan.json, writes `dir`/scan.html beside it and its pictures (atomically) and returns its path. */
export async function writeScanPage(dir: string, run: ScanRun, argument = '--out'): Promise<string> {
  const scan = JSON.parse(await readFile(join(dir, 'scan.json'), 'utf8')) as ScanJSON;
  const path = join(dir, 'scan.html');
  await writeFileAtomic(path, renderScanPage(scan, run), { argument });
  return path;
}
