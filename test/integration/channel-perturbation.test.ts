// Channel perturbation on a model built so that the answer is known: the two channels its class reads.
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { loadModel } from '../../lib/index.js';
import { imagesOf } from './helpers.js';

describe('channel-perturbation', () => {
  const golden = JSON.parse(readFileSync('test/fixtures/methods/channels_golden.json', 'utf8'));
  const images = imagesOf(golden.images, golden.imageShape);
  it('finds the two channels the class reads, per image and for the class over both images', async () => {
    const model = await loadModel(golden.model);
    const flags = model.handle().requiresGrad();
    for (const mode of ['image', 'class'] as const) {
      const r = await model.explain(images, { method: 'channel-perturbation', layer: golden.layer, area: 2 / 6, maxIter: 150, mode, target: golden.target });
      const channels = r.details.channels;
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
