/**
 * The HTML page of an evaluation (`torch-saliency evaluate --out DIR` writes DIR/evaluation.html): the methods x
 * scores table with the centre baseline, each method's mean deletion and insertion curve, the randomisation
 * sanity check per layer (rank correlation and SSIM, output side first), the time split by method and score,
 * and the maps of the first images with their boxes and peaks. One file, pictures linked relatively, no script.
 */
import { join } from 'node:path';
import type { Box } from '../evaluate/annotations.js';
import type { Evaluation, MethodEvaluation } from '../evaluate/evaluate.js';
import { SCORE_COLUMNS, num, pct } from '../evaluate/output.js';
import { writeFileAtomic } from '../safe-write.js';
import { PAGES_STYLE, STYLE, chart, colourOf, escape, framed, ms, table, type ChartSeries } from './html.js';

/** What the page says of the run besides the evaluation itself. */
export interface EvaluationRun {
  model: string;
  device: string;
  labels?: string;
  /** The size the images were read at, as given (e.g. "224"). */
  size?: string;
  started: string;
  totalMs?: number;
}

/** One (image, class) pair shown with each method's map. Pictures are paths relative to the page's folder. */
export interface PairPictures {
  /** Index into Evaluation.pairList. */
  pair: number;
  /** The image as the model saw it. */
  image: string;
  height: number;
  width: number;
  label?: string;
  /** The class's boxes, in the image's pixels ([x0, y0, x1, y1], ends exclusive). */
  boxes: readonly Box[];
  /** Per method name: its map over the image, and the map's peak [y, x]. */
  maps: Record<string, { picture: string; peak: readonly [number, number] }>;
}

export interface EvaluationPage {
  evaluation: Evaluation;
  run?: EvaluationRun;
  pictures?: readonly PairPictures[];
}

type Numberish = number | null | undefined;
const finite = (x: Numberish): x is number => typeof x === 'number' && Number.isFinite(x);

/** Per column, the best finite value among the methods (ties all marked); undefined when none has one. */
export function bestValues(methods: readonly MethodEvaluation[]): (number | undefined)[] {
  return SCORE_COLUMNS.map((c) => {
    const values = methods.map((m) => c.value(m)).filter(finite);
    if (values.length < 2) return undefined;
    return c.better === 'high' ? Math.max(...values) : Math.min(...values);
  });
}

function scoreTable(e: Evaluation): string {
  const best = bestValues(e.methods);
  const seconds = (name: string) => e.timings.filter((t) => t.method === name).reduce((a, t) => a + t.ms, 0);
  const rows = [
    ['centre baseline', pct(e.baseline.pointingGame.all.accuracy), pct(e.baseline.pointingGame.difficult.accuracy), '-', '-', '-', '-', ''],
    ...e.methods.map((m) => [
      `<span class="swatch" style="background:${colourOf(e.methods.indexOf(m))}"></span>${escape(m.name)}`,
      ...SCORE_COLUMNS.map((c, k) => {
        const value = c.value(m);
        const text = escape(c.format(value ?? undefined));
        return finite(value) && value === best[k] ? `<strong>${text}</strong>` : text;
      }),
      escape(ms(seconds(m.name))),
    ]),
  ];
  return table(['method', ...SCORE_COLUMNS.map((c) => c.title), 'time'], rows, { className: 'scores' });
}

function key(methods: readonly { name: string }[]): string {
  return `<ul class="key">${methods.map((m, i) => `<li><span class="swatch" style="background:${colourOf(i)}"></span>${escape(m.name)}</li>`).join('')}</ul>`;
}

/** The top of the curves' y axis: their highest value rounded up to a tenth, at least 0.1 and at most 1. */
export function curvesTop(series: readonly { ys: readonly number[] }[]): number {
  const top = Math.max(0, ...series.flatMap((s) => s.ys.filter((y) => Number.isFinite(y))));
  return Math.min(1, Math.max(0.1, Math.ceil(top * 10 - 1e-9) / 10));
}

/** The mean deletion and insertion curves, one line per method (a method without the score has none). */
function curvesSection(e: Evaluation): string {
  const charts = (['deletion', 'insertion'] as const).flatMap((kind) => {
    const series: ChartSeries[] = e.methods.flatMap((m, i) => {
      const c = m[kind];
      return c ? [{ name: `${m.name}: AUC ${num(c.auc)}`, colour: colourOf(i), xs: c.fractions, ys: c.probabilities }] : [];
    });
    if (series.length === 0) return [];
    // The y axis up to the curves' highest point (a model unsure of its classes stays far below 1).
    const yMax = curvesTop(series);
    const what =
      kind === 'deletion'
        ? 'pixels deleted, most salient first (a faithful map makes it fall fast: low area)'
        : 'pixels restored on the blurred image, most salient first (a faithful map makes it rise fast: high area)';
    return [
      `<figure>${chart(`Mean ${kind} curve per method`, series, { width: 380, height: 240, legend: false, yMax, yTicks: [0, yMax / 2, yMax] })}<figcaption class="wide">${kind}: mean probability of the pair's class over the ${e.pairs} pairs against the fraction of ${what}</figcaption></figure>`,
    ];
  });
  if (charts.length === 0) return '';
  return `<section><h2>Deletion and insertion</h2>${key(e.methods)}<div class="row">${charts.join('')}</div></section>`;
}

/**
 * The sanity check as chart lines: x runs over the trained model (value 1: each map against itself) and then
 * each measured step, the output side first; one series per method that ran the check.
 */
export function sanitySeries(
  methods: readonly MethodEvaluation[],
  measure: 'spearman' | 'ssim',
): { xTicks: { at: number; label: string }[]; series: ChartSeries[] } {
  const withSteps = methods.map((m, i) => ({ m, i })).filter(({ m }) => m.sanity && m.sanity.steps.length > 0);
  if (withSteps.length === 0) return { xTicks: [], series: [] };
  const longest = withSteps.reduce((a, b) => (b.m.sanity!.steps.length > a.m.sanity!.steps.length ? b : a)).m.sanity!.steps;
  const at = (k: number) => (longest.length === 0 ? 0 : k / longest.length);
  const xTicks = [{ at: 0, label: 'trained' }, ...longest.map((s, k) => ({ at: at(k + 1), label: s.layer }))];
  const series = withSteps.map(({ m, i }) => {
    const steps = m.sanity!.steps;
    return {
      name: m.name,
      colour: colourOf(i),
      xs: [0, ...steps.map((_, k) => at(k + 1))],
      ys: [1, ...steps.map((s) => (finite(s[measure]) ? s[measure] : NaN))],
    };
  });
  return { xTicks, series };
}

function sanitySection(e: Evaluation): string {
  const spearman = sanitySeries(e.methods, 'spearman');
  if (spearman.series.length === 0) return '';
  const ssim = sanitySeries(e.methods, 'ssim');
  const lowest = Math.min(0, ...[...spearman.series, ...ssim.series].flatMap((s) => s.ys.filter(finite)));
  const yMin = Math.floor(lowest * 2) / 2;
  const yTicks = yMin < 0 ? [yMin, 0, 0.5, 1] : [0, 0.5, 1];
  const axes = { width: 380, height: 240, yMin, yMax: 1, yTicks, xTicks: spearman.xTicks, legend: false };
  const withSanity = e.methods.filter((m) => m.sanity && m.sanity.steps.length > 0);
  const first = withSanity[0].sanity!;
  const layers = spearman.xTicks.slice(1).map((t) => t.label);
  const rows = layers.map((layer, k) => [
    escape(layer),
    ...withSanity.map((m) => {
      const s = m.sanity!.steps[k];
      return s ? `${escape(num(s.spearman, 2))} / ${escape(num(s.ssim, 2))}` : '-';
    }),
  ]);
  const nan = withSanity.some((m) => m.sanity!.steps.some((s) => !finite(s.spearman)))
    ? ' A missing point is a step where every map was constant (no rank correlation).'
    : '';
  return `<section><h2>Sanity check: model-parameter randomisation</h2>
<p class="meta">${escape(first.order)} randomisation, seed ${escape(first.seed)}: the model's layers are re-drawn from the output side down and the same pairs explained again; each point is the mean similarity of the new maps to the trained model's. A map that depends on the model falls toward 0.${nan}</p>
${key(e.methods)}<div class="row">
<figure>${chart('Rank correlation (Spearman) per randomised layer', spearman.series, axes)}<figcaption class="wide">rank correlation with the trained model's maps, re-drawn down to the layer</figcaption></figure>
<figure>${chart('SSIM per randomised layer', ssim.series, axes)}<figcaption class="wide">SSIM with the trained model's maps, re-drawn down to the layer</figcaption></figure>
</div>
${table(['re-drawn down to (rank corr / SSIM)', ...withSanity.map((m) => m.name)], rows)}</section>`;
}

const SCORE_COLOURS: Record<string, string> = {
  explain: '#4b5563',
  'pointing-game': '#0072b2',
  deletion: '#d55e00',
  insertion: '#009e73',
  sanity: '#cc79a7',
};

/** Per method a bar split by score, as [score, start, width] in [0, 1] of the longest method's total. */
export function timeSegments(
  timings: Evaluation['timings'],
): { method: string; total: number; parts: { score: string; ms: number; start: number; width: number }[] }[] {
  const methods = [...new Set(timings.map((t) => t.method))];
  const totals = methods.map((m) => timings.filter((t) => t.method === m).reduce((a, t) => a + t.ms, 0));
  const longest = Math.max(0, ...totals);
  return methods.map((method, i) => {
    let start = 0;
    const parts = timings
      .filter((t) => t.method === method)
      .map((t) => {
        const width = longest > 0 ? t.ms / longest : 0;
        const part = { score: t.score, ms: t.ms, start, width };
        start += width;
        return part;
      });
    return { method, total: totals[i], parts };
  });
}

function timeSection(e: Evaluation): string {
  if (e.timings.length === 0) return '';
  const scores = [...new Set(e.timings.map((t) => t.score))];
  const bars = timeSegments(e.timings);
  const scoreKey = `<ul class="key">${scores.map((s) => `<li><span class="swatch" style="background:${SCORE_COLOURS[s] ?? '#999'}"></span>${escape(s)}</li>`).join('')}</ul>`;
  // Bars as HTML boxes whose widths are shares of the longest method's total.
  const chartRows = bars
    .map((b) => {
      const parts = b.parts
        .map(
          (p) =>
            `<span style="width:${(100 * p.width).toFixed(2)}%;background:${SCORE_COLOURS[p.score] ?? '#999'}" title="${escape(`${b.method}, ${p.score}: ${ms(p.ms)}`)}"></span>`,
        )
        .join('');
      return `<div class="name">${escape(b.method)}</div><div class="bar">${parts}</div><div>${escape(ms(b.total))}</div>`;
    })
    .join('');
  const rows = bars.map((b) => [escape(b.method), ...scores.map((s) => escape(ms(b.parts.find((p) => p.score === s)?.ms))), escape(ms(b.total))]);
  return `<section><h2>Time</h2><p class="meta">each method explains every pair once ("explain"); the scores reuse those maps and make model calls of their own.</p>
${table(['method', ...scores, 'total'], rows, { className: 'scores' })}${scoreKey}<div class="timebars">${chartRows}</div></section>`;
}

/** A picture with the pair's boxes (and a map's peak) drawn over it. */
function annotated(picture: string, alt: string, p: PairPictures, peak?: readonly [number, number], hit?: boolean): string {
  const boxes = p.boxes.map(([x0, y0, x1, y1]) => ({ x: x0, y: y0, width: x1 - x0, height: y1 - y0 }));
  return framed(picture, alt, p.width, p.height, boxes, peak ? { y: peak[0], x: peak[1], className: hit === false ? 'miss' : 'hit' } : undefined);
}

function picturesSection(e: Evaluation, pictures: readonly PairPictures[]): string {
  if (pictures.length === 0) return '';
  const rows = pictures.map((p) => {
    const pair = e.pairList[p.pair];
    const cls = p.label ?? `class ${pair?.target}`;
    const photo = `<figure>${annotated(p.image, pair?.image ?? '', p)}<figcaption>${escape(pair?.image ?? '')}: ${escape(cls)}${pair?.difficult ? ' (difficult)' : ''}</figcaption></figure>`;
    const maps = e.methods.map((m) => {
      const shown = p.maps[m.name];
      if (!shown) return '';
      const hit = m.pointingGame?.hits[p.pair];
      const verdict = hit === undefined ? '' : hit ? ': hit' : ': miss';
      return `<figure>${annotated(shown.picture, `${m.name}: ${cls}`, p, shown.peak, hit)}<figcaption>${escape(m.name)}${escape(verdict)}</figcaption></figure>`;
    });
    return `<div class="row">${photo}${maps.join('')}</div>`;
  });
  const shownImages = new Set(pictures.map((p) => e.pairList[p.pair]?.image)).size;
  return `<section><h2>Maps</h2><p class="meta">the first ${shownImages} of ${e.images} images: each pair's boxes (green) and each map's peak (a ring: blue for a pointing-game hit, within ${e.tolerance} px of a box; red for a miss).</p>${rows.join('')}</section>`;
}

const PAGE_STYLE = `
ul.key { list-style: none; padding: 0; margin: 0.3em 0; display: flex; flex-wrap: wrap; gap: 0.3em 1.2em; word-break: break-all; }
figcaption.wide { max-width: 380px; }
.timebars { display: grid; grid-template-columns: minmax(6em, max-content) minmax(200px, 480px) max-content; gap: 4px 10px; align-items: center; margin-top: 0.4em; }
.timebars .name { text-align: right; word-break: break-all; } .timebars .bar { display: flex; height: 14px; }
.timebars .bar span { display: block; height: 100%; min-width: 1px; }
`;

/** The page's HTML. */
export function renderEvaluationPage(page: EvaluationPage): string {
  const e = page.evaluation;
  const run = page.run;
  const about = run
    ? `model ${escape(run.model)} on ${escape(run.device)}${run.labels ? `, labels ${escape(run.labels)}` : ''}${run.size ? `, images at ${escape(run.size)}` : ''}; started ${escape(run.started)}${run.totalMs !== undefined ? `, ${escape(ms(run.totalMs))} in all` : ''}.<br>`
    : '';
  const difficult = e.baseline.pointingGame.difficult.trials;
  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>torch-saliency evaluation: ${escape(e.methods.map((m) => m.name).join(', '))}</title>
<style>${STYLE}${PAGES_STYLE}${PAGE_STYLE}</style>
</head>
<body>
<h1>torch-saliency evaluation</h1>
<p class="meta">${about}${e.images} image(s), ${e.pairs} (image, class) pair(s), ${difficult} of them difficult. Pointing game: a hit is a map's peak within ${e.tolerance} px of a box of the class; accuracy is the mean of per-class hit rates. See docs/evaluation.md for each score.</p>
<section><h2>Scores</h2>${scoreTable(e)}<p class="meta">bold: the best method in the column. The sanity columns are the similarity to the trained model's maps after the last re-drawn layer (low: the map depends on the model).</p></section>
${curvesSection(e)}
${sanitySection(e)}
${timeSection(e)}
${picturesSection(e, page.pictures ?? [])}
</body>
</html>
`;
}

/** Writes `out`/evaluation.html (atomically; errors name --out) and returns its path. */
export async function writeEvaluationPage(out: string, page: EvaluationPage): Promise<string> {
  const path = join(out, 'evaluation.html');
  await writeFileAtomic(path, renderEvaluationPage(page), { argument: '--out' });
  return path;
}
