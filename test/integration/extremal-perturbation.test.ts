/**
 * Extremal perturbation on a hand-built model whose evidence sits in known boxes (scripts/fixtures/
 * ep_reference.py: class c = thresholded "c-ness" of colour c, so a red square is all the evidence for
 * class 0), and parity with TorchRay's masks computed by that script.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadModel, readImage, runtime, type Image, type Model } from '../../lib/index.js';
import { ROOT, iouAtHalfMax, maxAbsDiff, runScript } from './helpers.js';
import type { ExtremalPerturbationDetails } from '../../lib/methods/extremal-perturbation.js';

const DIR = join(__dirname, '..', 'fixtures', 'ep');
const reference = JSON.parse(readFileSync(join(DIR, 'reference.json'), 'utf8')) as {
  size: number;
  boxes: Record<string, [number, number, number, number]>[];
  scores: number[][];
  cases: { image: number; target: number; areas: number[]; options: Record<string, unknown>; count: number }[];
};
const S = reference.size;

/** float16 -> float32 for the golden masks. */
function halfs(buffer: Buffer): Float32Array {
  const out = new Float32Array(buffer.length / 2);
  for (let i = 0; i < out.length; i++) {
    const h = buffer.readUInt16LE(2 * i);
    const s = h & 0x8000 ? -1 : 1,
      e = (h >> 10) & 0x1f,
      f = h & 0x3ff;
    out[i] = e === 0 ? s * 2 ** -14 * (f / 1024) : e === 31 ? (f ? NaN : s * Infinity) : s * 2 ** (e - 15) * (1 + f / 1024);
  }
  return out;
}
const golden = halfs(readFileSync(join(DIR, 'torchray_masks.f16')));
function goldenMasks(caseIndex: number): Float32Array[] {
  let offset = 0;
  for (let c = 0; c < caseIndex; c++) offset += reference.cases[c].count;
  return Array.from({ length: reference.cases[caseIndex].count }, (_, i) => golden.subarray((offset + i) * S * S, (offset + i + 1) * S * S));
}

const iou = (a: ArrayLike<number>, b: ArrayLike<number>, ta = 0.5, tb = 0.5) => {
  let inter = 0,
    union = 0;
  for (let i = 0; i < a.length; i++) {
    const x = a[i] > ta,
      y = b[i] > tb;
    if (x && y) inter++;
    if (x || y) union++;
  }
  return union === 0 ? 1 : inter / union;
};
/** IoU between the mask thresholded at 0.5 and the box. */
function boxIoU(map: ArrayLike<number>, box: [number, number, number, number]): number {
  const [x0, y0, x1, y1] = box;
  const inBox = new Uint8Array(map.length);
  for (let y = y0; y < y1; y++) for (let x = x0; x < x1; x++) inBox[y * S + x] = 1;
  return iou(map, inBox);
}

let model: Model;
let images: Image[];
beforeAll(async () => {
  // One intra-op thread: on a shared 2-core machine OpenMP's spinning barriers make two threads many
  // times slower than one (measured: 188 vs 21 ms per iteration here); the tests check numbers, not speed.
  model = await loadModel(join(DIR, 'box_model.pt'), { threads: 1 });
  images = await Promise.all([0, 1, 2, 3].map((i) => readImage(join(DIR, `box_${i}.png`))));
});
afterAll(() => model?.dispose());

const EP = 'extremal-perturbation' as const;
const details = (r: { details?: unknown }) => r.details as ExtremalPerturbationDetails;

describe('extremal perturbation: TorchRay parity and known evidence', () => {
  // Cases 0 and 1 (default options, 800 iterations, 3 areas each) run as ONE call: 6 masks per batch.
  let batch: Awaited<ReturnType<Model['explain']>>;
  beforeAll(async () => {
    batch = await model.explain([images[0], images[1]], { method: EP, target: 0, areas: reference.cases[0].areas });
  }, 120_000);

  it('returns one map per (image, area) at image size, with meta and details', () => {
    expect(batch.maps).toHaveLength(6);
    batch.maps.forEach((m, i) => {
      expect([m.height, m.width, m.image, m.target, m.area]).toEqual([S, S, Math.floor(i / 3), 0, reference.cases[0].areas[i % 3]]);
      const { min, max } = m.stats();
      expect(min).toBeGreaterThanOrEqual(0);
      expect(max).toBeLessThanOrEqual(1);
    });
    const d = details(batch);
    expect(d.iterations).toBe(800);
    expect(Array.from(d.steps)).toEqual([800, 800, 800, 800, 800, 800]); // no stopping rule unless asked
    expect(d.rewardHistory).toHaveLength(6);
    expect(d.rewardHistory[0]).toBeInstanceOf(Float32Array);
    expect(d.penaltyHistory[5]).toHaveLength(800);
    expect(d.scoreOriginal[0]).toBeCloseTo(reference.scores[0][0], 3);
    expect(d.timings.msPerIteration).toBeGreaterThan(0);
    // On the CPU every part of a step is timed; the parts are disjoint laps of the same clock, so they
    // add up to at most the loop's time per iteration, and to most of it (the rest is the per-iteration
    // cancellation check and the throttled progress reads).
    const ph = d.timings.phases!;
    const parts = [ph.maskMs, ph.perturbMs, ph.forwardMs, ph.objectiveMs, ph.backwardMs, ph.updateMs];
    parts.forEach((x) => expect(x).toBeGreaterThan(0));
    const sum = parts.reduce((a, b) => a + b, 0);
    expect(sum).toBeLessThanOrEqual(d.timings.msPerIteration * 1.0001);
    expect(sum).toBeGreaterThan(d.timings.msPerIteration * 0.8);
  });

  // TorchRay's sigma-21 geometry on a 64 px image overshoots small areas by ~0.02 (its own masks, equal
  // to ours, do the same); the strict 0.02 check runs on the image-scaled geometry below.
  it('reaches every area within 0.025 with TorchRay geometry at 64 px', () => {
    const d = details(batch);
    console.log(
      'areas reached:',
      Array.from(d.areaReached)
        .map((x) => x.toFixed(4))
        .join(' '),
    );
    d.areaReached.forEach((a, i) => expect(Math.abs(a - d.areas[i])).toBeLessThan(0.025));
  });

  it("matches TorchRay's masks (IoU >= 0.9 at every area)", () => {
    const ious: number[] = [];
    for (const c of [0, 1]) goldenMasks(c).forEach((g, i) => ious.push(iou(batch.maps[c * 3 + i].data, g)));
    console.log('parity IoU (preserve, blur, 800 it):', ious.map((x) => x.toFixed(3)).join(' '));
    ious.forEach((x) => expect(x).toBeGreaterThanOrEqual(0.9));
  });

  // At 64 px TorchRay's geometry (sigma 21 px, a margin of 21 px around the image) makes blobs larger
  // than the objects; the box tests scale step and sigma to the image (as 224 px -> 64 px does).
  const fine = { method: EP, areas: [0.05], step: 3, sigma: 7, maxIter: 800 } as const;

  it("'preserve' covers the object's box (IoU >= 0.5), keeps its score, reaches its area within 0.02", async () => {
    const r = await model.explain([images[0], images[1]], { ...fine, target: 0 });
    const d = details(r);
    const ious = [0, 1].map((j) => boxIoU(r.maps[j].data, reference.boxes[j]['0']));
    console.log('preserve box IoU:', ious.map((x) => x.toFixed(3)).join(' '));
    ious.forEach((x) => expect(x).toBeGreaterThanOrEqual(0.5));
    [0, 1].forEach((j) => expect(d.scorePreserved[j]).toBeGreaterThan(0.5 * d.scoreOriginal[j]));
    console.log(
      'fine areas reached:',
      Array.from(d.areaReached)
        .map((x) => x.toFixed(4))
        .join(' '),
      'above half:',
      Array.from(d.areaAboveHalf)
        .map((x) => x.toFixed(4))
        .join(' '),
    );
    d.areaReached.forEach((a) => expect(Math.abs(a - 0.05)).toBeLessThan(0.02));
  }, 60_000);

  it("'delete' removes the object: its mask (what is deleted) covers the box and the score drops", async () => {
    // 'delete' starts with everything deleted, where the ReLU model has no gradient at all: use its
    // softplus twin, a weaker area weight (our scores are ~2, ImageNet logits ~20) and the full 800 steps.
    const soft = await loadModel(join(DIR, 'box_model_soft.pt'), { threads: 1 });
    const r = await soft.explain([images[0], images[1]], { ...fine, target: 0, variant: 'delete', areaWeight: 60, maxIter: 800 });
    soft.dispose();
    const d = details(r);
    // Deleting part of a square already kills a thresholded detector, so ask for concentration, not IoU:
    // the mask's mean inside the box is high and many times its mean outside.
    for (const j of [0, 1]) {
      const [x0, y0, x1, y1] = reference.boxes[j]['0'];
      let inside = 0,
        outside = 0;
      r.maps[j].data.forEach((m, p) => {
        const x = p % S,
          y = Math.floor(p / S);
        if (x >= x0 && x < x1 && y >= y0 && y < y1) inside += m;
        else outside += m;
      });
      inside /= (x1 - x0) * (y1 - y0);
      outside /= S * S - (x1 - x0) * (y1 - y0);
      console.log(`delete mask mean in box ${inside.toFixed(3)}, outside ${outside.toFixed(3)}`);
      expect(inside).toBeGreaterThan(0.25);
      expect(inside).toBeGreaterThan(4 * outside);
    }
    // measured: 0.17 and 0.57 of the original score (the second square is only partly deleted)
    console.log('delete score ratio:', [0, 1].map((j) => (d.scoreDeleted[j] / d.scoreOriginal[j]).toFixed(3)).join(' '));
    [0, 1].forEach((j) => expect(d.scoreDeleted[j]).toBeLessThan(0.65 * d.scoreOriginal[j]));
  }, 60_000);

  it("'delete' matches TorchRay", async () => {
    const c = reference.cases[3];
    const r = await model.explain(images[c.image], { method: EP, target: c.target, areas: c.areas, variant: 'delete', maxIter: 300 });
    const d = details(r);
    expect(d.scoreDeleted[0]).toBeLessThan(d.scoreOriginal[0]);
    const x = iou(r.maps[0].data, goldenMasks(3)[0]);
    console.log('parity IoU (delete, 300 it):', x.toFixed(3));
    expect(x).toBeGreaterThanOrEqual(0.9);
  }, 60_000);

  it("'dual' with 'fade' and 'contrastive' reward matches TorchRay and separates the scores", async () => {
    const c = reference.cases[2];
    const r = await model.explain(images[c.image], {
      method: EP,
      target: c.target,
      areas: c.areas,
      variant: 'dual',
      perturbation: 'fade',
      reward: 'contrastive',
      maxIter: 300,
    });
    const d = details(r);
    expect(d.scorePreserved[0]).toBeGreaterThan(d.scoreDeleted[0]);
    const x = iou(r.maps[0].data, goldenMasks(2)[0]);
    console.log('parity IoU (dual, fade, contrastive, 300 it):', x.toFixed(3));
    expect(x).toBeGreaterThanOrEqual(0.9);
  }, 60_000);
});

describe('extremal perturbation: the opt-in stopping rule', () => {
  const base = { method: EP, target: 0, areas: [0.1, 0.2], maxIter: 200 } as const;

  it('checks every stopWindow steps against the masks of the previous check, and stops the batch there', async () => {
    // Every mask value is in [0, 1], so with stopTolerance 1 the first comparison settles: the window starts
    // at step 20 and the check at step 40 stops. The masks are then the ones of a plain 40-step run.
    const stopped = await model.explain([images[0], images[1]], { ...base, stopTolerance: 1, stopWindow: 20 });
    const plain = await model.explain([images[0], images[1]], { ...base, maxIter: 40 });
    const d = details(stopped);
    expect(Array.from(d.steps)).toEqual([40, 40, 40, 40]);
    expect(d.iterations).toBe(40);
    expect(d.rewardHistory[0]).toHaveLength(40);
    stopped.maps.forEach((m, i) => expect(maxAbsDiff(m.data, plain.maps[i].data)).toBe(0));
    expect(Array.from(d.rewardHistory[3])).toEqual(Array.from(details(plain).rewardHistory[3]));
  }, 60_000);

  it('a tolerance no batch meets runs maxIter steps, as without the rule', async () => {
    const strict = await model.explain(images[0], { ...base, stopTolerance: 1e-12, stopWindow: 10 });
    const plain = await model.explain(images[0], base);
    expect(Array.from(details(strict).steps)).toEqual([200, 200]);
    strict.maps.forEach((m, i) => expect(maxAbsDiff(m.data, plain.maps[i].data)).toBe(0));
  }, 60_000);

  it('batches stop on their own: a chunk that stops early has NaN histories after its stop', async () => {
    // Two chunks of one mask each (batchSize 1), each with its own rule: its steps are a multiple of the
    // window (or maxIter), its history is finite up to its steps and NaN after; the longest sets `iterations`.
    const r = await model.explain(images[0], { ...base, maxIter: 300, stopTolerance: 0.002, stopWindow: 25, batchSize: 1 });
    const d = details(r);
    const steps = Array.from(d.steps);
    expect(d.iterations).toBe(Math.max(...steps));
    steps.forEach((s, i) => {
      expect(s % 25 === 0 || s === 300).toBe(true);
      expect(d.penaltyHistory[i].slice(0, s).every(Number.isFinite)).toBe(true);
      expect(d.penaltyHistory[i].slice(s).every(Number.isNaN)).toBe(true);
    });
  }, 60_000);

  it('with stopTolerance 0.002 the masks stay those of the full 800 steps (IoU >= 0.9) in fewer steps', async () => {
    // IoU of the regions above half of each mask's maximum, against the default 800-step run.
    const opts = { method: EP, target: 1, areas: [0.05, 0.1, 0.2], step: 3, sigma: 7 } as const;
    const full = await model.explain([images[2], images[3]], opts);
    const early = await model.explain([images[2], images[3]], { ...opts, stopTolerance: 0.002 });
    const ious = early.maps.map((m, i) => iouAtHalfMax(m.data, full.maps[i].data));
    console.log('stopping rule: steps', Array.from(details(early).steps).join(' '), 'IoU', ious.map((x) => x.toFixed(3)).join(' '));
    ious.forEach((x) => expect(x).toBeGreaterThanOrEqual(0.9));
    details(early).steps.forEach((s) => expect(s).toBeLessThan(800));
  }, 120_000);
});

describe('extremal perturbation: batching, kernels, model safety, abort', () => {
  const quick = { method: EP, areas: [0.1, 0.2], maxIter: 60 } as const;

  it('a batch gives the same maps as single calls, also chunked by batchSize', async () => {
    const batch = await model.explain([images[0], images[2]], { ...quick, target: [0, 1] });
    const chunked = await model.explain([images[0], images[2]], { ...quick, target: [0, 1], batchSize: 3 });
    const singles = [...(await model.explain(images[0], { ...quick, target: 0 })).maps, ...(await model.explain(images[2], { ...quick, target: 1 })).maps];
    expect(batch.maps.map((m) => [m.image, m.target, m.area])).toEqual([
      [0, 0, 0.1],
      [0, 0, 0.2],
      [1, 1, 0.1],
      [1, 1, 0.2],
    ]);
    singles.forEach((s, i) => {
      for (const other of [batch.maps[i], chunked.maps[i]]) expect(maxAbsDiff(s.data, other.data)).toBeLessThan(1e-3);
    });
  }, 60_000);

  it('every CPU kernel build (TORCH_SALIENCY_SIMD) gives the same masks; runtime() names the one in use', async () => {
    const best = runtime().cpuKernels;
    expect(['avx512', 'avx2', 'generic']).toContain(best);
    const opts = { ...quick, maxIter: 25, target: 0 };
    const here = await model.explain(images[1], opts);
    // The same call in a child process for each lesser build (the choice is made once per process).
    for (const simd of ['generic', 'avx2'] as const) {
      const script = `
        const { loadModel, readImage, runtime } = require(${JSON.stringify(join(ROOT, 'lib', 'index.ts'))});
        (async () => {
          const m = await loadModel(${JSON.stringify(join(DIR, 'box_model.pt'))}, { threads: 1 });
          const r = await m.explain(await readImage(${JSON.stringify(join(DIR, 'box_1.png'))}), ${JSON.stringify(opts)});
          console.log(JSON.stringify({ kernels: runtime().cpuKernels, maps: r.maps.map((x) => Array.from(x.data)) }));
        })();
      `;
      const out = runScript<{ kernels: string; maps: number[][] }>(script, { TORCH_SALIENCY_SIMD: simd });
      expect(out.kernels).toBe(simd === 'avx2' && best === 'generic' ? 'generic' : simd); // never one the CPU lacks
      out.maps.forEach((m, i) => {
        const diff = maxAbsDiff(m, here.maps[i].data);
        console.log(`kernels ${simd} vs ${best}: max difference ${diff.toExponential(2)}`);
        expect(diff).toBeLessThan(1e-4);
      });
    }
  }, 120_000);

  it('the fused kernels compute what the composed ATen ops compute', async () => {
    const diffs = (a: Awaited<ReturnType<Model['explain']>>, b: Awaited<ReturnType<Model['explain']>>) =>
      a.maps.map((m, i) => {
        let max = 0,
          sum = 0;
        for (let p = 0; p < m.data.length; p++) {
          const d = Math.abs(m.data[p] - b.maps[i].data[p]);
          max = Math.max(max, d);
          sum += d;
        }
        return { max, mean: sum / m.data.length };
      });
    // Reward only (areaWeight 0): mask generator and mask application, forward and backward, 25 steps.
    const opts = { ...quick, maxIter: 25, target: 0, areaWeight: 0 } as const;
    const fused = await model.explain(images[1], { ...opts, kernel: 'fused' });
    const composed = await model.explain(images[1], { ...opts, kernel: 'composed' });
    expect(fused.maps[0].stats().min).toBeLessThan(0.99); // parameters left 1 (this model's reward alone moves them little)
    diffs(fused, composed).forEach((d) => expect(d.max).toBeLessThan(1e-5));
    // With the area penalty: selection (fused) against TorchRay's sort formulation (composed). Its
    // gradient depends on each value's rank, so an ulp of difference between the kernels can move a
    // value across the k-th smallest and a few steps later the masks differ by ~1e-3 in places; the
    // penalty itself is continuous and is compared step by step.
    const withPenalty = { ...quick, maxIter: 25, target: 0 } as const;
    const fusedP = await model.explain(images[1], { ...withPenalty, kernel: 'fused' });
    const composedP = await model.explain(images[1], { ...withPenalty, kernel: 'composed' });
    diffs(fusedP, composedP).forEach((d) => {
      expect(d.max).toBeLessThan(1e-2);
      expect(d.mean).toBeLessThan(1e-3);
    });
    details(fusedP).penaltyHistory.forEach((h, i) => {
      const ref = details(composedP).penaltyHistory[i];
      for (let t = 0; t < h.length; t++) expect(Math.abs(h[t] - ref[t])).toBeLessThanOrEqual(1e-3 * Math.abs(ref[t]) + 1e-6);
    });
  }, 60_000);

  it("leaves the model's gradient flags alone, also after an error", async () => {
    const before = model.handle().requiresGrad();
    await model.explain(images[0], { ...quick, maxIter: 3 });
    expect(model.handle().requiresGrad()).toEqual(before);
    await expect(model.explain(images[0], { ...quick, maxIter: 3, target: 7 })).rejects.toMatchObject({ code: 'ERR_OUT_OF_RANGE' });
    const wrong: Image = { data: new Float32Array(S * S), channels: 1, height: S, width: S };
    await expect(model.explain(wrong, { ...quick, maxIter: 3 })).rejects.toHaveProperty('code');
    expect(model.handle().requiresGrad()).toEqual(before);
  });

  it('reports progress and stops within one iteration when aborted', async () => {
    const controller = new AbortController();
    const seen: number[] = [];
    const start = performance.now();
    const run = model.explain(images[0], {
      method: EP,
      areas: [0.1],
      maxIter: 100_000,
      progressEvery: 5,
      signal: controller.signal,
      onProgress: (p) => {
        seen.push(p.iteration);
        if (p.iteration >= 10) controller.abort();
      },
    });
    await expect(run).rejects.toMatchObject({ code: 'ABORT_ERR' });
    expect(seen.slice(0, 3)).toEqual([0, 5, 10]);
    expect(performance.now() - start).toBeLessThan(20_000);
  }, 30_000);
});
