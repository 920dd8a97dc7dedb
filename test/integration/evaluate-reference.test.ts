// The evaluation scores against Quantus 0.6 (test/fixtures/evaluate/quantus_shapes.json, made by
// scripts/fixtures/quantus_reference.py on the shapes model and its 16 held-out images): pointing game,
// deletion (PixelFlipping), model-parameter randomisation (MPRT: Spearman; SSIM by scikit-image) within 1e-4,
// and the re-drawn weights against PyTorch's reset_parameters().
import { describe, expect, it } from 'vitest';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { PointingGame, evaluate, fidelityCurve, loadModel, readImage, sanityCheck, type EvaluationImage } from '../../lib/index.js';
import { FIXTURES, expectClose } from './helpers.js';

interface Reference {
  images: string[];
  targets: number[];
  tolerance: number;
  maps: string[];
  pointingGame: { boxes: number[][]; hits: boolean[]; shiftedBoxes: number[][]; shiftedHits: boolean[] };
  pixelFlipping: { featuresInStep: number; channels: number; curves: number[][] };
  mprt: { torchSaliencySeed: number; layers: string[]; spearman: Record<string, number[]>; ssim: Record<string, number[]>; fullyRandomisedLogits: number[][] };
}

const ref = JSON.parse(readFileSync(join(FIXTURES, 'evaluate', 'quantus_shapes.json'), 'utf8')) as Reference;
const SIZE = 64;
const theirMaps = ref.maps.map((b64) => {
  const bytes = Buffer.from(b64, 'base64');
  return { data: new Float32Array(bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.byteLength)), height: SIZE, width: SIZE };
});
const open = () => loadModel(join(FIXTURES, 'models', 'shapes_traced.pt'), { device: 'cpu' });
const images = () => Promise.all(ref.images.map((f) => readImage(join(FIXTURES, 'shapes', f))));

describe('against Quantus', () => {
  it("torch-saliency's gradient maps are the maps Quantus scored", async () => {
    await using model = await open();
    const r = await model.explain(await images(), { method: 'gradient', target: ref.targets });
    r.maps.forEach((m, i) => expectClose(m.data, theirMaps[i].data, 1e-6, 1e-4));
  });

  it('pointing game: the same hit or miss for every image, true boxes and boxes moved 24 px', async () => {
    await using model = await open();
    const imgs = await images();
    for (const [boxes, hits] of [
      [ref.pointingGame.boxes, ref.pointingGame.hits],
      [ref.pointingGame.shiftedBoxes, ref.pointingGame.shiftedHits],
    ] as const) {
      // on Quantus's maps
      const game = new PointingGame(4, { tolerance: ref.tolerance });
      const ours = theirMaps.map((m, i) => game.evaluate(m, ref.targets[i], { boxes: [boxes[i] as [number, number, number, number]] }));
      expect(ours).toEqual(hits);
      // and through evaluate() on torch-saliency's own maps
      const items: EvaluationImage[] = imgs.map((image, i) => ({
        name: ref.images[i],
        image,
        objects: [{ classIndex: ref.targets[i], boxes: [boxes[i] as [number, number, number, number]] }],
      }));
      const e = await evaluate(model, items, { methods: ['gradient'], scores: ['pointing-game'] });
      expect(e.methods[0].pointingGame!.hits).toEqual(hits);
    }
    expect(ref.pointingGame.shiftedHits.filter(Boolean).length).toBeGreaterThan(2); // both outcomes occur
    expect(ref.pointingGame.shiftedHits.filter((h) => !h).length).toBeGreaterThan(2);
  });

  it('deletion with a black baseline: the PixelFlipping curve, point by point within 1e-4', async () => {
    await using model = await open();
    const imgs = await images();
    const { featuresInStep, channels, curves } = ref.pixelFlipping;
    const steps = (SIZE * SIZE) / featuresInStep;
    for (let i = 0; i < imgs.length; i++) {
      const c = await fidelityCurve(model, imgs[i], theirMaps[i], ref.targets[i], 'deletion', { steps, deletionBaseline: 'zero' });
      // Quantus's point after step `channels * j` (whole pixels) is ours at fraction j / steps
      const theirs = Array.from({ length: steps }, (_, j) => curves[i][channels * (j + 1) - 1]);
      expectClose(c.probabilities.slice(1), theirs, 1e-4, 0);
    }
  });

  it('model-parameter randomisation, cascading from the top: Spearman and SSIM per layer and image within 1e-4', async () => {
    await using model = await open();
    const imgs = await images();
    const original = await model.explain(imgs, { method: 'gradient', target: ref.targets });
    const r = await sanityCheck(
      model,
      imgs,
      ref.targets.map((target, image) => ({ image, target })),
      original.maps,
      { method: 'gradient' },
      { seed: ref.mprt.torchSaliencySeed },
    );
    const layers = ref.mprt.layers.filter((l) => l !== 'original');
    expect(r.steps.map((s) => s.layer)).toEqual(layers);
    r.steps.forEach((s) => {
      expectClose(s.spearmanPerMap, ref.mprt.spearman[s.layer], 1e-4, 0);
      expectClose(s.ssimPerMap, ref.mprt.ssim[s.layer], 1e-4, 0);
    });
  });

  it("the fully re-drawn model gives PyTorch's logits (reset_parameters() of every layer, seed 42 + 1)", async () => {
    await using model = await open();
    await using random = await model.cloneReinitialized(model.parameterLayers(), { seed: ref.mprt.torchSaliencySeed });
    const p = await random.predict(await images());
    p.forEach((x, i) => expectClose(x.logits, ref.mprt.fullyRandomisedLogits[i], 1e-5, 1e-4));
  });
});
