/**
 * Layer access on scripted instances that share a class type, RISE (reproducibility, one run per image
 * for all targets, batches), and channel perturbation on a model built so that the answer is known.
 */
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { loadModel } from '../../lib/index.js';
import { imagesOf, maxAbsDiff, pearson } from './helpers.js';

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

describe('contrastive excitation backprop', () => {
  it('says which layer is wrong when the map layer lies above the contrast layer', async () => {
    const hand = JSON.parse(readFileSync('test/fixtures/methods/hand_golden.json', 'utf8'));
    const model = await loadModel(hand.models[1]);
    const images = imagesOf(hand.images, hand.imageShape);
    await expect(model.explain(images, { method: 'contrastive-excitation-backprop', layer: 'features.4', contrastLayer: 'features.1' })).rejects.toMatchObject({
      code: 'ERR_INVALID_ARG_VALUE',
      argument: 'options.layer',
    });
  });
});

describe('rise', () => {
  const hand = JSON.parse(readFileSync('test/fixtures/methods/hand_golden.json', 'utf8'));
  const images = imagesOf(hand.images, hand.imageShape);
  it('is reproducible with a seed, one run serves every target, a batch equals single calls', async () => {
    const model = await loadModel(hand.models[0]);
    const opts = { method: 'rise', numMasks: 400, seed: 7 } as const;
    const all = await model.explain(images, { ...opts, target: [[0, 1, 2], 1] });
    const again = await model.explain(images, { ...opts, target: [[0, 1, 2], 1] });
    all.maps.forEach((m, j) => expect(Array.from(m.data)).toEqual(Array.from(again.maps[j].data)));
    const other = await model.explain(images, { ...opts, seed: 8, target: [[0, 1, 2], 1] });
    expect(maxAbsDiff(all.maps[0].data, other.maps[0].data)).toBeGreaterThan(1e-4);
    const single = await model.explain(images[1], { ...opts, target: 1 });
    expect(maxAbsDiff(all.maps[3].data, single.maps[0].data)).toBeLessThan(1e-6);
    const chunked = await model.explain(images[0], { ...opts, target: 2, batchSize: 64 });
    expect(maxAbsDiff(all.maps[2].data, chunked.maps[0].data)).toBeLessThan(1e-5);
    // Softmax weights: the three class maps of one image sum to sum_i M_i / (N p), about 1 everywhere.
    const sum = all.maps[0].data.map((v, k) => v + all.maps[1].data[k] + all.maps[2].data[k]);
    for (const v of sum) expect(Math.abs(v - 1)).toBeLessThan(0.3);
  });

  it('puts class 0 on the box its logit reads, and correlates with TorchRay (random masks: r >= 0.9)', async () => {
    const box = JSON.parse(readFileSync('test/fixtures/methods/box_rise.json', 'utf8'));
    const model = await loadModel(box.model);
    const image = { data: new Float32Array(3 * 32 * 32).fill(box.fill), channels: 3, height: 32, width: 32 };
    const r = await model.explain(image, { method: 'rise', activation: 'sigmoid', numMasks: 4000, target: 0 });
    const d = r.maps[0].data;
    let inside = 0,
      outside = 0,
      best = 0;
    const { top, bottom, left, right } = box.box;
    for (let i = 0; i < d.length; i++) {
      const y = Math.floor(i / 32),
        x = i % 32;
      if (y >= top && y < bottom && x >= left && x < right) inside += d[i] / ((bottom - top) * (right - left));
      else outside += d[i] / (1024 - (bottom - top) * (right - left));
      if (d[i] > d[best]) best = i;
    }
    expect(inside).toBeGreaterThan(outside + 0.05);
    const [by, bx] = [Math.floor(best / 32), best % 32];
    expect(by >= top - 2 && by < bottom + 2 && bx >= left - 2 && bx < right + 2, `argmax at ${by},${bx}`).toBe(true);
    expect(pearson(d, box.torchrayRise.data)).toBeGreaterThanOrEqual(0.9);
  });

  it('rejects bad options with typed errors', async () => {
    const model = await loadModel(hand.models[0]);
    await expect(model.explain(images[0], { method: 'rise', numMasks: 0 })).rejects.toMatchObject({ code: 'ERR_OUT_OF_RANGE', argument: 'options.numMasks' });
    await expect(model.explain(images[0], { method: 'rise', activation: 'relu' } as never)).rejects.toMatchObject({ argument: 'options.activation' });
  });
});

describe('channel-perturbation', () => {
  const golden = JSON.parse(readFileSync('test/fixtures/methods/channels_golden.json', 'utf8'));
  const images = imagesOf(golden.images, golden.imageShape);
  it('finds the two channels the class reads, per image and for the class over both images', async () => {
    const model = await loadModel(golden.model);
    const flags = model.handle().requiresGrad();
    for (const mode of ['image', 'class'] as const) {
      const r = await model.explain(images, { method: 'channel-perturbation', layer: golden.layer, area: 2 / 6, maxIter: 150, mode, target: golden.target });
      const channels = (r.details as { channels: { ranked: { channel: number; score: number }[]; group: number }[] }).channels;
      expect(channels.length).toBe(2);
      for (const c of channels) {
        expect(
          c.ranked
            .slice(0, 2)
            .map((x) => x.channel)
            .sort(),
        ).toEqual(golden.channels);
        expect(c.ranked[1].score).toBeGreaterThan(0.9);
        expect(c.ranked[2].score).toBeLessThan(0.1);
      }
      if (mode === 'class') expect(channels[0].group).toBe(channels[1].group);
      expect(r.maps[0].height).toBe(16);
      expect(Math.max(...r.maps[0].data)).toBeGreaterThan(0);
    }
    expect(model.handle().requiresGrad()).toEqual(flags);
    await expect(model.explain(images, { method: 'channel-perturbation', layer: 'pool.x' })).rejects.toMatchObject({ code: 'ERR_LAYER_NOT_FOUND' });
  });

  it('reports progress and stops on abort, leaving the model as it was', async () => {
    const model = await loadModel(golden.model);
    const before = await model.predict(images);
    const seen: number[] = [];
    const controller = new AbortController();
    const run = model.explain(images, {
      method: 'channel-perturbation',
      layer: golden.layer,
      maxIter: 100000,
      progressEvery: 5,
      signal: controller.signal,
      onProgress: (p) => {
        seen.push(p.iteration);
        if (seen.length === 3) controller.abort();
      },
    });
    await expect(run).rejects.toMatchObject({ code: 'ABORT_ERR' });
    expect(seen.length).toBeGreaterThanOrEqual(3);
    const after = await model.predict(images);
    before.forEach((p, i) => expect(Array.from(after[i].logits)).toEqual(Array.from(p.logits)));
  });
});
