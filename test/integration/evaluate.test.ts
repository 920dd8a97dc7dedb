// evaluate(): the pointing game on cases built so the answer is known, curves and the sanity check consistent with
// their parts, the user's model untouched, time per method and score, typed errors; the evaluate command.
import { describe, expect, it } from 'vitest';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { argmax2d } from '../../lib/map.js';
import { methodSpec, splitMethods } from '../../lib/cli/evaluate.js';
import { evaluate, fidelity, loadModel, readImage, spearman, ssim, type EvaluationImage } from '../../lib/index.js';
import { FIXTURES, ROOT, rejection } from './helpers.js';

const SHAPES = join(FIXTURES, 'shapes');
const entries = JSON.parse(readFileSync(join(SHAPES, 'boxes.json'), 'utf8')) as { file: string; classIndex: number; box: [number, number, number, number] }[];
const open = () => loadModel(join(FIXTURES, 'models', 'shapes_traced.pt'), { device: 'cpu', labels: join(FIXTURES, 'models', 'shapes_labels.txt') });

async function shapes(): Promise<EvaluationImage[]> {
  return Promise.all(
    entries.map(async (e) => ({ name: e.file, image: await readImage(join(SHAPES, e.file)), objects: [{ classIndex: e.classIndex, boxes: [e.box] }] })),
  );
}

describe('evaluate', () => {
  it('pointing game: a box on the map maximum hits, one 20 px away misses, per-class rates averaged; the centre baseline alike', async () => {
    await using model = await open();
    const items = await shapes();
    // Where the gradient map peaks, found here from explain() itself.
    const r = await model.explain(
      items.map((it) => it.image),
      { method: 'gradient', target: items.map((it) => it.objects[0].classIndex) },
    );
    const built = items.map((it, i) => {
      const [y, x] = argmax2d(r.maps[i]);
      // Images 0, 4, 8, 12 (one per class, 4 classes) hit; the others get a 1-px box 20 px away from the peak.
      const box: [number, number, number, number] = i % 4 === 0 ? [x, y, x + 1, y + 1] : x >= 32 ? [x - 20, y, x - 19, y + 1] : [x + 20, y, x + 21, y + 1];
      return { ...it, objects: [{ classIndex: it.objects[0].classIndex, boxes: [box] }] };
    });
    const e = await evaluate(model, built, { methods: ['gradient'], scores: ['pointing-game'] });
    const classes = new Set(entries.map((x) => x.classIndex));
    // expected per class: hits among its images / its images
    const rates = [...classes].map((c) => {
      const mine = entries.map((x, i) => ({ x, i })).filter(({ x }) => x.classIndex === c);
      return mine.filter(({ i }) => i % 4 === 0).length / mine.length;
    });
    expect(e.methods[0].pointingGame!.all.accuracy).toBeCloseTo(rates.reduce((a, b) => a + b, 0) / rates.length, 12);
    expect(e.methods[0].pointingGame!.all.trials).toBe(16);
    expect(e.pairs).toBe(16);
    // centre baseline: (32, 32) against each box, by hand (distance to the box's pixels, strictly under 15)
    const hits = built.map((it) => {
      const [x0, y0, x1, y1] = it.objects[0].boxes[0];
      const dx = Math.max(x0 - 32, 0, 32 - (x1 - 1));
      const dy = Math.max(y0 - 32, 0, 32 - (y1 - 1));
      return dx * dx + dy * dy < 225;
    });
    const baseRates = [...classes].map((c) => {
      const mine = built.map((it, i) => ({ it, i })).filter(({ it }) => it.objects[0].classIndex === c);
      return mine.filter(({ i }) => hits[i]).length / mine.length;
    });
    expect(e.baseline.pointingGame.all.accuracy).toBeCloseTo(baseRates.reduce((a, b) => a + b, 0) / baseRates.length, 12);
    // one class per image: no pair is difficult
    expect(e.baseline.pointingGame.difficult.trials).toBe(0);
  });

  it('difficult pairs: a class under 1/4 of the image with another class in it', async () => {
    await using model = await open();
    const [a, b] = await shapes();
    const two: EvaluationImage = {
      ...a,
      objects: [
        { classIndex: 0, boxes: [[0, 0, 10, 10]] },
        { classIndex: 1, boxes: [[0, 0, 64, 40]] },
      ],
    };
    const e = await evaluate(model, [two, b], { methods: ['gradient'], scores: ['pointing-game'] });
    expect(e.pairs).toBe(3);
    expect(e.methods[0].pointingGame!.difficult.trials).toBe(1); // class 0 in the first image: 100 px of 4096, class 1 beside it
  });

  it('deletion and insertion equal fidelity() on the same maps; the sanity check equals Spearman/SSIM on a copy made by hand; the model is untouched', async () => {
    await using model = await open();
    const items = (await shapes()).slice(0, 3);
    const before = await model.predict(items.map((it) => it.image));
    const given: { method: string; maps: { image: number; target: number; data: Float32Array }[] }[] = [];
    const e = await evaluate(model, items, {
      methods: ['gradient'],
      fidelity: { steps: 8 },
      sanity: { images: 2, seed: 5 },
      onMaps: (method, maps) => void given.push({ method, maps: [...maps] }),
    });
    const m = e.methods[0];
    const r = await model.explain(
      items.map((it) => it.image),
      { method: 'gradient', target: items.map((it) => it.objects[0].classIndex) },
    );
    // onMaps: once per method, the maps of the pairs in pairList's order, the maps explain() gives
    expect(given.map((g) => g.method)).toEqual(['gradient']);
    expect(given[0].maps.map((x) => [items[x.image].name, x.target])).toEqual(e.pairList.map((p) => [p.image, p.target]));
    given[0].maps.forEach((x, i) => expect(x.data).toEqual(r.maps[i].data));
    const f = await fidelity(model, items[1].image, r.maps[1], items[1].objects[0].classIndex, { steps: 8 });
    expect(m.deletion!.aucPerMap[1]).toBeCloseTo(f.deletion.auc, 6);
    expect(m.insertion!.aucPerMap[1]).toBeCloseTo(f.insertion.auc, 6);
    expect(m.deletion!.fractions).toHaveLength(9);
    // the sanity check: one step per parameter layer, output side first, cascading
    expect(m.sanity!.steps.map((s) => s.layer)).toEqual(model.parameterLayers().reverse());
    expect(m.sanity!.steps.map((s) => s.randomized)).toEqual([1, 2, 3, 4, 5]);
    await using copy = await model.cloneReinitialized(['classifier', 'features.9'], { seed: 5 });
    const rc = await copy.explain(
      items.slice(0, 2).map((it) => it.image),
      { method: 'gradient', target: items.slice(0, 2).map((it) => it.objects[0].classIndex) },
    );
    expect(m.sanity!.steps[1].spearmanPerMap[0]).toBeCloseTo(spearman(r.maps[0].data, rc.maps[0].data), 10);
    expect(m.sanity!.steps[1].ssimPerMap[1]).toBeCloseTo(ssim(r.maps[1].data, rc.maps[1].data, 64, 64), 10);
    // the user's model gives what it gave before
    const after = await model.predict(items.map((it) => it.image));
    after.forEach((p, i) => expect([...p.logits]).toEqual([...before[i].logits]));
    // time kept per method and score
    expect(e.timings.map((t) => t.score).sort()).toEqual(['deletion', 'explain', 'insertion', 'pointing-game', 'sanity']);
  });

  it('extremal perturbation sums its masks per pair; independent randomisation draws one layer per step', async () => {
    await using model = await open();
    const items = (await shapes()).slice(0, 2);
    const e = await evaluate(model, items, {
      methods: [{ method: 'extremal-perturbation', areas: [0.05, 0.1], maxIter: 20, name: 'ep' }],
      scores: ['pointing-game', 'sanity'],
      sanity: { order: 'independent', images: 1, layers: ['classifier', 'features.0'] },
    });
    expect(e.methods[0].name).toBe('ep');
    expect(e.methods[0].pointingGame!.all.trials).toBe(2);
    expect(e.methods[0].sanity!.steps.map((s) => [s.layer, s.randomized])).toEqual([
      ['classifier', 1],
      ['features.0', 1],
    ]);
  });

  it('bad input is a typed error naming it; an aborted signal stops it', async () => {
    await using model = await open();
    const items = await shapes();
    expect((await rejection(evaluate(model, [], { methods: ['gradient'] }))).argument).toBe('images');
    expect((await rejection(evaluate(model, items, { methods: [] }))).argument).toBe('options.methods');
    expect((await rejection(evaluate(model, items, { methods: ['gradient'], onMaps: 'save' as never }))).argument).toBe('options.onMaps');
    expect((await rejection(evaluate(model, items, { methods: ['gradient'], scores: ['nope' as never] }))).argument).toBe('options.scores[0]');
    const wrong = [{ ...items[0], objects: [{ classIndex: 9, boxes: [[0, 0, 1, 1] as const] }] }];
    expect((await rejection(evaluate(model, wrong, { methods: ['gradient'] }))).code).toBe('ERR_OUT_OF_RANGE');
    expect((await rejection(evaluate(model, items, { methods: ['no-such-method' as never] }))).code).toBe('ERR_INVALID_ARG_VALUE');
    const e = await rejection(evaluate(model, items, { methods: ['gradient'], signal: AbortSignal.abort() }));
    expect(e.code).toBe('ABORT_ERR');
  });
});

describe('evaluate command', () => {
  it('reads --methods: options after colons, list values keep their commas', () => {
    expect(splitMethods('gradient,extremal-perturbation:areas=0.05,0.1:max-iter=300,grad-cam:layer=features.9')).toEqual([
      'gradient',
      'extremal-perturbation:areas=0.05,0.1:max-iter=300',
      'grad-cam:layer=features.9',
    ]);
    expect(methodSpec('extremal-perturbation:areas=0.05,0.1:max-iter=300')).toEqual({
      method: 'extremal-perturbation',
      name: 'extremal-perturbation:areas=0.05,0.1:max-iter=300',
      areas: [0.05, 0.1],
      maxIter: 300,
    });
    expect(() => methodSpec('rise:num-masks')).toThrow(/key=value/);
  });

  const cli = (...args: string[]) => {
    const r = spawnSync(process.execPath, ['--import', 'tsx', join(ROOT, 'lib', 'cli', 'index.ts'), 'evaluate', ...args], {
      cwd: ROOT,
      encoding: 'utf8',
      timeout: 120_000,
    });
    return { code: r.status, stdout: r.stdout, stderr: r.stderr };
  };
  const base = [
    '--model',
    'test/fixtures/models/shapes_traced.pt',
    '--labels',
    'test/fixtures/models/shapes_labels.txt',
    '--images',
    'test/fixtures/shapes',
    '--device',
    'cpu',
  ];

  it('prints the table, writes JSON and CSV; exit 2 on bad annotations', () => {
    const out = mkdtempSync(join(tmpdir(), 'ts-evaluate-'));
    const r = cli(
      ...base,
      '--boxes',
      'test/fixtures/shapes/boxes.json',
      '--methods',
      'gradient,grad-cam:layer=features.9',
      '--scores',
      'pointing-game,deletion',
      '--steps',
      '4',
      '--out',
      out,
    );
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toMatch(/centre baseline/);
    expect(r.stdout).toMatch(/grad-cam:layer=features.9/);
    const json = JSON.parse(readFileSync(join(out, 'evaluation.json'), 'utf8'));
    expect(json.methods.map((m: { name: string }) => m.name)).toEqual(['gradient', 'grad-cam:layer=features.9']);
    expect(json.methods[1].options.layer).toBe('features.9');
    expect(readFileSync(join(out, 'evaluation.csv'), 'utf8').split('\n')[0]).toMatch(/^method,pointing_all/);
    // The page (its content is checked in Chromium by pages-browser.test.ts) and its pictures: 8 images, 2 methods.
    expect(readFileSync(join(out, 'evaluation.html'), 'utf8')).toMatch(/^<!doctype html>/);
    expect(existsSync(join(out, 'pictures', 'm1-pair7.png'))).toBe(true);
    expect(existsSync(join(out, 'pictures', 'm0-pair8.png'))).toBe(false);
    const bad = join(out, 'bad.json');
    writeFileSync(bad, JSON.stringify([{ file: 'shape_00.png', label: 'zebra', box: [0, 0, 4, 4] }]));
    const b = cli(...base, '--boxes', bad);
    expect(b.code).toBe(2);
    expect(b.stderr).toMatch(/ERR_ANNOTATIONS/);
    expect(cli(...base).code).toBe(2); // no --boxes
    const h = cli(...base, '--boxes', 'test/fixtures/shapes/boxes.json', '--heatmaps', '2'); // no --out for the page
    expect(h.code).toBe(2);
    expect(h.stderr).toMatch(/--heatmaps/);
  });
});
