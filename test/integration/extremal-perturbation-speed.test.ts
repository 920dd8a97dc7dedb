/**
 * Extremal perturbation's speed options (memoryFormat, freeze): the loop runs on a copy of the model in
 * channels-last layout and/or frozen with BatchNorm folded, which must give the masks of the plain loop
 * (float32, contiguous, unfrozen) up to float rounding and leave the user's model as it was. The copy's
 * output and input gradient are checked against the original op by op in test/native/kernels.cc (a CNN with
 * non-trivial BatchNorm statistics and dropout); here, whole runs.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadModel, runtime, type Image, type Model } from '../../lib/index.js';
import type { ExtremalPerturbationDetails } from '../../lib/methods/extremal-perturbation.js';
import { iouAtHalfMax, maxAbsDiff, model as fixture } from './helpers.js';

const EP = 'extremal-perturbation' as const;
const S = 64;
const details = (r: { details?: unknown }) => r.details as ExtremalPerturbationDetails;

function image(seed: number): Image {
  const data = new Float32Array(3 * S * S);
  let s = seed;
  for (let i = 0; i < data.length; i++) {
    s = (Math.imul(s, 1103515245) + 12345) >>> 0;
    data[i] = (s >>> 8) / 2 ** 24;
  }
  // a brighter square, so the masks have somewhere to go
  for (let c = 0; c < 3; c++)
    for (let y = 20; y < 40; y++) for (let x = 12; x < 34; x++) data[c * S * S + y * S + x] = Math.min(1, data[c * S * S + y * S + x] + 0.6);
  return { data, channels: 3, height: S, width: S };
}

let resnet: Model; // bench ResNet fixture: convolutions with BatchNorm
beforeAll(async () => {
  resnet = await loadModel(fixture('bench_resnet_traced.pt'), { threads: 1 });
});
afterAll(() => resnet?.dispose());

describe('extremal perturbation: speed options give the plain masks', () => {
  const opts = { method: EP, target: 3, areas: [0.05, 0.2], maxIter: 40, step: 3, sigma: 7 } as const;

  it('channels-last, frozen and both equal the plain loop on a CNN with BatchNorm (40 steps)', async () => {
    const img = image(5);
    const plain = await resnet.explain(img, { ...opts, memoryFormat: 'contiguous', freeze: false });
    // the masks moved away from their start (all ones), so equal masks say something
    plain.maps.forEach((m) => expect(m.stats().max - m.stats().min).toBeGreaterThan(0.3));
    expect(details(plain).loop).toEqual({ channelsLast: false, frozen: false, precision: 'fp32' });
    for (const [memoryFormat, freeze] of [
      ['channels-last', false],
      ['contiguous', true],
      ['channels-last', true],
    ] as const) {
      const r = await resnet.explain(img, { ...opts, memoryFormat, freeze });
      expect(details(r).loop).toEqual({ channelsLast: memoryFormat === 'channels-last', frozen: freeze, precision: 'fp32' });
      r.maps.forEach((m, i) => {
        const diff = maxAbsDiff(m.data, plain.maps[i].data);
        console.log(`${memoryFormat}${freeze ? ' frozen' : ''}, area ${m.area}: max difference ${diff.toExponential(2)} from plain`);
        expect(diff).toBeLessThan(1e-3);
        expect(iouAtHalfMax(m.data, plain.maps[i].data)).toBeGreaterThan(0.99);
      });
      // the per-step energies too
      details(r).rewardHistory.forEach((h, i) => {
        const ref = details(plain).rewardHistory[i];
        for (let t = 0; t < h.length; t++) expect(Math.abs(h[t] - ref[t])).toBeLessThanOrEqual(1e-3 * Math.abs(ref[t]) + 1e-4);
      });
    }
  }, 120_000);

  it("'auto' runs channels-last for a convolutional model on the CPU, contiguous for a model without convolutions", async () => {
    const r = await resnet.explain(image(1), { ...opts, maxIter: 2, memoryFormat: 'auto' });
    expect(details(r).loop.channelsLast).toBe(true);
    // the default is the plain loop
    expect(details(await resnet.explain(image(1), { ...opts, maxIter: 2 })).loop).toEqual({ channelsLast: false, frozen: false, precision: 'fp32' });
    const mlp = await loadModel(fixture('fixed_mlp_traced.pt'), { threads: 1 });
    try {
      const small: Image = { data: new Float32Array(3 * 16 * 16).fill(0.5), channels: 3, height: 16, width: 16 };
      const m = await mlp.explain(small, { method: EP, target: 0, areas: [0.2], maxIter: 2, step: 1, sigma: 1, memoryFormat: 'auto' });
      expect(details(m).loop.channelsLast).toBe(false);
    } finally {
      mlp.dispose();
    }
  }, 60_000);

  it("leaves the user's model as it was: the same scores bit for bit and the same gradient flags", async () => {
    const img = image(9);
    const before = (await resnet.predict([img])).map((p) => Array.from(p.logits));
    const flags = resnet.handle().requiresGrad();
    await resnet.explain(img, { ...opts, maxIter: 3, memoryFormat: 'channels-last', freeze: true });
    expect((await resnet.predict([img])).map((p) => Array.from(p.logits))).toEqual(before);
    expect(resnet.handle().requiresGrad()).toEqual(flags);
  }, 60_000);
});

describe("extremal perturbation: precision 'bf16'", () => {
  const major = Number(runtime().torchVersion.split('.')[0]);
  const opts = { method: EP, target: 3, areas: [0.1, 0.2], maxIter: 40, step: 3, sigma: 7 } as const;

  it.runIf(major < 2)('is a typed error on libtorch 1.x, naming options.precision, and the model still works', async () => {
    const img = image(3);
    await expect(resnet.explain(img, { ...opts, precision: 'bf16' })).rejects.toMatchObject({
      code: 'ERR_UNSUPPORTED',
      argument: 'options.precision',
      message: expect.stringMatching(/libtorch 2\.x.*bf16.*fp32/),
    });
    const r = await resnet.explain(img, { ...opts, maxIter: 2 });
    expect(details(r).loop.precision).toBe('fp32');
  });

  it.runIf(major >= 2)(
    'runs the model in bfloat16 and finds masks close to float32 ones (IoU >= 0.85)',
    async () => {
      const img = image(3);
      const fp32 = await resnet.explain(img, opts);
      const bf16 = await resnet.explain(img, { ...opts, precision: 'bf16' });
      expect(details(bf16).loop.precision).toBe('bf16');
      bf16.maps.forEach((m, i) => {
        const iou = iouAtHalfMax(m.data, fp32.maps[i].data);
        console.log(`bf16, area ${m.area}: IoU ${iou.toFixed(3)} with float32, max difference ${maxAbsDiff(m.data, fp32.maps[i].data).toExponential(2)}`);
        expect(iou).toBeGreaterThanOrEqual(0.85);
      });
    },
    120_000,
  );
});
