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
import { mapsPerJob, type MethodSpec } from './types.js';

export type Distribution = 'uniform' | 'gaussian';
export type ProjectionNorm = 'linf' | 'l2';

export interface InputAgnosticOptions {
  /** Samples drawn per class and step. */
  samples?: number;
  /** Nudging steps. */
  iterations?: number;
  /** Step of each nudge, as the RMS of the change per pixel value. */
  stepSize?: number;
  /** Where samples come from: 'uniform' on [0, 1] or 'gaussian' N(0.5, 0.25^2), unclipped. */
  distribution?: Distribution;
  /** Norm of the projection. */
  norm?: ProjectionNorm;
  /** Bound of the projection: linf, the largest |value|; l2, the RMS. */
  epsilon?: number;
  /** Refinement steps on the visualisation (0: none). */
  refineSteps?: number;
  /** Step of each refinement, as an RMS change per pixel value. */
  refineStepSize?: number;
  /** Gaussian smoothing (sigma, pixels) applied at each refinement step (0: none; it erases fine patterns such as triggers). */
  refineBlur?: number;
  /** The refinement keeps the most refined picture whose confidence is at least this. */
  fidelityTarget?: number;
  /** Seed of the samples: the same seed and options give the same result. */
  seed?: number;
}

export type NormalizedInputAgnostic = Required<InputAgnosticOptions>;

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

/** What the native side returns besides the maps. */
export interface InputAgnosticOutputs {
  visualization: NativeTensor;
  perturbation: NativeTensor;
  fidelity: NativeTensor;
  fidelityInitial: NativeTensor;
  fidelityHistory: NativeTensor;
  refinedSteps: NativeTensor;
  lossHistory: NativeTensor;
}

const DEFAULTS = Object.freeze({
  samples: 16,
  iterations: 64,
  stepSize: 0.05,
  distribution: 'uniform',
  norm: 'linf',
  epsilon: Object.freeze({ linf: 0.5, l2: 0.25 }),
  refineSteps: 20,
  refineStepSize: 0.02,
  refineBlur: 0,
  fidelityTarget: 0.9,
  seed: 0,
} as const);

/** The method's own option names (the backdoor scan passes these through). */
export const INPUT_AGNOSTIC_OPTIONS: readonly (keyof InputAgnosticOptions)[] = Object.freeze(Object.keys(DEFAULTS) as (keyof InputAgnosticOptions)[]);

function rows(t: NativeTensor): number[][] {
  const [n, k] = t.shape.length === 2 ? t.shape : [t.shape[0], 1];
  return Array.from({ length: n }, (_, i) => Array.from(t.data.subarray(i * k, (i + 1) * k)));
}

function images(t: NativeTensor): Image[] {
  const [n, channels, height, width] = t.shape;
  const per = channels * height * width;
  return Array.from({ length: n }, (_, i) => ({ data: (t.data as Float32Array).slice(i * per, (i + 1) * per), channels, height, width }));
}

export const inputAgnostic: MethodSpec<'input-agnostic', InputAgnosticOptions, NormalizedInputAgnostic, InputAgnosticDetails, InputAgnosticOutputs> = {
  name: 'input-agnostic',
  summary: 'A class saliency map and picture from the model alone (Akhtar & Jalwana 2023); the input is only a size',
  defaults: DEFAULTS,
  normalize(options) {
    const d = DEFAULTS;
    const norm = v.oneOf<ProjectionNorm>('options.norm', options.norm, ['linf', 'l2'], d.norm);
    return Object.freeze({
      samples: v.optionalNumber('options.samples', options.samples, d.samples, { integer: true, min: 1, max: 4096 }),
      iterations: v.optionalNumber('options.iterations', options.iterations, d.iterations, { integer: true, min: 1, max: 100000 }),
      stepSize: v.optionalNumber('options.stepSize', options.stepSize, d.stepSize, { above: 0, max: 10 }),
      distribution: v.oneOf<Distribution>('options.distribution', options.distribution, ['uniform', 'gaussian'], d.distribution),
      norm,
      epsilon: v.optionalNumber('options.epsilon', options.epsilon, d.epsilon[norm], { above: 0, max: 10 }),
      refineSteps: v.optionalNumber('options.refineSteps', options.refineSteps, d.refineSteps, { integer: true, min: 0, max: 10000 }),
      refineStepSize: v.optionalNumber('options.refineStepSize', options.refineStepSize, d.refineStepSize, { min: 0, max: 1 }),
      refineBlur: v.optionalNumber('options.refineBlur', options.refineBlur, d.refineBlur, { min: 0, max: 16 }),
      fidelityTarget: v.optionalNumber('options.fidelityTarget', options.fidelityTarget, d.fidelityTarget, { min: 0, max: 1 }),
      seed: v.optionalNumber('options.seed', options.seed, d.seed, { integer: true, min: 0, max: Number.MAX_SAFE_INTEGER }),
    });
  },
  finish(raw, context) {
    const o = raw.outputs;
    const fidelity = Array.from(o.fidelity.data);
    const fidelityInitial = Array.from(o.fidelityInitial.data);
    const details = {
      fidelity,
      fidelityInitial,
      fidelityHistory: rows(o.fidelityHistory),
      refinedSteps: Array.from(o.refinedSteps.data),
      lossHistory: rows(o.lossHistory),
      fidelityTarget: context.options.fidelityTarget,
    };
    // The pictures are there to read, not to serialise: kept out of toJSON() (whole images as JSON objects).
    const withPictures = Object.defineProperties(details, {
      visualizations: { value: images(o.visualization), enumerable: false },
      perturbations: { value: images(o.perturbation), enumerable: false },
    }) as typeof details & Pick<InputAgnosticDetails, 'visualizations' | 'perturbations'>;
    const maps = mapsPerJob(raw, context, (j) => ({ fidelity: fidelity[j], fidelityInitial: fidelityInitial[j] }));
    return { maps, details: withPictures };
  },
};
