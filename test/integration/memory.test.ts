// Repeated calls do not leak, and dispose (or garbage collection of an unused model) frees the native model.
import { describe, expect, it } from 'vitest';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { loadModel, runtime } from '../../lib/index.js';
import { goldenImage, model } from './helpers.js';

setFlagsFromString('--expose-gc');
const gc = runInNewContext('gc') as () => void;

async function settle() {
  for (let i = 0; i < 4; i++) {
    gc();
    await new Promise((r) => setImmediate(r));
  }
}

describe('memory', () => {
  it('500 predict calls grow RSS by under 50 MB', async () => {
    await using m = await loadModel(model('tiny_cnn_traced.pt'), { device: 'cpu' });
    const images = [goldenImage(0), goldenImage(1)];
    for (let i = 0; i < 50; i++) await m.predict(images); // warm up allocator and caches
    await settle();
    const before = process.memoryUsage().rss;
    for (let i = 0; i < 500; i += 5) await Promise.all(Array.from({ length: 5 }, () => m.predict(images)));
    await settle();
    const grown = (process.memoryUsage().rss - before) / 2 ** 20;
    expect(grown).toBeLessThan(50);
  });

  it('dispose frees: liveModels returns to its start value', async () => {
    await settle();
    const start = runtime().liveModels;
    const models = await Promise.all([0, 1, 2].map(() => loadModel(model('tiny_cnn_scripted.pt'), { device: 'cpu' })));
    expect(runtime().liveModels).toBe(start + 3);
    for (const m of models) m.dispose();
    expect(runtime().liveModels).toBe(start);
  });

  it('a model dropped without dispose is freed by garbage collection', async () => {
    await settle();
    const start = runtime().liveModels;
    await (async () => {
      const m = await loadModel(model('tiny_cnn_traced.pt'), { device: 'cpu' });
      await m.predict(goldenImage(0));
      expect(runtime().liveModels).toBe(start + 1);
    })();
    for (let i = 0; i < 20 && runtime().liveModels !== start; i++) await settle();
    expect(runtime().liveModels).toBe(start);
  });

  it('loading and disposing 50 models does not leak either', async () => {
    await settle();
    const start = runtime().liveModels;
    for (let i = 0; i < 50; i++) (await loadModel(model('tiny_cnn_traced.pt'), { device: 'cpu' })).dispose();
    await settle();
    expect(runtime().liveModels).toBe(start);
  });
});
