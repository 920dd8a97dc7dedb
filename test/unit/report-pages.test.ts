// The pure parts of the evaluation and scan pages, against values worked out by hand: the mean curve, the
// chart's scale, the sanity plot's series, the time split, the best value per column, the scan's columns,
// and escaping of what the user named.
import { describe, expect, it } from 'vitest';
import type { Evaluation, MethodEvaluation } from '../../lib/evaluate/evaluate.js';
import { meanCurve } from '../../lib/evaluate/mean-curve.js';
import { bestValues, curvesTop, renderEvaluationPage, sanitySeries, timeSegments } from '../../lib/report/evaluation.js';
import { chart, chartScale } from '../../lib/report/html.js';
import { renderScanPage, scanColumns, type ScanJSON } from '../../lib/report/scan.js';

const game = (accuracy: number) => ({ accuracy, trials: 2, hits: 1, classes: [] }) as never;

function method(name: string, fields: Partial<MethodEvaluation>): MethodEvaluation {
  return { name, method: 'gradient', options: {}, ...fields };
}

describe('meanCurve', () => {
  it('averages the probabilities per fraction and the areas, and the mean area is the area under the mean curve', () => {
    // Curve 1: 1, 0.5, 0 over fractions 0, 0.5, 1: trapezoids 0.5 (1 + 0.5) / 2 + 0.5 (0.5 + 0) / 2 = 0.5.
    // Curve 2: 0.8, 0.2, 0.2: 0.5 (0.8 + 0.2) / 2 + 0.5 (0.2 + 0.2) / 2 = 0.35.
    const m = meanCurve([
      { fractions: new Float32Array([0, 0.5, 1]), probabilities: new Float32Array([1, 0.5, 0]), auc: 0.5 },
      { fractions: [0, 0.5, 1], probabilities: [0.8, 0.2, 0.2], auc: 0.35 },
    ]);
    expect(m.fractions).toEqual([0, 0.5, 1]);
    expect(m.probabilities[0]).toBeCloseTo(0.9, 6);
    expect(m.probabilities[1]).toBeCloseTo(0.35, 6);
    expect(m.probabilities[2]).toBeCloseTo(0.1, 6);
    expect(m.aucPerMap).toEqual([0.5, 0.35]);
    expect(m.auc).toBeCloseTo(0.425, 12);
    // Under the mean curve: 0.5 (0.9 + 0.35) / 2 + 0.5 (0.35 + 0.1) / 2 = 0.3125 + 0.1125.
    expect(0.5 * (m.probabilities[0] + m.probabilities[1]) * 0.5 + 0.5 * (m.probabilities[1] + m.probabilities[2]) * 0.5).toBeCloseTo(m.auc, 6);
  });
});

describe('chart', () => {
  it('maps [0, 1] x [yMin, yMax] onto the plot, clamping y', () => {
    // Default: 260 x 170, left 34, right 8, top 18, bottom 26.
    const s = chartScale();
    expect([s.x(0), s.x(1), s.x(0.5)]).toEqual([34, 252, 143]);
    expect([s.y(0), s.y(1), s.y(2), s.y(-1)]).toEqual([144, 18, 18, 144]);
    // y from -1 to 1: 0 is half way up the 126 px plot.
    const t = chartScale({ yMin: -1, yMax: 1 });
    expect([t.y(-1), t.y(0), t.y(1)]).toEqual([144, 81, 18]);
  });

  it('leaves out points that are not numbers and escapes names', () => {
    const svg = chart('t', [{ name: '<b>', colour: '#000', xs: [0, 0.5, 1], ys: [1, NaN, 0] }]);
    expect(svg).toContain('points="34.0,18.0 252.0,144.0"');
    expect(svg).toContain('&lt;b&gt;');
    expect(svg).not.toContain('<b>');
  });
});

describe('the evaluation page', () => {
  const steps = (values: [string, number, number][]) => ({
    order: 'cascading' as const,
    seed: 42,
    steps: values.map(([layer, spearman, ssim], k) => ({ layer, randomized: k + 1, spearman, ssim, spearmanPerMap: [], ssimPerMap: [] })),
  });

  it('plots the sanity check from the trained model (1) through each layer, a NaN step left as a gap', () => {
    const methods = [
      method('a', {
        sanity: steps([
          ['fc', 0.5, 0.4],
          ['conv', NaN, 0.1],
        ]),
      }),
      method('b', {}),
      method('c', { sanity: steps([['fc', -0.2, 0.3]]) }),
    ];
    const { xTicks, series } = sanitySeries(methods, 'spearman');
    expect(xTicks).toEqual([
      { at: 0, label: 'trained' },
      { at: 0.5, label: 'fc' },
      { at: 1, label: 'conv' },
    ]);
    expect(series.map((s) => s.name)).toEqual(['a', 'c']);
    expect(series[0].xs).toEqual([0, 0.5, 1]);
    expect(series[0].ys).toEqual([1, 0.5, NaN]);
    expect(series[1].ys).toEqual([1, -0.2]);
    // Colours follow the method's place in the list (c is third), as in the key and the scores table.
    expect(series[1].colour).not.toBe(series[0].colour);
    expect(sanitySeries([method('x', {})], 'ssim')).toEqual({ xTicks: [], series: [] });
  });

  it('splits the time bars as shares of the longest method', () => {
    const bars = timeSegments([
      { method: 'a', score: 'explain', ms: 100 },
      { method: 'a', score: 'deletion', ms: 300 },
      { method: 'b', score: 'explain', ms: 200 },
    ]);
    expect(bars).toEqual([
      {
        method: 'a',
        total: 400,
        parts: [
          { score: 'explain', ms: 100, start: 0, width: 0.25 },
          { score: 'deletion', ms: 300, start: 0.25, width: 0.75 },
        ],
      },
      { method: 'b', total: 200, parts: [{ score: 'explain', ms: 200, start: 0, width: 0.5 }] },
    ]);
  });

  it('marks the best value per column: high pointing and insertion, low deletion and sanity', () => {
    const curve = (auc: number) => ({ auc, fractions: [], probabilities: [], aucPerMap: [] });
    const methods = [
      method('a', { pointingGame: { all: game(0.5), difficult: game(NaN), hits: [] }, deletion: curve(0.3), insertion: curve(0.6) }),
      method('b', { pointingGame: { all: game(0.75), difficult: game(NaN), hits: [] }, deletion: curve(0.2), insertion: curve(0.5) }),
    ];
    // Columns: pointing all, difficult, deletion, insertion, sanity rank corr, sanity SSIM.
    expect(bestValues(methods)).toEqual([0.75, undefined, 0.2, 0.6, undefined, undefined]);
  });

  it('draws only the sections of the scores that ran', () => {
    const evaluation: Evaluation = {
      images: 1,
      pairs: 1,
      pairList: [{ image: 'a.png', target: 0, difficult: false }],
      tolerance: 15,
      baseline: { pointingGame: { all: game(1), difficult: game(NaN), hits: [true] } },
      methods: [method('gradient', { pointingGame: { all: game(1), difficult: game(NaN), hits: [true] } })],
      timings: [{ method: 'gradient', score: 'explain', ms: 5 }],
    };
    const html = renderEvaluationPage({ evaluation });
    expect(html).toContain('<h2>Scores</h2>');
    expect(html).not.toContain('<svg class="chart"');
    expect(html).not.toContain('Deletion and insertion');
    expect(html).not.toContain('Sanity check');
    expect(html).not.toContain('<h2>Maps</h2>');
  });

  it('shows names as text', () => {
    const evaluation: Evaluation = {
      images: 1,
      pairs: 1,
      pairList: [{ image: '<img src=x>', target: 0, difficult: false }],
      tolerance: 15,
      baseline: { pointingGame: { all: game(1), difficult: game(NaN), hits: [true] } },
      methods: [method('<script>alert(1)</script>', { pointingGame: { all: game(1), difficult: game(NaN), hits: [true] } })],
      timings: [{ method: '<script>alert(1)</script>', score: 'explain', ms: 5 }],
    };
    const html = renderEvaluationPage({
      evaluation,
      run: { model: '"><b>m.pt', device: 'cpu', started: 'now' },
      pictures: [
        {
          pair: 0,
          image: 'pictures/image-0.png',
          height: 8,
          width: 8,
          boxes: [[1, 2, 3, 4]],
          maps: { '<script>alert(1)</script>': { picture: 'p.png', peak: [2, 1] } },
        },
      ],
    });
    expect(html).not.toContain('<script>');
    expect(html).not.toContain('<img src=x>');
    expect(html).not.toContain('"><b>');
    expect(html).toContain('&lt;script&gt;');
    // The box and the peak in the picture's pixels: [x0, y0, x1, y1] = [1, 2, 3, 4]; peak [y, x] = [2, 1] at the pixel's centre.
    expect(html).toContain('<rect x="1" y="2" width="2" height="2" class="box"/>');
    expect(html).toContain('<circle cx="1.5" cy="2.5"');
  });
});

describe('the scan page', () => {
  const scan: ScanJSON = {
    method: 'neural-cleanse',
    suspicious: true,
    flagged: [1],
    score: 3.5,
    classes: [
      {
        class: 0,
        label: 'a',
        box: { top: 0, left: 0, height: 2, width: 2 },
        anomalyIndex: 0,
        flagged: false,
        norm: 0.2,
        attackSuccess: 1,
        reached: true,
        extra: 7,
      },
      {
        class: 1,
        label: '<i>b</i>',
        box: { top: 3, left: 4, height: 5, width: 6 },
        anomalyIndex: 3.5,
        flagged: true,
        norm: 0.01,
        attackSuccess: 1,
        reached: true,
        extra: 8,
      },
    ],
    thresholds: { anomaly: 2 },
    options: { steps: 10 },
    timings: { totalMs: 1500, methodMs: 1000 },
  };

  it("orders the method's columns: the known ones first, then the others by name", () => {
    expect(scanColumns(scan.classes).map((c) => c.field)).toEqual(['norm', 'attackSuccess', 'reached', 'extra']);
  });

  it('says the verdict, marks the flagged row and draws each region where scan.json puts it', () => {
    const html = renderScanPage(scan, { model: 'm.pt', device: 'cpu', height: 32, width: 32 });
    expect(html).toContain('<strong>Suspicious.</strong> Flagged: class 1 &lt;i&gt;b&lt;/i&gt;');
    expect(html.match(/<tr class="flagged">/g)).toHaveLength(1);
    expect(html).toContain('<rect x="4" y="3" width="6" height="5" class="box"/>');
    expect(html).toContain('viewBox="0 0 32 32"');
    expect(html).not.toContain('<i>b</i>');
    // Timings: the method, the scoring (total - method), the total.
    expect(html).toContain('<td>1.00 s</td>');
    expect(html).toContain('<td>500 ms</td>');
  });
});

describe('curvesTop', () => {
  it('rounds the highest point up to a tenth, within [0.1, 1]', () => {
    expect(curvesTop([{ ys: [0.26, 0.1] }, { ys: [0.05, NaN] }])).toBe(0.3);
    expect(curvesTop([{ ys: [0.3] }])).toBe(0.3);
    expect(curvesTop([{ ys: [0.01] }])).toBe(0.1);
    expect(curvesTop([{ ys: [0.97, 1] }])).toBe(1);
  });
});
