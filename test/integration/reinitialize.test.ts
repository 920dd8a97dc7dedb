// Model.parameterLayers and Model.cloneReinitialized: the copies the model-randomisation sanity check runs on.
// That the re-drawn weights equal PyTorch's reset_parameters() is checked against PyTorch in evaluate-reference.test.ts.
import { describe, expect, it } from 'vitest';
import { loadModel, runtime } from '../../lib/index.js';
import { join } from 'node:path';
import { ROOT, expectClose, golden, goldenImage, maxAbsDiff, model, rejection } from './helpers.js';

const images = Array.from({ length: golden.inputShape[0] }, (_, b) => goldenImage(b));
const logits = async (m: Awaited<ReturnType<typeof loadModel>>) => (await m.predict(images)).flatMap((p) => [...p.logits]);

describe('parameterLayers', () => {
  it('names the submodules holding parameters, input side first, traced and scripted alike', async () => {
    for (const file of ['tiny_cnn_traced.pt', 'tiny_cnn_scripted.pt']) {
      await using m = await loadModel(model(file), { device: 'cpu' });
      expect(m.parameterLayers()).toEqual(['features.0', 'features.3', 'classifier']);
      // every one of them is a layer the model knows
      for (const name of m.parameterLayers()) expect(m.layers()).toContain(name);
    }
    await using resnet = await loadModel(model('bench_resnet_traced.pt'), { device: 'cpu' });
    expect(resnet.parameterLayers().slice(0, 4)).toEqual(['stem.0', 'stem.1', 'layer1.conv1', 'layer1.bn1']);
    expect(resnet.parameterLayers().at(-1)).toBe('fc');
  });
});

describe('cloneReinitialized', () => {
  it("changes the copy's outputs and leaves the original's as PyTorch computed them", async () => {
    await using m = await loadModel(model('tiny_cnn_traced.pt'), { device: 'cpu' });
    const before = await logits(m);
    await using copy = await m.cloneReinitialized(['classifier']);
    const after = await logits(copy);
    expect(maxAbsDiff(after, before)).toBeGreaterThan(1e-2);
    // the original still gives PyTorch's golden logits
    (await m.predict(images)).forEach((p, b) => expectClose(p.logits, golden.logits[b]));
    expect(copy.labels).toEqual(m.labels);
    expect(copy.device).toBe(m.device);
  });

  it('the same seed draws the same weights, another seed others; a layer draws the same whatever is drawn with it', async () => {
    await using m = await loadModel(model('tiny_cnn_scripted.pt'), { device: 'cpu' });
    await using a = await m.cloneReinitialized(['features.0', 'classifier'], { seed: 7 });
    await using b = await m.cloneReinitialized(['features.0', 'classifier'], { seed: 7 });
    await using c = await m.cloneReinitialized(['features.0', 'classifier'], { seed: 8 });
    expect(maxAbsDiff(await logits(a), await logits(b))).toBe(0);
    expect(maxAbsDiff(await logits(a), await logits(c))).toBeGreaterThan(1e-3);
    // cascading by steps (a copy of a copy) equals drawing both layers at once
    await using first = await m.cloneReinitialized(['classifier'], { seed: 7 });
    await using second = await first.cloneReinitialized(['features.0'], { seed: 7 });
    expect(maxAbsDiff(await logits(second), await logits(a))).toBe(0);
    // the default seed is 42
    await using d1 = await m.cloneReinitialized(['features.3']);
    await using d2 = await m.cloneReinitialized(['features.3'], { seed: 42 });
    expect(maxAbsDiff(await logits(d1), await logits(d2))).toBe(0);
  });

  it('batch norm layers are reset to identity statistics (no draw: any seed gives the same copy); convolutions are drawn', async () => {
    // the bundled EfficientNet-Lite0 is trained: its batch norms hold statistics far from the reset ones
    await using m = await loadModel(join(ROOT, 'examples', 'model', 'efficientnet_lite0.pt'), { device: 'cpu' });
    const image = goldenImage(0, 3, 64, 64);
    const out = async (x: typeof m) => [...(await x.predict(image)).logits];
    const original = await out(m);
    await using bn1 = await m.cloneReinitialized(['_bn0'], { seed: 1 });
    await using bn2 = await m.cloneReinitialized(['_bn0'], { seed: 2 });
    expect(maxAbsDiff(await out(bn1), original)).toBeGreaterThan(1e-3);
    expect(maxAbsDiff(await out(bn1), await out(bn2))).toBe(0);
    await using conv1 = await m.cloneReinitialized(['_conv_stem'], { seed: 1 });
    await using conv2 = await m.cloneReinitialized(['_conv_stem'], { seed: 2 });
    expect(maxAbsDiff(await out(conv1), await out(conv2))).toBeGreaterThan(1e-4);
    expect(maxAbsDiff(await out(m), original)).toBe(0);
  });

  it('an empty list is a plain copy; copies are models of their own, freed by dispose', async () => {
    const start = runtime().liveModels;
    const m = await loadModel(model('tiny_cnn_traced.pt'), { device: 'cpu' });
    const copy = await m.cloneReinitialized([]);
    expect(runtime().liveModels).toBe(start + 2);
    expect(maxAbsDiff(await logits(copy), await logits(m))).toBe(0);
    m.dispose();
    // the copy outlives the original
    (await copy.predict(images)).forEach((p, b) => expectClose(p.logits, golden.logits[b]));
    copy.dispose();
    expect(runtime().liveModels).toBe(start);
  });

  it('bad arguments are typed errors naming the argument', async () => {
    await using m = await loadModel(model('tiny_cnn_traced.pt'), { device: 'cpu' });
    let e = await rejection(m.cloneReinitialized(['features.1']));
    expect(e.code).toBe('ERR_LAYER_NOT_FOUND');
    expect(e.message).toContain('features.0');
    e = await rejection(m.cloneReinitialized(['nope']));
    expect(e.code).toBe('ERR_LAYER_NOT_FOUND');
    e = await rejection(m.cloneReinitialized('classifier' as unknown as string[]));
    expect(e.code).toBe('ERR_INVALID_ARG_TYPE');
    expect(e.message).toContain('layers');
    e = await rejection(m.cloneReinitialized(['classifier'], { seed: -1 }));
    expect(e.code).toBe('ERR_OUT_OF_RANGE');
    e = await rejection(m.cloneReinitialized(['classifier'], { seed: 1.5 }));
    expect(e.code).toBe('ERR_OUT_OF_RANGE');
    e = await rejection(m.cloneReinitialized(['classifier'], { sed: 1 } as never));
    expect(e.message).toContain('sed');
    m.dispose();
    e = await rejection(m.cloneReinitialized(['classifier']));
    expect(e.code).toBe('ERR_DISPOSED');
  });
});
