// A loaded Model: predict against PyTorch's golden logits (scripts/fixtures/make_models.py), concurrent calls, layers, info, runtime, dispose.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readFileSync } from 'node:fs';
import { loadModel, runtime, type Model } from '../../lib/index.js';
import { expectClose, golden, goldenImage, model } from './helpers.js';

describe('predict matches PyTorch', () => {
  const batch = golden.inputShape[0];
  const images = Array.from({ length: batch }, (_, b) => goldenImage(b));

  for (const file of ['tiny_cnn_traced.pt', 'tiny_cnn_scripted.pt']) {
    it(`${file}: logits of a batch equal PyTorch's within 1e-4`, async () => {
      await using m = await loadModel(model(file), { device: 'cpu' });
      const predictions = await m.predict(images);
      expect(predictions).toHaveLength(batch);
      predictions.forEach((p, b) => expectClose(p.logits, golden.logits[b]));
      // one image at a time, and the raw { data, shape } form, give the same numbers
      expectClose((await m.predict(images[2])).logits, golden.logits[2]);
      const flat = new Float32Array(batch * 3 * 32 * 32);
      images.forEach((im, b) => flat.set(im.data, b * im.data.length));
      const raw = await m.predict({ data: flat, shape: [batch, 3, 32, 32] });
      raw.forEach((p, b) => expectClose(p.logits, golden.logits[b]));
    });
  }

  it('mean/std options normalise inside the call: equal to the model exported with its normalisation', async () => {
    await using withOptions = await loadModel(model('tiny_cnn_traced.pt'), { device: 'cpu', mean: golden.mean, std: golden.std });
    await using inside = await loadModel(model('tiny_cnn_norm_traced.pt'), { device: 'cpu' });
    const a = await withOptions.predict(images);
    const b = await inside.predict(images);
    a.forEach((p, i) => expectClose(p.logits, golden.logitsNormalized[i]));
    b.forEach((p, i) => expectClose(p.logits, golden.logitsNormalized[i]));
  });

  it('a model loaded from a Buffer gives the same logits, and a fixed-size model its own golden values', async () => {
    await using m = await loadModel(readFileSync(model('tiny_cnn_scripted.pt')), { device: 'cpu' });
    expectClose((await m.predict(images[0])).logits, golden.logits[0]);
    await using mlp = await loadModel(model('fixed_mlp_traced.pt'), { device: 'cpu' });
    expectClose((await mlp.predict(goldenImage(0, 3, 16, 16))).logits, golden.fixedMlp.logits[0]);
  });

  it('probabilities are the softmax of the logits and top is ranked, with labels', async () => {
    await using m = await loadModel(model('tiny_cnn_traced.pt'), { device: 'cpu', labels: ['a', 'b', 'c', 'd', 'e'] });
    const p = await m.predict(images[0], { top: 3 });
    const l = golden.logits[0];
    const z = l.reduce((s, x) => s + Math.exp(x), 0);
    expectClose(
      p.probabilities,
      l.map((x) => Math.exp(x) / z),
      1e-6,
      1e-5,
    );
    const order = [...l.keys()].sort((i, j) => l[j] - l[i]).slice(0, 3);
    expect(p.top.map((t) => t.index)).toEqual(order);
    expect(p.top.map((t) => t.label)).toEqual(order.map((i) => 'abcde'[i]));
  });
});

describe('a loaded model', () => {
  let m: Model;
  beforeAll(async () => {
    m = await loadModel(model('tiny_cnn_traced.pt'), { device: 'cpu' });
  });
  afterAll(() => m.dispose());

  it('answers 32 concurrent predictions, each with its own image', async () => {
    const results = await Promise.all(Array.from({ length: 32 }, (_, i) => m.predict(goldenImage(i % 4))));
    results.forEach((p, i) => expectClose(p.logits, golden.logits[i % 4]));
    expect(m.pending).toBe(0);
  });

  it('layers() lists the named submodules', () => {
    expect(m.layers()).toEqual(golden.layers);
  });

  it('info() describes it', () => {
    const info = m.info();
    expect(info.device).toBe('cpu');
    expect(info.inputChannels).toBe(3);
    // conv 3->8 (3x3) + conv 8->16 (3x3) + linear 16->5, with biases
    expect(info.parameters).toBe(3 * 8 * 9 + 8 + 8 * 16 * 9 + 16 + 16 * 5 + 5);
    expect(info.torchVersion).toBe(runtime().torchVersion);
    expect(info.torchVersion).toMatch(/^\d+\.\d+\.\d+/);
  });

  it('runtime() reports threads and devices', () => {
    const r = runtime();
    expect(r.threads).toBeGreaterThanOrEqual(1);
    expect(r.threads).toBeLessThanOrEqual(r.availableCores);
    expect(typeof r.cudaAvailable).toBe('boolean');
    expect(r.liveModels).toBeGreaterThanOrEqual(1);
  });
});

describe('dispose', () => {
  it('Symbol.asyncDispose releases the model at the end of the block', async () => {
    const start = runtime().liveModels;
    let kept: Model;
    {
      await using m = await loadModel(model('tiny_cnn_traced.pt'), { device: 'cpu' });
      kept = m;
      expect(runtime().liveModels).toBe(start + 1);
    }
    expect(kept.disposed).toBe(true);
    expect(runtime().liveModels).toBe(start);
  });

  it('lets a call in flight finish; later calls get ERR_DISPOSED', async () => {
    const m = await loadModel(model('tiny_cnn_traced.pt'), { device: 'cpu' });
    const inFlight = m.predict(goldenImage(1));
    const more = [0, 1, 2, 3].map((b) => m.predict(goldenImage(b))); // queued together behind it
    m.dispose();
    expectClose((await inFlight).logits, golden.logits[1]);
    (await Promise.all(more)).forEach((p, b) => expectClose(p.logits, golden.logits[b]));
    await expect(m.predict(goldenImage(1))).rejects.toMatchObject({ code: 'ERR_DISPOSED' });
    expect(() => m.layers()).toThrow(expect.objectContaining({ code: 'ERR_DISPOSED' }));
  });
});
