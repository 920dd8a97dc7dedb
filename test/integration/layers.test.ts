// Layer access: probes on clones of scripted instances that share a class type, layer shapes, and the
// errors for layers a model does not have.
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { loadModel } from '../../lib/index.js';
import { imagesOf, maxAbsDiff } from './helpers.js';

const hand = JSON.parse(readFileSync('test/fixtures/methods/hand_golden.json', 'utf8'));
const handImages = imagesOf(hand.images, hand.imageShape);

describe('scripted submodules sharing one class type', () => {
  const twin = JSON.parse(readFileSync('test/fixtures/methods/twin_golden.json', 'utf8'));
  const images = imagesOf(twin.images, twin.imageShape);
  it('Grad-CAM at blocks.0, blocks.1 and blocks.0.conv matches PyTorch eager; the module is untouched', async () => {
    const model = await loadModel(twin.model);
    const p0 = await model.predict(images);
    for (const [layer, golden] of Object.entries(twin.gradCam) as [string, { shape: number[]; data: number[] }][]) {
      const r = await model.explain(images, { method: 'grad-cam', layer, target: twin.targets, resize: false });
      const flat = new Float32Array(golden.data.length);
      r.maps.forEach((m, j) => flat.set(m.data, j * m.data.length));
      const scale = Math.max(...golden.data.map(Math.abs));
      expect(scale).toBeGreaterThan(0);
      expect(maxAbsDiff(flat, golden.data) / scale, layer).toBeLessThan(1e-4);
    }
    const p1 = await model.predict(images);
    p0.forEach((p, i) => expect(Array.from(p1[i].logits)).toEqual(Array.from(p.logits)));
    expect(
      maxAbsDiff(
        p1.flatMap((p) => Array.from(p.logits)),
        twin.logits,
      ),
    ).toBeLessThan(1e-5);
    const shapes = Object.fromEntries((await model.layerShapes([16, 16])).map((l) => [l.name, l.shape]));
    expect(shapes['blocks.0.conv']).toEqual([1, 4, 16, 16]);
    expect(shapes['blocks.1']).toEqual([1, 4, 16, 16]);
    expect(shapes['classifier']).toEqual([1, 3]);
  });
});

describe('unknown layers', () => {
  it('ERR_LAYER_NOT_FOUND lists the valid names; a missing layer is a typed error', async () => {
    const model = await loadModel(hand.models[0]);
    const err = await model.explain(handImages[0], { method: 'linear-approx', layer: 'nope' }).catch((e) => e);
    expect(err.code).toBe('ERR_LAYER_NOT_FOUND');
    expect(err.message).toContain('features.3');
    await expect(model.explain(handImages[0], { method: 'grad-cam' } as never)).rejects.toMatchObject({ argument: 'options.layer' });
    // Each layer option is named as the caller wrote it, from the native side too.
    await expect(model.explain(handImages[0], { method: 'grad-cam', layer: 'nope' })).rejects.toMatchObject({
      code: 'ERR_LAYER_NOT_FOUND',
      argument: 'options.layer',
    });
    await expect(model.explain(handImages[0], { method: 'contrastive-excitation-backprop', contrastLayer: 'nope' })).rejects.toMatchObject({
      code: 'ERR_LAYER_NOT_FOUND',
      argument: 'options.contrastLayer',
    });
  });
});
