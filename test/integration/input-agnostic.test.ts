// The input-agnostic method: faithful pictures, PyTorch parity, the norm bound, seeds, errors, progress.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { BACKDOOR as dir, backdoorFixture as fixture, BACKDOOR_SIZE as SIZE, BACKDOOR_FAST as FAST } from './helpers.js';
import { loadModel, type ExplanationFor, type Model } from '../../lib/index.js';

let trojan: Model;
let clean: Model;
// Every class of each fixture in one call, as the backdoor scan makes them.
let trojanMaps: ExplanationFor<'input-agnostic'>;
let cleanMaps: ExplanationFor<'input-agnostic'>;

beforeAll(async () => {
  trojan = await loadModel(join(dir, 'trojan_traced.pt'), { device: 'cpu', labels: join(dir, 'labels.txt') });
  clean = await loadModel(join(dir, 'clean_traced.pt'), { device: 'cpu', labels: join(dir, 'labels.txt') });
  const all = { method: 'input-agnostic', target: fixture.classes.map((_, c) => c), seed: 1, ...FAST } as const;
  trojanMaps = await trojan.explain(SIZE, all);
  cleanMaps = await clean.explain(SIZE, all);
}, 120_000);

afterAll(() => {
  trojan?.dispose();
  clean?.dispose();
});

describe('input-agnostic explain', () => {
  it('makes pictures the model holds to be their class (fidelity >= the target), checked by predict', async () => {
    const details = trojanMaps.details;
    expect(details.fidelityTarget).toBe(0.9);
    for (let j = 0; j < fixture.classes.length; j++) {
      expect(details.fidelity[j]).toBeGreaterThanOrEqual(0.9);
      // The returned picture is the refinement step it says, and its confidence was measured there.
      expect(details.fidelityHistory[j][details.refinedSteps[j]]).toBeCloseTo(details.fidelity[j], 6);
      // Through the refinement: once a step reaches the target, no later step falls below it.
      const h = details.fidelityHistory[j];
      const first = h.findIndex((x) => x >= 0.9);
      expect(first).toBeGreaterThanOrEqual(0);
      for (const x of h.slice(first)) expect(x).toBeGreaterThanOrEqual(0.9);
      // Independently: the model's softmax on the picture, by predict.
      const p = await trojan.predict(details.visualizations[j]);
      expect(p.probabilities[j]).toBeCloseTo(details.fidelity[j], 4);
    }
    for (const details2 of [cleanMaps.details]) {
      for (const f of details2.fidelity) expect(f).toBeGreaterThanOrEqual(0.9);
    }
  });

  it('matches PyTorch eager step for step (golden values from scripts/fixtures/golden_input_agnostic.py)', async () => {
    const golden = JSON.parse(readFileSync(join(dir, 'golden_input_agnostic.json'), 'utf8'));
    const o = golden.options;
    const r = await trojan.explain(SIZE, {
      method: 'input-agnostic',
      target: o.targets,
      samples: o.samples,
      iterations: o.iterations,
      stepSize: o.stepSize,
      epsilon: o.epsilon,
      norm: o.norm,
      distribution: o.distribution,
      refineSteps: o.refineSteps,
      refineStepSize: o.refineStepSize,
      refineBlur: o.refineBlur,
      fidelityTarget: o.fidelityTarget,
      seed: o.seed,
    });
    const d = r.details;
    const sum = (a: Float32Array) => a.reduce((s, x) => s + x, 0);
    for (let j = 0; j < o.targets.length; j++) {
      const map = r.maps[j].data;
      let worst = 0;
      for (let i = 0; i < map.length; i++) worst = Math.max(worst, Math.abs(map[i] - golden.maps[j][i]));
      expect(worst).toBeLessThan(1e-4);
      const rho = d.perturbations[j].data;
      expect(sum(rho)).toBeCloseTo(golden.perturbationSums[j], 2);
      expect(sum(rho.map(Math.abs))).toBeCloseTo(golden.perturbationAbsSums[j], 2);
      golden.perturbationSample[j].forEach((x: number, k: number) => expect(rho[k * 97]).toBeCloseTo(x, 4));
      const vis = d.visualizations[j].data;
      expect(sum(vis)).toBeCloseTo(golden.visualizationSums[j], 1);
      golden.visualizationSample[j].forEach((x: number, k: number) => expect(vis[k * 97]).toBeCloseTo(x, 3));
      expect(d.fidelity[j]).toBeCloseTo(golden.fidelity[j], 4);
      d.fidelityHistory[j].forEach((x, k) => expect(x).toBeCloseTo(golden.fidelityHistory[j][k], 4));
      expect(d.refinedSteps[j]).toBe(golden.refinedSteps[j]);
    }
  });

  it('keeps the nudge inside its norm bound (linf and l2)', async () => {
    const linf = await clean.explain(SIZE, { method: 'input-agnostic', target: [0, 1], samples: 4, iterations: 8, refineSteps: 0, epsilon: 0.3 });
    for (const p of linf.details.perturbations) {
      expect(Math.max(...Array.from(p.data, Math.abs))).toBeLessThanOrEqual(0.3 + 1e-6);
    }
    const l2 = await clean.explain([SIZE, SIZE], {
      method: 'input-agnostic',
      target: [0, 1],
      samples: 4,
      iterations: 8,
      refineSteps: 0,
      norm: 'l2',
      epsilon: 0.1,
    });
    for (const p of l2.details.perturbations) {
      const rms = Math.sqrt(p.data.reduce((s, x) => s + x * x, 0) / p.data.length);
      expect(rms).toBeLessThanOrEqual(0.1 + 1e-5);
      expect(rms).toBeGreaterThan(0.05);
    }
    expect(l2.maps[0].height).toBe(SIZE);
    expect(l2.maps[0].stats().max).toBeCloseTo(1, 5);
  });

  it('gives the same result for the same seed, and another for another seed', async () => {
    const o = { method: 'input-agnostic', target: [2, 4], samples: 4, iterations: 6, refineSteps: 2 } as const;
    const a = await trojan.explain(SIZE, { ...o, seed: 7 });
    const b = await trojan.explain(SIZE, { ...o, seed: 7 });
    const c = await trojan.explain(SIZE, { ...o, seed: 8 });
    expect(Array.from(b.maps[1].data)).toEqual(Array.from(a.maps[1].data));
    expect(Array.from(b.details.visualizations[0].data)).toEqual(Array.from(a.details.visualizations[0].data));
    expect(Array.from(c.maps[1].data)).not.toEqual(Array.from(a.maps[1].data));
  });

  it('rejects bad options and sizes with typed errors', async () => {
    const base = { method: 'input-agnostic', target: 0 } as const;
    await expect(clean.explain(SIZE, { ...base, samples: 0 })).rejects.toMatchObject({ code: 'ERR_OUT_OF_RANGE', argument: 'options.samples' });
    await expect(clean.explain(SIZE, { ...base, norm: 'l3' } as never)).rejects.toMatchObject({ code: 'ERR_INVALID_ARG_VALUE', argument: 'options.norm' });
    await expect(clean.explain(SIZE, { ...base, distribution: 7 } as never)).rejects.toMatchObject({
      code: 'ERR_INVALID_ARG_TYPE',
      argument: 'options.distribution',
    });
    await expect(clean.explain(SIZE, { ...base, epsilon: 0 })).rejects.toMatchObject({ code: 'ERR_OUT_OF_RANGE', argument: 'options.epsilon' });
    await expect(clean.explain(SIZE, { ...base, fidelityTarget: 1.5 })).rejects.toMatchObject({ code: 'ERR_OUT_OF_RANGE', argument: 'options.fidelityTarget' });
    await expect(clean.explain(SIZE, { ...base, seed: -1 })).rejects.toMatchObject({ code: 'ERR_OUT_OF_RANGE', argument: 'options.seed' });
    await expect(clean.explain(0, base)).rejects.toMatchObject({ code: 'ERR_OUT_OF_RANGE', argument: 'image' });
    await expect(clean.explain(SIZE, { ...base, channels: 0 })).rejects.toMatchObject({ code: 'ERR_OUT_OF_RANGE', argument: 'options.channels' });
    await expect(clean.explain(SIZE, { ...base, target: 99 })).rejects.toMatchObject({ code: 'ERR_OUT_OF_RANGE', argument: 'options.target' });
  });

  it('reports progress and stops on abort', async () => {
    const controller = new AbortController();
    const seen: number[] = [];
    const run = trojan.explain(SIZE, {
      method: 'input-agnostic',
      target: [0, 1, 2],
      iterations: 100000,
      progressEvery: 2,
      signal: controller.signal,
      onProgress: (p) => {
        seen.push(p.iteration);
        if (seen.length === 2) controller.abort();
      },
    });
    await expect(run).rejects.toMatchObject({ code: 'ABORT_ERR' });
    expect(seen.length).toBeGreaterThanOrEqual(2);
    expect(seen[1]).toBe(2);
    expect(trojan.pending).toBe(0);
  });
});
