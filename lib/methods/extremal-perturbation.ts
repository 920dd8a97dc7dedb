/**
 * Extremal perturbations (Fong, Patrick & Vedaldi, ICCV 2019; TorchRay's `extremal_perturbation`):
 * for every (image, target, area) a smooth mask of that area which keeps (preserve) or removes (delete)
 * the evidence for the target, optimised in native code. One map per (job, area), in [0, 1].
 */
import { outOfRange } from '../errors.js';
import { SaliencyMap } from '../explanation.js';
import type { NativeRecord, NativeTensor } from '../native.js';
import * as v from '../validate.js';
import { derived, rowsOf, type MethodSpec } from './types.js';

export interface ExtremalPerturbationOptions {
  /** Target areas, fractions of the image in (0, 1); one mask per area. */
  areas?: number | readonly number[];
  perturbation?: 'blur' | 'fade';
  maxBlur?: number;
  numLevels?: number;
  step?: number;
  sigma?: number;
  maxIter?: number;
  jitter?: boolean;
  variant?: 'preserve' | 'delete' | 'dual';
  reward?: 'simple' | 'contrastive';
  learningRate?: number;
  momentum?: number;
  areaWeight?: number;
  areaWeightGrowth?: number;
  /** Implementation of the mask generator and perturbation: 'fused' kernels (CPU) or 'composed' ATen ops. */
  kernel?: 'fused' | 'composed';
  /**
   * Opt-in stopping rule: every `stopWindow` steps, a batch of masks stops once each of them moved by at most
   * this (mean absolute change of the full mask since the previous check). 0 (default): run `maxIter` steps.
   */
  stopTolerance?: number;
  /** Steps between two checks of the stopping rule. */
  stopWindow?: number;
  /**
   * Memory layout of the model's copy that runs the loop: 'channels-last' (weights and the perturbed batch),
   * 'contiguous', or 'auto': channels-last for convolutional models on the CPU. The masks are the same up to
   * float rounding per step; the user's model is never changed.
   */
  memoryFormat?: 'auto' | 'contiguous' | 'channels-last';
  /**
   * Run the loop on a frozen copy of the model (torch.jit.freeze: BatchNorm folded into the convolutions,
   * parameters as constants). Gradients to the input are the same up to float rounding; a model that cannot
   * be frozen runs unfrozen (`details.loop.frozen` says which).
   */
  freeze?: boolean;
  /**
   * Precision of the model's copy in the loop: 'fp32', or 'bf16' (bfloat16 weights and activations; the mask
   * parameters, the objective and the optimiser stay float32). 'bf16' needs libtorch 2.x (ERR_UNSUPPORTED on
   * 1.13) and pays on CPUs with AMX or AVX-512-BF16 and on CUDA; masks differ from fp32's (see the doc page).
   */
  precision?: 'fp32' | 'bf16';
}

export type NormalizedExtremalPerturbation = Required<Omit<ExtremalPerturbationOptions, 'areas'>> & {
  areas: readonly number[];
  /** Rows through the model per step (0: every mask at once). */
  batchSize: number;
};

/** Pixels per batch through the model on the CPU when batchSize is not given (see the doc page's batchSize). */
const AUTO_BATCH_PIXELS = 2 ** 19;

/** TorchRay's defaults. */
/** Most areas in one call: each is one mask in every batch through the model, so memory grows with them. */
export const MAX_AREAS = 64;

function areaList(value: unknown, fallback: readonly number[]): number[] {
  const areas = v.numberList('options.areas', value, [...fallback], { above: 0, max: 0.999 });
  if (areas.length > MAX_AREAS) throw outOfRange('options.areas', `at most ${MAX_AREAS} areas (call again for more)`, value);
  return areas;
}

export const EP_DEFAULTS = Object.freeze({
  areas: Object.freeze([0.1]),
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
  kernel: 'fused',
  stopTolerance: 0,
  stopWindow: 50,
  // Both off by default: exact per step, but over 800 steps their rounding moves masks of the real model elsewhere,
  // as far as a one-ulp change of the input does to the plain loop (scripts/ep-parity.ts; the doc page's parity
  // section): on, they would change the masks users got before.
  memoryFormat: 'contiguous',
  freeze: false,
  precision: 'fp32',
  batchSize: derived('auto'),
} as const);

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
  /** Steps of the longest-running mask (the histories' length). */
  iterations: number;
  /** Per map, the steps it ran: `maxIter`, or fewer where the stopping rule (`stopTolerance`) ended it. */
  steps: Float32Array;
  /** How the loop's copy of the model ran: in channels-last layout, frozen, its precision (see `memoryFormat`, `freeze`, `precision`). */
  loop: { channelsLast: boolean; frozen: boolean; precision: 'fp32' | 'bf16' };
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

/** What the native side returns besides the maps. */
export interface ExtremalPerturbationOutputs {
  areas: NativeTensor;
  areaReached: NativeTensor;
  areaInImage: NativeTensor;
  areaAboveHalf: NativeTensor;
  scoreOriginal: NativeTensor;
  scorePreserved: NativeTensor;
  scoreDeleted: NativeTensor;
  rewardHistory: NativeTensor;
  penaltyHistory: NativeTensor;
  steps: NativeTensor;
  loop: NativeRecord & { channelsLast: number; frozen: number; bf16: number };
  timings: NativeRecord & { setupMs: number; loopMs: number; msPerIteration: number; nativeMs: number };
  /** On the CPU only. */
  phases?: NativeRecord & EpPhaseTimings;
}

export const extremalPerturbation: MethodSpec<
  'extremal-perturbation',
  ExtremalPerturbationOptions,
  NormalizedExtremalPerturbation,
  ExtremalPerturbationDetails,
  ExtremalPerturbationOutputs
> = {
  name: 'extremal-perturbation',
  summary: 'Smooth masks of given areas that keep (or delete) the evidence for the target (Fong et al. 2019)',
  defaults: EP_DEFAULTS,
  normalize(options, context) {
    const d = EP_DEFAULTS;
    const o = {
      areas: Object.freeze(areaList(options.areas, d.areas)),
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
      kernel: v.oneOf('options.kernel', options.kernel, ['fused', 'composed'] as const, d.kernel),
      stopTolerance: v.optionalNumber('options.stopTolerance', options.stopTolerance, d.stopTolerance, { min: 0, max: 1 }),
      stopWindow: v.optionalNumber('options.stopWindow', options.stopWindow, d.stopWindow, { integer: true, min: 1, max: 1_000_000 }),
      memoryFormat: v.oneOf('options.memoryFormat', options.memoryFormat, ['auto', 'contiguous', 'channels-last'] as const, d.memoryFormat),
      freeze: v.boolean('options.freeze', options.freeze, d.freeze),
      precision: v.oneOf('options.precision', options.precision, ['fp32', 'bf16'] as const, d.precision),
      // Without batchSize, the CPU takes about AUTO_BATCH_PIXELS per batch and CUDA every mask at once.
      batchSize: context.batchSize ?? (context.device === 'cpu' ? Math.max(1, Math.floor(AUTO_BATCH_PIXELS / (context.height * context.width))) : 0),
    };
    // The fused kernel handles up to 31 x 31 taps: radius 1 + ceil(sigma / step) <= 15.
    if (Math.ceil(o.sigma / o.step) > 14) throw outOfRange('options.sigma', `a number <= ${14 * o.step} (14 x step)`, o.sigma);
    return Object.freeze(o);
  },
  finish(raw, context) {
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
    const o = raw.outputs;
    const { setupMs, loopMs, msPerIteration, nativeMs } = o.timings;
    const phases = o.phases && {
      maskMs: o.phases.maskMs,
      perturbMs: o.phases.perturbMs,
      forwardMs: o.phases.forwardMs,
      objectiveMs: o.phases.objectiveMs,
      backwardMs: o.phases.backwardMs,
      updateMs: o.phases.updateMs,
    };
    const details: ExtremalPerturbationDetails = {
      areas: o.areas.data as Float32Array,
      areaReached: o.areaReached.data as Float32Array,
      areaInImage: o.areaInImage.data as Float32Array,
      areaAboveHalf: o.areaAboveHalf.data as Float32Array,
      scoreOriginal: o.scoreOriginal.data as Float32Array,
      scorePreserved: o.scorePreserved.data as Float32Array,
      scoreDeleted: o.scoreDeleted.data as Float32Array,
      rewardHistory: rowsOf(o.rewardHistory),
      penaltyHistory: rowsOf(o.penaltyHistory),
      iterations: o.rewardHistory.shape[1],
      steps: o.steps.data as Float32Array,
      loop: { channelsLast: o.loop.channelsLast === 1, frozen: o.loop.frozen === 1, precision: o.loop.bf16 === 1 ? 'bf16' : 'fp32' },
      timings: { setupMs, loopMs, msPerIteration, nativeMs, ...(phases ? { phases } : {}) },
    };
    return { maps, details };
  },
};
