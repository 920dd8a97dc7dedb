// What a model returns and raises, and what reaches it: outputs that are not N x K floating-point class
// scores are refused with ERR_MODEL_OUTPUT saying what was expected and received, non-finite inputs with
// ERR_NON_FINITE_INPUT, scores or maps that went non-finite with ERR_NON_FINITE_RESULT, a model's own
// exception keeps its message, and labels must match the classes. Models: scripts/fixtures/make_bad_models.py.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { loadModel, type TorchSaliencyError } from '../../lib/index.js';
import { FIXTURES, goldenImage, maxAbsDiff, model, rejection } from './helpers.js';

const bad = (name: string) => join(FIXTURES, 'bad', `${name}.pt`);
const image = goldenImage(0, 3, 8, 8);
const two = [goldenImage(0, 3, 8, 8), goldenImage(1, 3, 8, 8)];

describe('model outputs', () => {
  const cases: [string, RegExp][] = [
    ['scores_1d', /shape \[2\]/],
    ['scalar', /shape \[\]/],
    ['zero_classes', /0 classes|shape \[2, 0\]/],
    ['integer', /Long|int64/i],
    ['batch_mismatch', /shape \[1, 4\].*2 images|2 images.*\[1, 4\]/],
  ];
  for (const [name, what] of cases) {
    it(`${name}: predict and explain refuse it with ERR_MODEL_OUTPUT`, async () => {
      await using m = await loadModel(bad(name), { device: 'cpu' });
      const p = await rejection(m.predict(two));
      expect(p.code).toBe('ERR_MODEL_OUTPUT');
      expect(p.message).toMatch(/N x K/);
      expect(p.message).toMatch(what);
      const explains = [
        () => m.explain(two, { method: 'gradient', target: [0, 0] }),
        () => m.explain(two, { method: 'grad-cam', layer: 'conv', target: [0, 0] }),
        () => m.explain(two, { method: 'rise', target: [0, 0], numMasks: 4 }),
      ];
      for (const call of explains) {
        const e = await rejection(call());
        expect(e.code, e.message).toBe('ERR_MODEL_OUTPUT');
      }
    });
  }

  it("score maps (N x K x H x W) are refused by default, saying what was received and the option; scoreMaps: 'mean' averages them", async () => {
    await using m = await loadModel(bad('score_maps'), { device: 'cpu' });
    const e = await rejection(m.predict(two));
    expect(e.code).toBe('ERR_MODEL_OUTPUT');
    expect(e.message).toContain('[2, 4, 8, 8]');
    expect(e.message).toContain("scoreMaps: 'mean'");
    expect((await rejection(m.explain(image, { method: 'gradient', target: 0 }))).code).toBe('ERR_MODEL_OUTPUT');
    // Averaged: PyTorch's mean over the 8 x 8 places of each class's map, on the input the fixture script used.
    const ref = JSON.parse(readFileSync(join(FIXTURES, 'bad', 'score_maps.json'), 'utf8')) as { meanScores: number[] };
    await using avg = await loadModel(bad('score_maps'), { device: 'cpu', scoreMaps: 'mean' });
    const known = { data: Float32Array.from({ length: 3 * 8 * 8 }, (_, i) => (i % 7) / 7), channels: 3, height: 8, width: 8 };
    const p = await avg.predict(known);
    expect(maxAbsDiff(p.logits, ref.meanScores)).toBeLessThan(1e-5);
    const r = await avg.explain(known, { method: 'gradient', target: 1 });
    expect(r.maps[0].data.every(Number.isFinite)).toBe(true);
    await expect(loadModel(bad('score_maps'), { scoreMaps: 'max' as never })).rejects.toMatchObject({
      code: 'ERR_INVALID_ARG_VALUE',
      argument: 'options.scoreMaps',
    });
  });

  it('a tuple or a dict output: its first tensor is the scores', async () => {
    for (const name of ['tuple_first', 'dict_logits']) {
      await using m = await loadModel(bad(name), { device: 'cpu' });
      const [p] = await m.predict(two);
      expect(p.logits.length).toBe(4);
      const r = await m.explain(image, { method: 'grad-cam', layer: 'conv', target: 3 });
      expect(r.maps[0].data.every(Number.isFinite)).toBe(true);
    }
  });

  it("a model that raises: ERR_MODEL_RUN with the model's own message", async () => {
    await using m = await loadModel(bad('raises'), { device: 'cpu' });
    for (const call of [() => m.predict(image), () => m.explain(image, { method: 'gradient', target: 0 })]) {
      const e = await rejection(call());
      expect(e.code).toBe('ERR_MODEL_RUN');
      expect(e.message).toContain('this model refuses every input');
    }
  });

  it('scores that are NaN: ERR_NON_FINITE_RESULT from predict and explain', async () => {
    await using m = await loadModel(bad('nan_scores'), { device: 'cpu' });
    expect((await rejection(m.predict(image))).code).toBe('ERR_NON_FINITE_RESULT');
    expect((await rejection(m.explain(image, { method: 'gradient', target: 0 }))).code).toBe('ERR_NON_FINITE_RESULT');
    expect((await rejection(m.explain(image, { method: 'rise', target: 0, numMasks: 4 }))).code).toBe('ERR_NON_FINITE_RESULT');
  });
});

describe('non-finite inputs and runs', () => {
  it('NaN or Infinity in an input: ERR_NON_FINITE_INPUT naming the image, from predict and explain', async () => {
    await using m = await loadModel(model('tiny_cnn_traced.pt'), { device: 'cpu' });
    for (const bad of [NaN, Infinity, -Infinity]) {
      const im = goldenImage(0);
      im.data[100] = bad;
      const batch = [goldenImage(1), im];
      const calls: (() => Promise<unknown>)[] = [
        () => m.predict(batch),
        () => m.explain(batch, { method: 'gradient', target: [0, 0] }),
        () => m.explain(batch, { method: 'grad-cam', layer: 'features.3', target: [0, 0] }),
        () => m.explain(im, { method: 'rise', target: 0, numMasks: 8 }),
        () => m.explain(im, { method: 'extremal-perturbation', target: 0, maxIter: 2 }),
      ];
      for (const call of calls) {
        const e: TorchSaliencyError = await rejection(call());
        expect(e.code, e.message).toBe('ERR_NON_FINITE_INPUT');
        expect(e.argument).toBe('image');
      }
    }
  });

  it('an extremal perturbation whose area weight overflows: ERR_NON_FINITE_RESULT within 16 steps, never NaN maps', async () => {
    await using m = await loadModel(model('tiny_cnn_traced.pt'), { device: 'cpu' });
    const e = await rejection(m.explain(goldenImage(0), { method: 'extremal-perturbation', target: 0, maxIter: 40, areaWeightGrowth: 1e30 }));
    expect(e.code, e.message).toBe('ERR_NON_FINITE_RESULT');
    // 1e30 per step overflows float at the second step: a run of a million steps stops at the first check.
    const long = await rejection(m.explain(goldenImage(0), { method: 'extremal-perturbation', target: 0, maxIter: 1_000_000, areaWeightGrowth: 1e30 }));
    expect(long.code, long.message).toBe('ERR_NON_FINITE_RESULT');
    expect(long.message).toContain('by step 16 ');
  });
});

describe('labels', () => {
  it('a labels list whose length is not the number of classes is refused at the first call', async () => {
    for (const labels of [['a'], ['a', 'b', 'c', 'd', 'e', 'f']]) {
      await using m = await loadModel(model('shapes_traced.pt'), { device: 'cpu', labels });
      const e = await rejection(m.predict(goldenImage(0)));
      expect(e.code).toBe('ERR_LABELS_MISMATCH');
      expect(e.argument).toBe('options.labels');
      expect(e.message).toContain(`${labels.length} labels`);
      expect((await rejection(m.explain(goldenImage(0), { method: 'gradient', target: 0 }))).code).toBe('ERR_LABELS_MISMATCH');
    }
    await using ok = await loadModel(model('shapes_traced.pt'), { device: 'cpu', labels: ['a', 'b', 'c', 'd'] });
    expect((await ok.predict(goldenImage(0))).top[0].label).toBeDefined();
  });
});
