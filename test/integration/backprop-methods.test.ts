/**
 * The backpropagation family on TorchScript exports, against maps computed by PyTorch eager hooks on a
 * hand-set-weight CNN (scripts/fixtures/methods_reference.py), traced and scripted alike; correlation
 * with TorchRay 1.0 on the tiny_cnn fixture; batches equal single calls; the model is unchanged.
 */
import { createHash } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import { describe, expect, it, beforeAll } from 'vitest';
import { loadModel, readImage, type ExplainOptions, type Model } from '../../lib/index.js';
import { imagesOf, maxAbsDiff, pearson } from './helpers.js';

interface GoldenMap {
  method: string;
  layer: string | null;
  contrastLayer: string | null;
  shape: number[];
  data: number[];
}
const hand = JSON.parse(readFileSync('test/fixtures/methods/hand_golden.json', 'utf8')) as {
  models: string[];
  imageShape: number[];
  images: number[];
  logits: number[];
  jobImage: number[];
  jobTarget: number[];
  maps: Record<string, GoldenMap>;
};
/** Reference maps of another library on tiny_cnn (scripts/fixtures/methods_reference.py). */
interface LibraryMaps {
  model: string;
  imageShape: number[];
  images: number[];
  targets: number[];
  maps: Record<string, { layer: string | null; shape: number[]; data: number[] }>;
}
const captum = JSON.parse(readFileSync('test/fixtures/methods/captum_tiny_cnn.json', 'utf8')) as LibraryMaps;
const torchray = JSON.parse(readFileSync('test/fixtures/methods/torchray_tiny_cnn.json', 'utf8')) as LibraryMaps;

const handImages = imagesOf(hand.images, hand.imageShape);
// Per image, its targets in job order: [[0, 2], [1]].
const targetsPerImage = handImages.map((_, i) => hand.jobTarget.filter((_, j) => hand.jobImage[j] === i));

// The same network with its classifier written as addmm(bias, x, W.t()) (old exports) and as x @ W.t() + b
// (hand-written models): the same function, so the same golden maps (excitation backprop must twin them).
const variants = ['test/fixtures/methods/hand_addmm_traced.pt', 'test/fixtures/methods/hand_matmul_traced.pt'];
const kindOf = (file: string) =>
  file.includes('addmm')
    ? 'traced, addmm classifier'
    : file.includes('matmul')
      ? 'traced, matmul classifier'
      : file.includes('scripted')
        ? 'scripted'
        : 'traced';

for (const file of [...hand.models, ...variants]) {
  describe(`hand-set weights, ${kindOf(file)}`, () => {
    let model: Model;
    beforeAll(async () => {
      model = await loadModel(file);
    });

    for (const [key, golden] of Object.entries(hand.maps)) {
      it(`${key} matches PyTorch eager within 1e-4`, async () => {
        const before = model.handle().requiresGrad();
        const r = await model.explain(handImages, {
          method: golden.method,
          ...(golden.layer ? { layer: golden.layer } : {}),
          ...(golden.contrastLayer ? { contrastLayer: golden.contrastLayer } : {}),
          target: targetsPerImage,
          resize: false,
        } as ExplainOptions);
        expect(r.maps.length).toBe(3);
        const [, h, w] = golden.shape;
        const flat = new Float32Array(r.maps.length * h * w);
        r.maps.forEach((m, j) => {
          expect([m.height, m.width]).toEqual([h, w]);
          flat.set(m.data, j * h * w);
        });
        const scale = Math.max(1e-12, ...golden.data.map(Math.abs));
        // Absolute 1e-4 on maps normalised by their largest value (raw values differ in scale by method).
        expect(maxAbsDiff(flat, golden.data) / scale).toBeLessThan(1e-4);
        expect(model.handle().requiresGrad()).toEqual(before);
      });
    }

    it('a batch equals single calls', async () => {
      const batch = await model.explain(handImages, { method: 'grad-cam', layer: 'features.4', target: targetsPerImage, resize: false });
      const single = await model.explain(handImages[1], { method: 'grad-cam', layer: 'features.4', target: targetsPerImage[1][0], resize: false });
      expect(maxAbsDiff(batch.maps[2].data, single.maps[0].data)).toBeLessThan(1e-6);
      const g1 = await model.explain(handImages, { method: 'guided-backprop', target: targetsPerImage, batchSize: 1, resize: false });
      const g3 = await model.explain(handImages, { method: 'guided-backprop', target: targetsPerImage, resize: false });
      g1.maps.forEach((m, j) => expect(maxAbsDiff(m.data, g3.maps[j].data)).toBeLessThan(1e-6));
    });

    it('leaves the model unchanged after runs and after errors', async () => {
      const flags = model.handle().requiresGrad();
      const p0 = await model.predict(handImages);
      for (const method of ['guided-backprop', 'deconvnet', 'excitation-backprop'] as const) await model.explain(handImages, { method });
      await model.explain(handImages, { method: 'grad-cam', layer: 'features.1' });
      await expect(model.explain(handImages, { method: 'grad-cam', layer: 'features.9' })).rejects.toMatchObject({
        code: 'ERR_LAYER_NOT_FOUND',
        argument: 'options.layer',
      });
      await expect(model.explain(handImages, { method: 'grad-cam', layer: 'classifier' })).rejects.toMatchObject({ code: 'ERR_LAYER_NOT_FOUND' });
      const p1 = await model.predict(handImages);
      expect(model.handle().requiresGrad()).toEqual(flags);
      p0.forEach((p, i) => expect(Array.from(p1[i].logits)).toEqual(Array.from(p.logits)));
      expect(
        maxAbsDiff(
          p0.flatMap((p) => Array.from(p.logits)),
          hand.logits,
        ),
      ).toBeLessThan(1e-5);
    });

    it('lists layers with output shapes', async () => {
      const shapes = await model.layerShapes([16, 16]);
      const byName = Object.fromEntries(shapes.map((s) => [s.name, s.shape]));
      expect(byName['features.1']).toEqual([1, 4, 16, 16]);
      expect(byName['features.4']).toEqual([1, 6, 8, 8]);
      // the variants use the classifier's weights but never call it as a module: it has no output
      expect(byName['classifier']).toEqual(variants.includes(file) ? undefined : [1, 3]);
      expect(Object.keys(byName)).toContain('features');
    });
  });
}

describe('contrastive excitation backprop', () => {
  it('says which layer is wrong when the map layer lies above the contrast layer', async () => {
    const model = await loadModel(hand.models[1]);
    await expect(
      model.explain(handImages, { method: 'contrastive-excitation-backprop', layer: 'features.4', contrastLayer: 'features.1' }),
    ).rejects.toMatchObject({
      code: 'ERR_INVALID_ARG_VALUE',
      argument: 'options.layer',
    });
  });
});

describe('TorchRay 1.0 on tiny_cnn', () => {
  const images = imagesOf(torchray.images, torchray.imageShape);
  for (const file of [torchray.model, torchray.model.replace('traced', 'scripted')]) {
    it(`deterministic methods correlate at r >= 0.95 (${file.includes('scripted') ? 'scripted' : 'traced'})`, async () => {
      const model = await loadModel(file);
      for (const [method, ref] of Object.entries(torchray.maps)) {
        const r = await model.explain(images, {
          method,
          ...(ref.layer ? { layer: ref.layer } : {}),
          target: torchray.targets,
          resize: false,
        } as ExplainOptions);
        const [, h, w] = ref.shape;
        r.maps.forEach((m, b) => {
          const expected = ref.data.slice(b * h * w, (b + 1) * h * w);
          const rr = pearson(m.data, expected);
          expect(rr, `${method} image ${b}: r = ${rr}`).toBeGreaterThanOrEqual(0.95);
          // In fact the same maps: TorchRay's definitions are followed exactly.
          const scale = Math.max(...expected.map(Math.abs));
          expect(maxAbsDiff(m.data, expected) / scale).toBeLessThan(1e-4);
        });
      }
    });
  }
});

// Captum 0.9 as a second oracle (scripts/fixtures/methods_reference.py --captum): its maps reduced as ours
// are (max over channels of |.|; Grad-CAM with relu_attributions; gradient x activation summed).
describe('Captum 0.9 on tiny_cnn', () => {
  const images = imagesOf(captum.images, captum.imageShape);
  for (const file of [captum.model, captum.model.replace('traced', 'scripted')]) {
    it(`gradient, deconvnet, guided backprop, Grad-CAM and linear approximation equal Captum's (${file.includes('scripted') ? 'scripted' : 'traced'})`, async () => {
      const model = await loadModel(file);
      for (const [method, ref] of Object.entries(captum.maps)) {
        const r = await model.explain(images, { method, ...(ref.layer ? { layer: ref.layer } : {}), target: captum.targets, resize: false } as ExplainOptions);
        const [, h, w] = ref.shape;
        r.maps.forEach((m, b) => {
          expect([m.height, m.width]).toEqual([h, w]);
          const expected = ref.data.slice(b * h * w, (b + 1) * h * w);
          const scale = Math.max(...expected.map(Math.abs));
          expect(maxAbsDiff(m.data, expected) / scale, `${method} image ${b}`).toBeLessThan(1e-4);
        });
      }
      model.dispose();
    });
  }
});

// The trained shapes classifier (made on main by scripts/fixtures/make_shapes.py): TorchRay's maps of two
// held-out images. Skipped when the model is absent or was re-made after the reference was computed.
const shapesRef = JSON.parse(readFileSync('test/fixtures/methods/torchray_shapes.json', 'utf8')) as {
  model: string;
  modelSha256: string;
  imageFiles: string[];
  targets: number[];
  maps: Record<string, { layer: string | null; shape: number[]; data: number[] }>;
};
const shapesUsable = existsSync(shapesRef.model) && createHash('sha256').update(readFileSync(shapesRef.model)).digest('hex') === shapesRef.modelSha256;
describe.skipIf(!shapesUsable)('TorchRay 1.0 on the trained shapes model', () => {
  for (const file of [shapesRef.model, shapesRef.model.replace('traced', 'scripted')]) {
    it(`deterministic methods correlate at r >= 0.95 (${file.includes('scripted') ? 'scripted' : 'traced'})`, async () => {
      const model = await loadModel(file);
      const images = await Promise.all(shapesRef.imageFiles.map((f) => readImage(f)));
      for (const [method, ref] of Object.entries(shapesRef.maps)) {
        const r = await model.explain(images, {
          method,
          ...(ref.layer ? { layer: ref.layer } : {}),
          target: shapesRef.targets,
          resize: false,
        } as ExplainOptions);
        const [, h, w] = ref.shape;
        r.maps.forEach((m, b) => {
          const rr = pearson(m.data, ref.data.slice(b * h * w, (b + 1) * h * w));
          expect(rr, `${method} image ${b}: r = ${rr}`).toBeGreaterThanOrEqual(0.95);
        });
      }
    });
  }
});
