/**
 * An Evaluation as people and programs read it: a table of methods x scores (as TorchRay's benchmark prints
 * its table), the time split by method and score, CSV rows, and JSON without typed arrays. The HTML report
 * (lib/report) can take the same JSON.
 */
import type { Evaluation, MethodEvaluation } from './evaluate.js';

export const pct = (x: number | undefined | null) => (x === undefined || x === null || Number.isNaN(x) ? '-' : (100 * x).toFixed(1));
export const num = (x: number | undefined | null, digits = 3) => (x === undefined || x === null || Number.isNaN(x) ? '-' : x.toFixed(digits));

export interface ScoreColumn {
  title: string;
  value: (m: MethodEvaluation) => number | undefined;
  format: (x: number | undefined) => string;
  /** Which end is better. */
  better: 'high' | 'low';
}

/** The columns of the table, the CSV and the HTML page: one value per method. */
export const SCORE_COLUMNS: readonly ScoreColumn[] = [
  { title: 'pointing all %', value: (m) => m.pointingGame?.all.accuracy, format: pct, better: 'high' },
  { title: 'pointing difficult %', value: (m) => m.pointingGame?.difficult.accuracy, format: pct, better: 'high' },
  { title: 'deletion AUC (low)', value: (m) => m.deletion?.auc, format: num, better: 'low' },
  { title: 'insertion AUC (high)', value: (m) => m.insertion?.auc, format: num, better: 'high' },
  { title: 'sanity rank corr (low)', value: (m) => m.sanity?.steps.at(-1)?.spearman, format: num, better: 'low' },
  { title: 'sanity SSIM (low)', value: (m) => m.sanity?.steps.at(-1)?.ssim, format: num, better: 'low' },
];
const COLUMNS = SCORE_COLUMNS;

function table(rows: string[][]): string {
  const widths = rows[0].map((_, c) => Math.max(...rows.map((r) => r[c].length)));
  const line = (r: string[]) => r.map((cell, c) => (c === 0 ? cell.padEnd(widths[c]) : cell.padStart(widths[c]))).join('  ');
  return [line(rows[0]), widths.map((w) => '-'.repeat(w)).join('  '), ...rows.slice(1).map(line)].join('\n');
}

/** Methods x scores, the centre baseline first; then the randomisation steps and the time split. */
export function formatEvaluation(e: Evaluation): string {
  const rows = [['method', ...COLUMNS.map((c) => c.title)]];
  rows.push(['centre baseline', pct(e.baseline.pointingGame.all.accuracy), pct(e.baseline.pointingGame.difficult.accuracy), '-', '-', '-', '-']);
  for (const m of e.methods) rows.push([m.name, ...COLUMNS.map((c) => c.format(c.value(m)))]);
  const parts = [
    `${e.images} images, ${e.pairs} (image, class) pairs; pointing game within ${e.tolerance} px, mean of per-class hit rates ` +
      `(difficult: ${e.baseline.pointingGame.difficult.trials} pairs); sanity: after re-drawing every measured layer`,
    table(rows),
  ];
  const withSanity = e.methods.filter((m) => m.sanity && m.sanity.steps.length > 0);
  if (withSanity.length > 0) {
    const layers = withSanity[0].sanity!.steps.map((s) => s.layer);
    const head = ['randomised down to (rank corr / SSIM)', ...withSanity.map((m) => m.name)];
    const body = layers.map((layer, i) => [
      layer,
      ...withSanity.map((m) => {
        const s = m.sanity!.steps[i];
        return s ? `${num(s.spearman, 2)} / ${num(s.ssim, 2)}` : '-';
      }),
    ]);
    parts.push(`model-parameter randomisation (${withSanity[0].sanity!.order}, seed ${withSanity[0].sanity!.seed}):\n${table([head, ...body])}`);
  }
  const scores = [...new Set(e.timings.map((t) => t.score))];
  const methods = [...new Set(e.timings.map((t) => t.method))];
  const timeRows = [['time (s)', ...scores, 'total']];
  for (const m of methods) {
    const own = e.timings.filter((t) => t.method === m);
    timeRows.push([m, ...scores.map((s) => num((own.find((t) => t.score === s)?.ms ?? NaN) / 1000, 2)), num(own.reduce((a, t) => a + t.ms, 0) / 1000, 2)]);
  }
  parts.push(table(timeRows));
  return `${parts.join('\n\n')}\n`;
}

/** CSV: a header and one row per method (the centre baseline first), numbers unrounded. */
export function evaluationCSV(e: Evaluation): string {
  const cell = (x: number | undefined) => (x === undefined || Number.isNaN(x) ? '' : String(x));
  const rows = [['method', 'pointing_all', 'pointing_difficult', 'deletion_auc', 'insertion_auc', 'sanity_spearman', 'sanity_ssim', 'seconds'].join(',')];
  rows.push(['centre-baseline', cell(e.baseline.pointingGame.all.accuracy), cell(e.baseline.pointingGame.difficult.accuracy), '', '', '', '', ''].join(','));
  for (const m of e.methods) {
    const seconds = e.timings.filter((t) => t.method === m.name).reduce((a, t) => a + t.ms, 0) / 1000;
    rows.push([JSON.stringify(m.name), ...COLUMNS.map((c) => cell(c.value(m))), cell(seconds)].join(','));
  }
  return `${rows.join('\n')}\n`;
}

/** The evaluation as plain JSON (NaN becomes null). */
export function evaluationJSON(e: Evaluation): string {
  return JSON.stringify(e, (_, value) => (typeof value === 'number' && !Number.isFinite(value) ? null : value), 2);
}
