// Runs where the addon's libtorch has CUDA and a GPU is visible (skipped elsewhere): predict on 'cuda'
// equals predict on 'cpu' and PyTorch's golden values.
import { describe, expect, it } from 'vitest';
import { loadModel, runtime } from '../../lib/index.js';
import { expectClose, golden, goldenImage, model } from './helpers.js';

const cuda = runtime().cudaAvailable;

describe.skipIf(!cuda)('CUDA', () => {
  it("predict on 'cuda' equals 'cpu' and the golden logits", async () => {
    const images = Array.from({ length: 4 }, (_, b) => goldenImage(b));
    for (const file of ['tiny_cnn_traced.pt', 'tiny_cnn_scripted.pt']) {
      await using gpu = await loadModel(model(file), { device: 'cuda' });
      await using cpu = await loadModel(model(file), { device: 'cpu' });
      expect(gpu.info().device).toMatch(/^cuda/);
      const [g, c] = [await gpu.predict(images), await cpu.predict(images)];
      g.forEach((p, i) => {
        expectClose(p.logits, c[i].logits, 1e-4, 1e-4);
        expectClose(p.logits, golden.logits[i]);
      });
    }
  });

  it("'auto' picks CUDA, mean/std work on the GPU, and concurrent calls are right", async () => {
    await using auto = await loadModel(model('tiny_cnn_traced.pt'), { device: 'auto', mean: golden.mean, std: golden.std });
    expect(auto.device).toMatch(/^cuda/);
    const out = await Promise.all(Array.from({ length: 16 }, (_, i) => auto.predict(goldenImage(i % 4))));
    out.forEach((p, i) => expectClose(p.logits, golden.logitsNormalized[i % 4]));
  });
});

describe.skipIf(cuda)('without CUDA', () => {
  it('runtime() says so', () => {
    expect(runtime().cudaDevices).toBe(0);
  });
});
