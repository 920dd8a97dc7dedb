/**
 * Transformer classifiers: token-layer Grad-CAM (N x T x C and N x H x W x C layers), attention rollout and
 * attention relevance on a small ViT trained on the shapes task (scripts/fixtures/make_vit.py), traced and
 * scripted, against the same maps computed in PyTorch eager (float64) and against PyPI grad-cam's
 * GradCAM with its ViT reshape_transform; errors for layers and options that do not fit; the pointing
 * game of each map on the 16 held-out shapes images beside the shapes CNN's Grad-CAM.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { loadModel, PointingGame, readImage, runtime, type Image, type Model } from '../../lib/index.js';
import { FIXTURES, expectClose, model as modelPath, pearson, rejection } from './helpers.js';

const VIT = join(FIXTURES, 'vit');
const ref = JSON.parse(readFileSync(join(VIT, 'reference.json'), 'utf8')) as {
  images: string[];
  targets: number[];
  grid: [number, number];
  logits: number[];
  heldOutAccuracy: number;
  attentionLayers: string[];
  rollout: Record<'mean' | 'max' | 'min' | 'meanDiscard0.9', number[]>;
  relevance: number[];
  gradCam: Record<'blocks.3.norm1' | 'blocks.1' | 'patch_embed', number[]>;
  gradCamPackage: { version: string; layer: string; images: number; size: [number, number]; maps: number[] };
};
const boxes = JSON.parse(readFileSync(join(FIXTURES, 'shapes', 'boxes.json'), 'utf8')) as {
  file: string;
  classIndex: number;
  box: [number, number, number, number];
}[];
const PLANE = ref.grid[0] * ref.grid[1];

let images: Image[];
beforeAll(async () => {
  images = await Promise.all(ref.images.map((f) => readImage(join(FIXTURES, 'shapes', f))));
});

const flatMaps = (maps: readonly { data: Float32Array }[]) => Float32Array.from(maps.flatMap((m) => Array.from(m.data)));
/** Oracle values are float64 sums of float32 products: 1e-4 relative to the largest value of each map set. */
const closeTo = (actual: ArrayLike<number>, expected: number[]) => expectClose(actual, expected, 1e-4 * Math.max(...expected.map(Math.abs)), 1e-4);

for (const kind of ['traced', 'scripted'] as const) {
  describe(`ViT, ${kind}`, () => {
    let model: Model;
    beforeAll(async () => {
      model = await loadModel(join(VIT, `vit_${kind}.pt`));
    });

    it('loads in this libtorch and predicts as PyTorch eager', async () => {
      const p = await model.predict(images);
      expectClose(
        p.flatMap((x) => Array.from(x.logits)),
        ref.logits,
        1e-4,
        1e-4,
      );
    });

    it('Grad-CAM at token layers (N x 65 x 64: 1 class token + 8 x 8) and at a channels-last layer equals PyTorch', async () => {
      for (const layer of ['blocks.3.norm1', 'blocks.1'] as const) {
        const r = await model.explain(images, { method: 'grad-cam', layer, target: ref.targets, resize: false });
        expect([r.maps[0].height, r.maps[0].width]).toEqual(ref.grid);
        closeTo(flatMaps(r.maps), ref.gradCam[layer]);
      }
      // patch_embed returns N x 8 x 8 x 64: 'auto' reads it as channels last (only that reading has the image's aspect).
      for (const layout of ['auto', 'nhwc'] as const) {
        const r = await model.explain(images, { method: 'grad-cam', layer: 'patch_embed', layout, target: ref.targets, resize: false });
        closeTo(flatMaps(r.maps), ref.gradCam.patch_embed);
      }
      // The same split given explicitly.
      const given = await model.explain(images.slice(0, 2), {
        method: 'grad-cam',
        layer: 'blocks.1',
        prefixTokens: 1,
        grid: [8, 8],
        target: ref.targets.slice(0, 2),
        resize: false,
      });
      closeTo(flatMaps(given.maps), ref.gradCam['blocks.1'].slice(0, 2 * PLANE));
    });

    it('attention rollout equals PyTorch (mean, max, min; discardRatio 0.9)', async () => {
      const cases = [
        ['mean', 0, 'mean'],
        ['max', 0, 'max'],
        ['min', 0, 'min'],
        ['mean', 0.9, 'meanDiscard0.9'],
      ] as const;
      for (const [headFusion, discardRatio, key] of cases) {
        const r = await model.explain(images, { method: 'attention-rollout', headFusion, discardRatio, resize: false });
        expect(r.details.attentionLayers).toBe(4);
        closeTo(flatMaps(r.maps), ref.rollout[key]);
      }
    });

    it('attention relevance equals PyTorch; named layers equal the ones found', async () => {
      const r = await model.explain(images, { method: 'attention-relevance', target: ref.targets, resize: false });
      closeTo(flatMaps(r.maps), ref.relevance);
      const named = await model.explain(images.slice(0, 3), {
        method: 'attention-relevance',
        attentionLayers: 'blocks.*.attn.attn_drop',
        target: ref.targets.slice(0, 3),
        resize: false,
      });
      closeTo(flatMaps(named.maps), ref.relevance.slice(0, 3 * PLANE));
    });
  });
}

describe('ViT, both exports', () => {
  let traced: Model;
  let scripted: Model;
  beforeAll(async () => {
    traced = await loadModel(join(VIT, 'vit_traced.pt'));
    scripted = await loadModel(join(VIT, 'vit_scripted.pt'));
  });

  it('token Grad-CAM agrees with PyPI grad-cam (reshape_transform) at image size, r >= 0.99', async () => {
    const n = ref.gradCamPackage.images;
    const [h, w] = ref.gradCamPackage.size;
    const r = await traced.explain(images.slice(0, n), { method: 'grad-cam', layer: ref.gradCamPackage.layer, target: ref.targets.slice(0, n) });
    for (let i = 0; i < n; i++) {
      expect([r.maps[i].height, r.maps[i].width]).toEqual([h, w]);
      const theirs = ref.gradCamPackage.maps.slice(i * h * w, (i + 1) * h * w);
      expect(pearson(r.maps[i].data, theirs)).toBeGreaterThanOrEqual(0.99);
    }
  });

  it('layerShapes shows token and channels-last layers; a batch equals single calls; the model is unchanged', async () => {
    const shapes = Object.fromEntries((await traced.layerShapes([64, 64])).map((l) => [l.name, l.shape]));
    expect(shapes['blocks.3.norm1']).toEqual([1, 65, 64]);
    expect(shapes.patch_embed).toEqual([1, 8, 8, 64]);
    expect(shapes['blocks.0.attn.attn_drop']).toEqual([1, 4, 65, 65]);
    const before = await scripted.predict(images[0]);
    const batch = await scripted.explain(images.slice(0, 3), { method: 'attention-relevance', target: ref.targets.slice(0, 3) });
    for (let i = 0; i < 3; i++) {
      const one = await scripted.explain(images[i], { method: 'attention-relevance', target: ref.targets[i] });
      expectClose(one.maps[0].data, batch.maps[i].data, 1e-6, 1e-5);
    }
    const after = await scripted.predict(images[0]);
    expect(Array.from(after.logits)).toEqual(Array.from(before.logits));
  });

  it('layers and options that do not fit get typed errors naming the option', async () => {
    const one = images[0];
    let e = await rejection(traced.explain(one, { method: 'grad-cam', layer: 'head' }));
    expect([e.code, e.argument]).toEqual(['ERR_LAYER_NOT_FOUND', 'options.layer']);
    expect(e.message).toContain('[1, 4]');
    e = await rejection(traced.explain(one, { method: 'grad-cam', layer: 'blocks.1', grid: [9, 9] }));
    expect([e.code, e.argument]).toEqual(['ERR_INVALID_ARG_VALUE', 'options.grid']);
    expect(e.message).toContain('65 tokens');
    e = await rejection(traced.explain(one, { method: 'grad-cam', layer: 'blocks.1', prefixTokens: 2 }));
    expect([e.code, e.argument]).toEqual(['ERR_INVALID_ARG_VALUE', 'options.grid']);
    e = await rejection(traced.explain(one, { method: 'grad-cam', layer: 'patch_embed', layout: 'ntc' }));
    expect([e.code, e.argument]).toEqual(['ERR_INVALID_ARG_VALUE', 'options.layout']);
    e = await rejection(traced.explain(one, { method: 'attention-rollout', attentionLayers: 'blocks.*.norm1' }));
    expect([e.code, e.argument]).toEqual(['ERR_INVALID_ARG_VALUE', 'options.attentionLayers']);
    expect(e.message).toContain("'blocks.0.norm1'");
    e = await rejection(traced.explain(one, { method: 'attention-rollout', attentionLayers: 'nothing.*' }));
    expect([e.code, e.argument]).toEqual(['ERR_LAYER_NOT_FOUND', 'options.attentionLayers']);
    const cnn = await loadModel(modelPath('shapes_traced.pt'));
    e = await rejection(cnn.explain(one, { method: 'attention-relevance' }));
    expect([e.code, e.argument]).toEqual(['ERR_LAYER_NOT_FOUND', 'options.attentionLayers']);
    e = await rejection(traced.explain(one, { method: 'attention-rollout', discardRatio: 1 }));
    expect([e.code, e.argument]).toEqual(['ERR_OUT_OF_RANGE', 'options.discardRatio']);
  });

  it('pointing game on the 16 held-out shapes images (tolerance 0 and 4 px): the table of docs/methods/attention-*.md', async () => {
    const cnn = await loadModel(modelPath('shapes_traced.pt'));
    const runs = {
      'grad-cam, ViT blocks.3.norm1': () => traced.explain(images, { method: 'grad-cam', layer: 'blocks.3.norm1', target: ref.targets }),
      'grad-cam, ViT blocks.1': () => traced.explain(images, { method: 'grad-cam', layer: 'blocks.1', target: ref.targets }),
      'attention-rollout, ViT': () => traced.explain(images, { method: 'attention-rollout', target: ref.targets }),
      'attention-relevance, ViT': () => traced.explain(images, { method: 'attention-relevance', target: ref.targets }),
      'grad-cam, shapes CNN features.10': () => cnn.explain(images, { method: 'grad-cam', layer: 'features.10', target: ref.targets }),
    };
    const table: Record<string, [number, number]> = {};
    for (const [name, run] of Object.entries(runs)) {
      const games = [new PointingGame(4, { tolerance: 0 }), new PointingGame(4, { tolerance: 4 })];
      const r = await run();
      r.maps.forEach((m, i) => games.forEach((g) => g.evaluate(m, boxes[i].classIndex, { boxes: [boxes[i].box] })));
      table[name] = [games[0].summary().accuracy, games[1].summary().accuracy];
    }
    console.log('pointing game (16 images; tolerance 0 px, 4 px):', JSON.stringify(table));
    // Measured with the fixture as committed (docs/methods/attention-rollout.md; a hit is strictly closer than
    // the tolerance): [0 px, 4 px] rollout [0.6875, 0.8125], relevance [0.6875, 0.8125], Grad-CAM blocks.3.norm1
    // [0.25, 0.3125], the CNN's Grad-CAM [0.875, 0.9375]. The fixture is fixed, so these are floors a step
    // (1/16 per class) under them.
    expect(table['attention-rollout, ViT'][1]).toBeGreaterThanOrEqual(0.75);
    expect(table['attention-relevance, ViT'][0]).toBeGreaterThanOrEqual(0.625);
    expect(table['attention-relevance, ViT'][1]).toBeGreaterThan(table['grad-cam, ViT blocks.3.norm1'][1]);
    expect(table['grad-cam, shapes CNN features.10'][0]).toBeGreaterThanOrEqual(0.8);
  });
});

describe('a model whose size is fixed', () => {
  it('explain(null) takes the size the parameters fix when the model runs on it, else 224, else asks for the size up front', async () => {
    const vit = await loadModel(join(VIT, 'vit_traced.pt'));
    const e = await rejection(vit.explain(null, { method: 'input-agnostic', target: 0, samples: 1, iterations: 1 }));
    expect([e.code, e.argument]).toEqual(['ERR_INPUT_SHAPE', 'image']);
    expect(e.message).toContain("Expected the model's input size");
    const r = await vit.explain(64, { method: 'input-agnostic', target: 0, samples: 1, iterations: 1, refineSteps: 1 });
    expect([r.maps[0].height, r.maps[0].width]).toEqual([64, 64]);
    // Sizes the parameters fix: a ViT's positional embedding (65 tokens = 1 + 8 x 8) times its patch
    // convolution's kernel (8), an MLP's first layer (768 inputs = 3 x 16 x 16).
    const bare = await loadModel(join(VIT, 'bare_traced.pt'));
    expect(bare.info().inputSize).toEqual([64, 64]);
    const b = await bare.explain(null, { method: 'input-agnostic', target: 0, samples: 1, iterations: 1, refineSteps: 1 });
    expect([b.maps[0].height, b.maps[0].width]).toEqual([64, 64]);
    const mlp = await loadModel(modelPath('fixed_mlp_traced.pt'));
    expect(mlp.info().inputSize).toEqual([16, 16]);
    const m = await mlp.explain(null, { method: 'input-agnostic', target: 0, samples: 1, iterations: 1, refineSteps: 1 });
    expect([m.maps[0].height, m.maps[0].width]).toEqual([16, 16]);
    // The hybrid fixture's hint (its stem's last 3 x 3 conv has the tokens' width: 8 x 3 = 24 px) does not
    // run, and neither does 224: the error above. A fully convolutional model has no hint: null is 224 x 224.
    const cnn = await loadModel(modelPath('tiny_cnn_traced.pt'));
    const c = await cnn.explain(null, { method: 'input-agnostic', target: 0, samples: 1, iterations: 1, refineSteps: 1 });
    expect([c.maps[0].height, c.maps[0].width]).toEqual([224, 224]);
  });
});

describe('attention without a submodule of its own (the forward graph softmax nodes)', () => {
  const variants = JSON.parse(readFileSync(join(VIT, 'variants.json'), 'utf8')) as {
    images: string[];
    targets: number[];
    bare: { logits: number[]; rollout: number[]; relevance: number[] };
    mha: { logits: number[]; rollout: number[] };
  };
  const four = () => images.slice(0, variants.images.length);

  for (const file of ['bare_traced.pt', 'bare_scripted.pt']) {
    it(`a bare torch.softmax in the block's forward (${file}): rollout and relevance equal PyTorch`, async () => {
      const model = await loadModel(join(VIT, file));
      expectClose(
        (await model.predict(four())).flatMap((p) => Array.from(p.logits)),
        variants.bare.logits,
        1e-4,
        1e-4,
      );
      const rollout = await model.explain(four(), { method: 'attention-rollout', resize: false });
      expect(rollout.details.attentionLayers).toBe(2);
      closeTo(flatMaps(rollout.maps), variants.bare.rollout);
      const relevance = await model.explain(four(), { method: 'attention-relevance', target: variants.targets, resize: false });
      closeTo(flatMaps(relevance.maps), variants.bare.relevance);
    });
  }

  it("nn.MultiheadAttention's weights path ((N * heads) x T x T softmax), traced: rollout equals PyTorch", async () => {
    const model = await loadModel(join(VIT, 'mha_traced.pt'));
    expectClose(
      (await model.predict(four())).flatMap((p) => Array.from(p.logits)),
      variants.mha.logits,
      1e-4,
      1e-4,
    );
    const rollout = await model.explain(four(), { method: 'attention-rollout', resize: false });
    expect(rollout.details.attentionLayers).toBe(2);
    closeTo(flatMaps(rollout.maps), variants.mha.rollout);
  });
});

describe('attention fused into one op (taken apart on a clone)', () => {
  const fused = JSON.parse(readFileSync(join(VIT, 'fused.json'), 'utf8')) as {
    images: string[];
    targets: number[];
  } & Record<
    'fused_mha' | 'encoder' | 'sdpa' | 'masked_mha' | 'masked_encoder' | 'masked_sdpa',
    { op: string; logits: number[]; rollout: number[]; relevance: number[]; gradCam?: number[]; gradient?: number[] }
  >;
  const four = () => images.slice(0, fused.images.length);
  // libtorch 1.13 has _native_multi_head_attention and _transformer_encoder_layer_fwd (same schemas) but no
  // scaled_dot_product_attention, which sdpa_traced.pt calls and the scripted exports carry in their other branch.
  const oldTorch = runtime().torchVersion.startsWith('1.');
  const cases = [
    ['fused_mha', 'traced', true],
    ['encoder', 'traced', true],
    ['fused_mha', 'scripted', !oldTorch],
    ['encoder', 'scripted', !oldTorch],
    ['sdpa', 'traced', !oldTorch],
    // Masks: a key padding mask (nn.MultiheadAttention), a boolean src_mask (nn.TransformerEncoderLayer), a
    // boolean attn_mask (scaled_dot_product_attention, where true means taking part).
    ['masked_mha', 'traced', true],
    ['masked_encoder', 'traced', true],
    ['masked_sdpa', 'traced', !oldTorch],
  ] as const;

  for (const [name, kind, runs] of cases) {
    const why = runs ? '' : ` (skipped: libtorch ${runtime().torchVersion} cannot load it, it calls scaled_dot_product_attention, torch >= 2.0)`;
    it.skipIf(!runs)(
      `${name}_${kind}.pt, one ${fused[name].op} per block: the rewritten clone's logits equal the model's, rollout and relevance equal PyTorch${why}`,
      async () => {
        const model = await loadModel(join(VIT, `${name}_${kind}.pt`));
        const before = (await model.predict(four())).flatMap((p) => Array.from(p.logits));
        expectClose(before, fused[name].logits, 1e-4, 1e-4);
        const rollout = await model.explain(four(), { method: 'attention-rollout', resize: false });
        expect(rollout.details.attentionLayers).toBe(2);
        expect(rollout.details.fusedAttention).toBeGreaterThanOrEqual(2); // a scripted export holds both of PyTorch's paths
        expect(rollout.details.outputDifference).toBeLessThanOrEqual(1e-5);
        closeTo(flatMaps(rollout.maps), fused[name].rollout);
        const relevance = await model.explain(four(), { method: 'attention-relevance', target: fused.targets, resize: false });
        expect(relevance.details.attentionLayers).toBe(2);
        expect(relevance.details.outputDifference).toBeLessThanOrEqual(1e-5);
        closeTo(flatMaps(relevance.maps), fused[name].relevance);
        // The user's module is untouched (its own graph still runs the fused op): the same logits, bit for bit.
        expect((await model.predict(four())).flatMap((p) => Array.from(p.logits))).toEqual(before);
      },
    );
  }

  // The fused ops have no derivative: methods that take gradients run on a twin of the model with them taken apart.
  for (const [name, runs] of [
    ['fused_mha', true],
    ['encoder', true],
    ['sdpa', !oldTorch],
  ] as const) {
    const why = runs ? '' : ` (skipped: libtorch ${runtime().torchVersion} cannot load it)`;
    it.skipIf(!runs)(
      `${name}_traced.pt: gradient and Grad-CAM (blocks.0 tokens) through fused attention equal PyTorch autograd; extremal perturbation runs${why}`,
      async () => {
        const model = await loadModel(join(VIT, `${name}_traced.pt`));
        const before = (await model.predict(four())).flatMap((p) => Array.from(p.logits));
        const ref = fused[name];
        const g = await model.explain(four()[0], { method: 'gradient', target: fused.targets[0], resize: false });
        closeTo(g.maps[0].data, ref.gradient!);
        const cam = await model.explain(four(), { method: 'grad-cam', layer: 'blocks.0', target: fused.targets, resize: false });
        closeTo(flatMaps(cam.maps), ref.gradCam!);
        const ep = await model.explain(four()[0], { method: 'extremal-perturbation', target: fused.targets[0], areas: [0.1], maxIter: 3 });
        expect(ep.maps[0].data.every(Number.isFinite)).toBe(true);
        expect((await model.predict(four())).flatMap((p) => Array.from(p.logits))).toEqual(before);
      },
    );
  }

  it('attention read at softmax nodes or layers reports no rewrite', async () => {
    const model = await loadModel(join(VIT, 'bare_traced.pt'));
    const r = await model.explain(images[0], { method: 'attention-rollout' });
    expect([r.details.fusedAttention, r.details.outputDifference]).toEqual([0, null]);
  });
});
