// Channel perturbation on a model built so that the answer is known: the two channels its class reads; at
// a ViT's token layers, against PyTorch (scripts/fixtures/channel_tokens_reference.py) and by construction.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { loadModel, readImage } from '../../lib/index.js';
import { FIXTURES, expectClose, imagesOf, rejection } from './helpers.js';

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

describe('channel-perturbation at token layers (a ViT, scripts/fixtures/make_vit.py)', () => {
  const VIT = join(FIXTURES, 'vit');
  const ref = JSON.parse(readFileSync(join(VIT, 'channel_tokens.json'), 'utf8')) as {
    layer: string;
    images: string[];
    targets: number[];
    learningRate: number;
  } & Record<'fade' | 'mean', { mask: number[]; reward: number[]; map: number[] }>;
  const images = () => Promise.all(ref.images.map((f) => readImage(join(FIXTURES, 'shapes', f))));
  /** Per job, the mask by channel (details.channels ranks them). */
  const masks = (channels: { ranked: { channel: number; score: number }[] }[]) =>
    channels.flatMap((c) => {
      const m = new Array<number>(c.ranked.length);
      for (const { channel, score } of c.ranked) m[channel] = score;
      return m;
    });

  it('N x T x C (blocks.1: 1 class token + 8 x 8): the first step equals PyTorch, fade and mean', async () => {
    const model = await loadModel(join(VIT, 'vit_traced.pt'));
    const x = await images();
    for (const perturbation of ['fade', 'mean'] as const) {
      const r = await model.explain(x, {
        method: 'channel-perturbation',
        layer: ref.layer,
        perturbation,
        maxIter: 1,
        lambda: 0,
        learningRate: ref.learningRate,
        target: ref.targets,
        resize: false,
      });
      expectClose(masks(r.details.channels), ref[perturbation].mask, 1e-5, 1e-4);
      expectClose(r.details.rewardHistory.data, ref[perturbation].reward, 1e-4, 1e-4);
      expect([r.maps[0].height, r.maps[0].width]).toEqual([8, 8]);
      expectClose(
        r.maps.flatMap((m) => Array.from(m.data)),
        ref[perturbation].map,
        1e-5,
        1e-4,
      );
    }
  });

  it('N x H x W x C (patch_embed) gives what its N x C x H x W twin (patch_embed.proj, before the permute) gives', async () => {
    const model = await loadModel(join(VIT, 'vit_scripted.pt'));
    const x = await images();
    const run = (layer: string) =>
      model.explain(x, { method: 'channel-perturbation', layer, perturbation: 'mean', area: 0.2, maxIter: 30, target: ref.targets, resize: false });
    const [nhwc, nchw] = [await run('patch_embed'), await run('patch_embed.proj')];
    expect(nhwc.details.channels[0].ranked.length).toBe(64);
    expectClose(masks(nhwc.details.channels), masks(nchw.details.channels), 1e-5, 1e-4);
    expectClose(
      nhwc.maps.flatMap((m) => Array.from(m.data)),
      nchw.maps.flatMap((m) => Array.from(m.data)),
      1e-5,
      1e-4,
    );
  });

  it('a layer that fits no layout, or a grid that does not fit, gets a typed error naming the option', async () => {
    const model = await loadModel(join(VIT, 'vit_traced.pt'));
    const [one] = await images();
    let e = await rejection(model.explain(one, { method: 'channel-perturbation', layer: 'head', maxIter: 1 }));
    expect([e.code, e.argument]).toEqual(['ERR_LAYER_NOT_FOUND', 'options.layer']);
    e = await rejection(model.explain(one, { method: 'channel-perturbation', layer: 'blocks.1', grid: [9, 9], maxIter: 1 }));
    expect([e.code, e.argument]).toEqual(['ERR_INVALID_ARG_VALUE', 'options.grid']);
    e = await rejection(model.explain(one, { method: 'channel-perturbation', layer: 'blocks.1', layout: 'nhwc', maxIter: 1 }));
    expect([e.code, e.argument]).toEqual(['ERR_INVALID_ARG_VALUE', 'options.layout']);
  });
});
