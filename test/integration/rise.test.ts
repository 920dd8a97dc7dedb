// RISE: reproducible with a seed, one run per image for all its targets, batches, TorchRay parity, errors.
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { loadModel } from '../../lib/index.js';
import { imagesOf, maxAbsDiff, pearson, ROOT } from './helpers.js';

function riseChild(mode: 'masks' | 'abort') {
  const script = join(ROOT, 'test', 'integration', 'children', 'rise-memory.ts');
  const r = spawnSync(process.execPath, ['--import', 'tsx', script, mode], { cwd: ROOT, encoding: 'utf8', timeout: 60_000, killSignal: 'SIGKILL' });
  expect(r.signal, `killed by ${r.signal}: ${r.stderr}`).toBeNull();
  expect(r.status, r.stderr).toBe(0);
  return JSON.parse(r.stdout.trim().split('\n').pop() ?? '{}') as { batchSize: number; peakMB: number; ms: number; code: string };
}

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

  it('chunks of any size give the unchunked maps (masks drawn in blocks, the same for every batchSize)', async () => {
    const model = await loadModel(hand.models[0]);
    const opts = { method: 'rise', numMasks: 2500, seed: 3, target: [0, 2] } as const;
    const whole = await model.explain(images[0], { ...opts, batchSize: 2500 });
    expect(whole.options.batchSize).toBe(2500);
    for (const batchSize of [1000, 128, 7, undefined]) {
      const r = await model.explain(images[0], { ...opts, batchSize });
      r.maps.forEach((m, j) => expect(maxAbsDiff(m.data, whole.maps[j].data), `batchSize ${batchSize}`).toBeLessThan(1e-5));
    }
  });

  it('memory does not grow with the masks: at most 128 per forward by default, peak RSS bounded', () => {
    const r = riseChild('masks');
    expect(r.code).toBe('');
    expect(r.batchSize).toBeLessThanOrEqual(128);
    expect(r.peakMB).toBeLessThan(800);
  }, 70_000);

  it('10 million masks under AbortSignal.timeout(1000): aborted within 3 s, with bounded memory', () => {
    const r = riseChild('abort');
    expect(r.code).toBe('ABORT_ERR');
    expect(r.ms).toBeLessThan(3000);
    expect(r.peakMB).toBeLessThan(800);
  }, 70_000);

  it('rejects bad options with typed errors', async () => {
    const model = await loadModel(hand.models[0]);
    await expect(model.explain(images[0], { method: 'rise', numMasks: 0 })).rejects.toMatchObject({ code: 'ERR_OUT_OF_RANGE', argument: 'options.numMasks' });
    await expect(model.explain(images[0], { method: 'rise', activation: 'relu' } as never)).rejects.toMatchObject({ argument: 'options.activation' });
  });
});
