/**
 * Extremal perturbations (Fong, Patrick & Vedaldi, ICCV 2019; TorchRay's `extremal_perturbation`):
 * for every (image, target, area) a smooth mask of that area which keeps (preserve) or removes (delete)
 * the evidence for the target, optimised in native code. One map per (job, area), in [0, 1].
 */
import { outOfRange } from '../errors.js';
import { SaliencyMap } from '../explanation.js';
import type { NativeTensor } from '../native.js';
import * as v from '../validate.js';
import { registerMethod } from './registry.js';
import type { FinishContext, MethodSpec } from './types.js';

export interface ExtremalPerturbationOptions {
  /** Target areas, fractions of the image in (0, 1); one mask per area. Default [0.1]. */
  areas: number[];
  perturbation: 'blur' | 'fade';
  maxBlur: number;
  numLevels: number;
  step: number;
  sigma: number;
  maxIter: number;
  jitter: boolean;
  variant: 'preserve' | 'delete' | 'dual';
  reward: 'simple' | 'contrastive';
  learningRate: number;
  momentum: number;
  areaWeight: number;
  areaWeightGrowth: number;
  seed: number;
  /** Implementation of the mask generator and perturbation: 'fused' kernels (CPU) or 'composed' ATen ops. */
  kernel: 'fused' | 'composed';
}

export const EP_DEFAULTS: Readonly<ExtremalPerturbationOptions> = Object.freeze({
  areas: [0.1],
  perturbation: 'blur',
  maxBlur: 20,
  numLevels: 8,
  step: 7,
  sigma: 21,
  maxIter: 800,
  jitter: true,
  variant: 'preserve',
  reward: 'simple',
  learningRate: 0.01,
  momentum: 0.9,
  areaWeight: 300,
  areaWeightGrowth: 1.0035,
  seed: 0,
  kernel: 'fused',
});

export interface ExtremalPerturbationDetails {
  /**
   * Per map (job-major, then area): the target area; the area reached by the full mask (its mean over
   * the image plus its margin of sigma pixels, which is what the area penalty constrains, as in TorchRay);
   * and the mean of the returned, image-sized mask.
   */
  areas: Float32Array;
  areaReached: Float32Array;
  areaInImage: Float32Array;
  /** Fraction of the full mask above 1/2. */
  areaAboveHalf: Float32Array;
  /** The target's score on the original image (per job), the preserved and the deleted image (per map). */
  scoreOriginal: Float32Array;
  scorePreserved: Float32Array;
  scoreDeleted: Float32Array;
  /** Per map, one entry per iteration: the reward, and the area penalty lambda_t * mean((sorted - ref)^2). */
  rewardHistory: Float32Array[];
  penaltyHistory: Float32Array[];
  iterations: number;
  timings: { setupMs: number; loopMs: number; msPerIteration: number; nativeMs: number; phases?: EpPhaseTimings };
}

/**
 * Mean ms per iteration of each part of a step, measured on the CPU only (on CUDA the host just queues
 * the work, so these would be launch times; absent there). They add up to about `msPerIteration`.
 */
export interface EpPhaseTimings {
  /** The mask generator's forward (parameters to smooth full-size masks). */
  maskMs: number;
  /** Blending each image with its blur pyramid (or fade) under the masks, with the jitter flip. */
  perturbMs: number;
  /** The model's forward on the perturbed batch. */
  forwardMs: number;
  /** Reward and area penalty. */
  objectiveMs: number;
  /** The whole backward: the model's, then the perturbation's, the penalty's and the mask generator's. */
  backwardMs: number;
  /** The SGD-with-momentum step, the clamp to [0, 1] and the histories. */
  updateMs: number;
}

function rowsOf(t: NativeTensor): Float32Array[] {
  const [n, k] = t.shape;
  const out: Float32Array[] = [];
  for (let i = 0; i < n; i++) out.push(t.data.slice(i * k, (i + 1) * k) as Float32Array);
  return out;
}

export const extremalPerturbation: MethodSpec<ExtremalPerturbationOptions> = registerMethod<ExtremalPerturbationOptions>({
  name: 'extremal-perturbation',
  summary: 'Smooth masks of given areas that keep (or delete) the evidence for the target (Fong et al. 2019)',
  optionNames: Object.keys(EP_DEFAULTS),
  normalize(options) {
    const d = EP_DEFAULTS;
    const o: ExtremalPerturbationOptions = {
      areas: v.numberList('options.areas', options.areas, [...d.areas], { above: 0, max: 0.999 }),
      perturbation: v.oneOf('options.perturbation', options.perturbation, ['blur', 'fade'] as const, d.perturbation),
      maxBlur: v.optionalNumber('options.maxBlur', options.maxBlur, d.maxBlur, { above: 0, max: 1000 }),
      numLevels: v.optionalNumber('options.numLevels', options.numLevels, d.numLevels, { integer: true, min: 2, max: 256 }),
      step: v.optionalNumber('options.step', options.step, d.step, { integer: true, min: 1, max: 256 }),
      sigma: v.optionalNumber('options.sigma', options.sigma, d.sigma, { above: 0, max: 1000 }),
      maxIter: v.optionalNumber('options.maxIter', options.maxIter, d.maxIter, { integer: true, min: 1, max: 1_000_000 }),
      jitter: v.boolean('options.jitter', options.jitter, d.jitter),
      variant: v.oneOf('options.variant', options.variant, ['preserve', 'delete', 'dual'] as const, d.variant),
      reward: v.oneOf('options.reward', options.reward, ['simple', 'contrastive'] as const, d.reward),
      learningRate: v.optionalNumber('options.learningRate', options.learningRate, d.learningRate, { above: 0 }),
      momentum: v.optionalNumber('options.momentum', options.momentum, d.momentum, { min: 0, max: 1 }),
      areaWeight: v.optionalNumber('options.areaWeight', options.areaWeight, d.areaWeight, { min: 0 }),
      areaWeightGrowth: v.optionalNumber('options.areaWeightGrowth', options.areaWeightGrowth, d.areaWeightGrowth, { above: 0 }),
      seed: v.optionalNumber('options.seed', options.seed, d.seed, { integer: true, min: 0, max: 2 ** 32 - 1 }),
      kernel: v.oneOf('options.kernel', options.kernel, ['fused', 'composed'] as const, d.kernel),
    };
    // The fused kernel handles up to 31 x 31 taps: radius 1 + ceil(sigma / step) <= 15.
    if (Math.ceil(o.sigma / o.step) > 14) throw outOfRange('options.sigma', `a number <= ${14 * o.step} (14 x step)`, o.sigma);
    const options_ = Object.freeze({ ...o, areas: Object.freeze([...o.areas]) as number[] });
    return {
      options: options_,
      baton: {
        ...o,
        jitter: o.jitter ? 1 : 0,
        autoBatch: options.batchSize === undefined ? 1 : 0,
      },
    };
  },
  finish(raw, context: FinishContext<ExtremalPerturbationOptions>) {
    const areas = context.options.areas;
    const [count, height, width] = raw.maps.shape;
    const plane = height * width;
    const maps: SaliencyMap[] = [];
    for (let i = 0; i < count; i++) {
      const job = context.jobs[Math.floor(i / areas.length)];
      const area = areas[i % areas.length];
      maps.push(
        new SaliencyMap(raw.maps.data.slice(i * plane, (i + 1) * plane) as Float32Array, height, width, {
          image: job.image,
          target: job.target,
          label: context.labels?.[job.target],
          area,
        }),
      );
    }
    const e = raw.extras;
    const t = e.timings.data;
    const ph = e.phaseTimings?.data;
    const phases: EpPhaseTimings | undefined = ph && {
      maskMs: ph[0],
      perturbMs: ph[1],
      forwardMs: ph[2],
      objectiveMs: ph[3],
      backwardMs: ph[4],
      updateMs: ph[5],
    };
    const details: ExtremalPerturbationDetails = {
      areas: e.areas.data as Float32Array,
      areaReached: e.areaReached.data as Float32Array,
      areaInImage: e.areaInImage.data as Float32Array,
      areaAboveHalf: e.areaAboveHalf.data as Float32Array,
      scoreOriginal: e.scoreOriginal.data as Float32Array,
      scorePreserved: e.scorePreserved.data as Float32Array,
      scoreDeleted: e.scoreDeleted.data as Float32Array,
      rewardHistory: rowsOf(e.rewardHistory),
      penaltyHistory: rowsOf(e.penaltyHistory),
      iterations: e.rewardHistory.shape[1],
      timings: { setupMs: t[0], loopMs: t[1], msPerIteration: t[2], nativeMs: t[3], ...(phases ? { phases } : {}) },
    };
    return { maps, details: details as unknown as Record<string, unknown> };
  },
});
