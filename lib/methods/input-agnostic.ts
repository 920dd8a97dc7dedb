/**
 * Input-agnostic saliency (Akhtar & Jalwana, AAAI 2023): a class's map and picture from the model alone.
 *
 *   const r = await model.explain(32, { method: 'input-agnostic', target: [0, 1, 2], seed: 1 });
 *   r.maps[0]                       // where the model looks for class 0, in [0, 1]
 *   r.details.visualizations[0]     // an RGB Image of what the model holds to be class 0
 *   r.details.fidelity[0]           // the model's softmax confidence for class 0 on that picture
 *
 * The input is only a size (null, a side, or [height, width]); see docs/methods/input-agnostic.md.
 */
import type { Image } from '../image.js';
import type { NativeTensor } from '../native.js';
import * as v from '../validate.js';
import { registerMethod } from './registry.js';
import { mapsPerJob, type RawResult } from './types.js';

export type Distribution = 'uniform' | 'gaussian';
export type ProjectionNorm = 'linf' | 'l2';

export interface InputAgnosticOptions {
  /** Samples drawn per class and step (default 16). */
  samples: number;
  /** Nudging steps (default 64). */
  iterations: number;
  /** Step of each nudge, as the RMS of the change per pixel value (default 0.05). */
  stepSize: number;
  /** Where samples come from: 'uniform' on [0, 1] (default) or 'gaussian' N(0.5, 0.25^2), unclipped. */
  distribution: Distribution;
  /** Norm of the projection (default 'linf'). */
  norm: ProjectionNorm;
  /** Bound of the projection: linf, the largest |value| (default 0.5); l2, the RMS (default 0.25). */
  epsilon: number;
  /** Refinement steps on the visualisation (default 20; 0 = none). */
  refineSteps: number;
  /** Step of each refinement, as an RMS change per pixel value (default 0.02). */
  refineStepSize: number;
  /** Gaussian smoothing (sigma, pixels) applied at each refinement step (default 0: none; it erases fine patterns such as triggers). */
  refineBlur: number;
  /** The refinement keeps the most refined picture whose confidence is at least this (default 0.9). */
  fidelityTarget: number;
  /** Seed of the samples: the same seed and options give the same result (default 0). */
  seed: number;
}

export interface InputAgnosticDetails {
  /** Per job: the refined picture of the class (C x H x W, values in [0, 1]). Not part of toJSON(). */
  visualizations: Image[];
  /** Per job: the nudge (C x H x W), the signed pattern before scaling. Not part of toJSON(). */
  perturbations: Image[];
  /** Per job: the model's softmax confidence for the class on the returned picture. */
  fidelity: number[];
  /** Per job: the confidence on the scaled picture before refinement. */
  fidelityInitial: number[];
  /** Per job: the confidence at every refinement step (refineSteps + 1 values). */
  fidelityHistory: number[][];
  /** Per job: the refinement step the returned picture comes from. */
  refinedSteps: number[];
  /** Per job: the mean cross-entropy of the nudged samples at every step. */
  lossHistory: number[][];
  fidelityTarget: number;
}

export const INPUT_AGNOSTIC_OPTIONS = [
  'samples',
  'iterations',
  'stepSize',
  'distribution',
  'norm',
  'epsilon',
  'refineSteps',
  'refineStepSize',
  'refineBlur',
  'fidelityTarget',
  'seed',
] as const;

export function normalizeInputAgnostic(options: Record<string, unknown>): Readonly<InputAgnosticOptions> {
  const norm = v.oneOf<ProjectionNorm>('options.norm', options.norm, ['linf', 'l2'], 'linf');
  return Object.freeze({
    samples: v.optionalNumber('options.samples', options.samples, 16, { integer: true, min: 1, max: 4096 }),
    iterations: v.optionalNumber('options.iterations', options.iterations, 64, { integer: true, min: 1, max: 100000 }),
    stepSize: v.optionalNumber('options.stepSize', options.stepSize, 0.05, { above: 0, max: 10 }),
    distribution: v.oneOf<Distribution>('options.distribution', options.distribution, ['uniform', 'gaussian'], 'uniform'),
    norm,
    epsilon: v.optionalNumber('options.epsilon', options.epsilon, norm === 'l2' ? 0.25 : 0.5, { above: 0, max: 10 }),
    refineSteps: v.optionalNumber('options.refineSteps', options.refineSteps, 20, { integer: true, min: 0, max: 10000 }),
    refineStepSize: v.optionalNumber('options.refineStepSize', options.refineStepSize, 0.02, { min: 0, max: 1 }),
    refineBlur: v.optionalNumber('options.refineBlur', options.refineBlur, 0, { min: 0, max: 16 }),
    fidelityTarget: v.optionalNumber('options.fidelityTarget', options.fidelityTarget, 0.9, { min: 0, max: 1 }),
    seed: v.optionalNumber('options.seed', options.seed, 0, { integer: true, min: 0, max: Number.MAX_SAFE_INTEGER }),
  });
}

function rows(t: NativeTensor | undefined): number[][] {
  if (!t) return [];
  const [n, k] = t.shape.length === 2 ? t.shape : [t.shape[0], 1];
  return Array.from({ length: n }, (_, i) => Array.from(t.data.subarray(i * k, (i + 1) * k)));
}

function images(t: NativeTensor | undefined): Image[] {
  if (!t) return [];
  const [n, channels, height, width] = t.shape;
  const per = channels * height * width;
  return Array.from({ length: n }, (_, i) => ({ data: (t.data as Float32Array).slice(i * per, (i + 1) * per), channels, height, width }));
}

registerMethod<InputAgnosticOptions>({
  name: 'input-agnostic',
  summary: 'A class saliency map and picture from the model alone (Akhtar & Jalwana 2023); the input is only a size',
  optionNames: INPUT_AGNOSTIC_OPTIONS,
  normalize(options) {
    const o = normalizeInputAgnostic(options);
    return { options: o, baton: { ...o } };
  },
  finish(raw: RawResult, context) {
    const fidelity = Array.from(raw.extras.fidelity?.data ?? []);
    const fidelityInitial = Array.from(raw.extras.fidelityInitial?.data ?? []);
    const details = {
      fidelity,
      fidelityInitial,
      fidelityHistory: rows(raw.extras.fidelityHistory),
      refinedSteps: Array.from(raw.extras.refinedSteps?.data ?? []),
      lossHistory: rows(raw.extras.lossHistory),
      fidelityTarget: context.options.fidelityTarget,
    } as InputAgnosticDetails;
    // The pictures are there to read, not to serialise: kept out of toJSON() (whole images as JSON objects).
    Object.defineProperty(details, 'visualizations', { value: images(raw.extras.visualization), enumerable: false });
    Object.defineProperty(details, 'perturbations', { value: images(raw.extras.perturbation), enumerable: false });
    const maps = mapsPerJob(raw, context, (j) => ({ fidelity: fidelity[j], fidelityInitial: fidelityInitial[j] }));
    return { maps, details: details as unknown as Record<string, unknown> };
  },
});
