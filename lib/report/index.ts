/**
 * The HTML report of an explain run: one self-contained file in the output folder (pictures linked
 * relatively, no scripts, no network), per image the photo, its top classes, each method's pictures, the
 * deletion and insertion curves of each map with their AUC, and the options and timings.
 */
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { writeFileAtomic } from '../safe-write.js';
import { STYLE, chart, escape, figure, img, ms, table } from './html.js';
import type { ImageResult, MapResult, MethodResult, RunSummary } from './types.js';

export type { CurveJSON, ImageEntry, ImageResult, MapResult, MethodResult, RunSummary } from './types.js';
export { escape, href } from './html.js';
export { renderEvaluationPage, writeEvaluationPage } from './evaluation.js';
export type { EvaluationPage, EvaluationRun, PairPictures } from './evaluation.js';
export { renderScanPage, writeScanPage } from './scan.js';
export type { ScanJSON, ScanClassJSON, ScanRun } from './scan.js';

const CAPTIONS: Record<string, string> = { overlay: 'overlay', heatmap: 'heatmap', mask: 'mask', preserved: 'preserved region' };

function mapTitle(map: MapResult): string {
  return `${map.label ?? `class ${map.target}`}${map.area !== undefined ? `, area ${map.area}` : ''}`;
}

function curves(map: MapResult): string {
  if (!map.curves) return '';
  const { deletion, insertion } = map.curves;
  return `<figure>${chart(`Deletion and insertion curves: ${mapTitle(map)}`, [
    { name: `deletion AUC ${deletion.auc.toFixed(3)}`, colour: '#c2410c', xs: deletion.fractions, ys: deletion.probabilities },
    { name: `insertion AUC ${insertion.auc.toFixed(3)}`, colour: '#1d4ed8', xs: insertion.fractions, ys: insertion.probabilities },
  ])}<figcaption>probability of ${escape(map.label ?? map.target)} against the fraction of pixels deleted / inserted (most salient first)</figcaption></figure>`;
}

function methodSection(name: string, m: MethodResult): string {
  if (m.error) return `<h3>${escape(name)}</h3><p class="error">${escape(m.error.message)} [${escape(m.error.code)}]</p>`;
  const maps = (m.maps ?? [])
    .map((map) => {
      const pictures = Object.entries(map.pictures).map(([kind, path]) => figure(path, `${mapTitle(map)}: ${CAPTIONS[kind] ?? kind}`));
      return `<div class="row">${pictures.join('')}${curves(map)}</div>`;
    })
    .join('');
  const scores = (m.maps ?? []).filter((map) => map.curves);
  const scoreTable = scores.length
    ? table(
        ['map', 'deletion AUC (lower is better)', 'insertion AUC (higher is better)'],
        scores.map((map) => [escape(mapTitle(map)), map.curves!.deletion.auc.toFixed(3), map.curves!.insertion.auc.toFixed(3)]),
      )
    : '';
  const options = m.options ? `<details><summary>options</summary><pre>${escape(JSON.stringify(m.options, null, 1))}</pre></details>` : '';
  return `<h3>${escape(name)} <span class="meta">${escape(ms(m.timings?.totalMs))}</span></h3>${maps}${scoreTable}${options}`;
}

function imageSection(entry: RunSummary['images'][number], result: ImageResult | undefined, index: number): string {
  const title = `<h2 id="image-${index}">${escape(entry.file)} <span class="meta">${escape(entry.state)}</span></h2>`;
  if (!result)
    return `<section class="image">${title}<p class="error">${escape(entry.error?.message ?? 'no result')} [${escape(entry.error?.code ?? '')}]</p></section>`;
  const top = table(
    ['class', 'probability'],
    result.top.map((t) => [escape(t.label ?? t.index), t.probability.toFixed(3)]),
  );
  const timings = table(
    ['step', 'time'],
    [['predict', escape(ms(result.predictMs))], ...Object.entries(result.methods).map(([m, r]) => [escape(m), escape(ms(r.timings?.totalMs))])],
  );
  const methods = Object.entries(result.methods)
    .map(([name, m]) => methodSection(name, m))
    .join('');
  return `<section class="image">${title}<div class="head">${img(result.image, entry.file, 'photo')}<div><h3>top classes</h3>${top}</div><div><h3>timings</h3>${timings}</div></div>${methods}</section>`;
}

/** The report's HTML for a run's summary and its images' results (by name). */
export function renderReport(summary: RunSummary, results: ReadonlyMap<string, ImageResult>): string {
  const sections = summary.images.map((entry, i) => imageSection(entry, results.get(entry.name), i)).join('\n');
  const state = summary.complete ? 'complete' : 'incomplete (interrupted: some images are missing)';
  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>torch-saliency report: ${escape(summary.methods.join(', '))}</title>
<style>${STYLE}</style>
</head>
<body>
<h1>torch-saliency report</h1>
<p class="meta">model ${escape(summary.model)} on ${escape(summary.device)}; methods ${escape(summary.methods.join(', '))}; target ${escape(JSON.stringify(summary.target))};
${summary.images.length} image(s), ${escape(state)}; started ${escape(summary.started)}, ${escape(ms(summary.totalMs))} in all.</p>
${sections}
</body>
</html>
`;
}

/** Reads `out`/summary.json and the images' result.json, writes `out`/report.html and returns its path. */
export async function writeReport(out: string): Promise<string> {
  const summary = JSON.parse(await readFile(join(out, 'summary.json'), 'utf8')) as RunSummary;
  const results = new Map<string, ImageResult>();
  for (const entry of summary.images) {
    if (!entry.result) continue;
    try {
      results.set(entry.name, JSON.parse(await readFile(join(out, entry.result), 'utf8')) as ImageResult);
    } catch {
      // An image whose result.json is missing (an interrupted run) shows its state only.
    }
  }
  const path = join(out, 'report.html');
  await writeFileAtomic(path, renderReport(summary, results), { argument: '--out' });
  return path;
}
