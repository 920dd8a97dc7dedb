/**
 * Neural Cleanse (Wang et al., IEEE S&P 2019): per class, the smallest mask and pattern that, stamped on the
 * call's images, send them to that class. The map of a job is its class's mask.
 *
 *   const r = await model.explain(images, { method: 'neural-cleanse', target: 2 });
 *   r.maps[0]                  // the reversed trigger's mask for class 2, values in [0, 1]
 *   r.details.norms[0]         // its area fraction |m|_1 / (H W)
 *   r.details.patterns[0]      // the pattern (an RGB Image)
 *
 * Every image of the call is an input of every target's optimisation; jobs of the same class share one
 * mask. See docs/methods/neural-cleanse.md.
 */
import type { Image } from '../image.js';
import type { NativeTensor } from '../native.js';
import * as v from '../validate.js';
import { mapsPerJob, rowsOf, type MethodSpec } from './types.js';

export type Head = 'softmax' | 'sigmoid';
/** The reversed trigger's shape: NC's per-pixel mask, or one opacity for a pattern blended over the whole image. */
export type MaskShape = 'pixel' | 'whole';

export interface NeuralCleanseOptions {
  /** Optimisation steps (each one forward and backward of every class's stamped images). */
  steps?: number;
  /** Adam's learning rate on the mask's and pattern's tanh parameters. */
  learningRate?: number;
  /** The weight lambda of the mask's L1 sum in the loss once the warm-up (lambda 0) has found a working mask. */
  initialCost?: number;
  /** Factor lambda is raised by after `patience` successful steps (lowered by its 1.5th power after as many failures). */
  costMultiplier?: number;
  /** Steps without a smaller working mask after which a class is done (once lambda went up and down); 0: run every step. */
  earlyStopPatience?: number;
  /** Steps in a row before lambda changes. */
  patience?: number;
  /** Share of stamped images that must reach the class for a mask to count (and to be kept). */
  successThreshold?: number;
  /** How the model's outputs are read: 'softmax' (cross-entropy, argmax) or 'sigmoid' (per-class binary cross-entropy, logit > 0). */
  head?: Head;
  /** 'pixel' (NC's H x W mask) or 'whole' (one opacity per class: a pattern blended over the whole image, for blended triggers). */
  mask?: MaskShape;
  /** Standard deviation of Gaussian noise added to every stamped image during the optimisation and its success test (0: none). */
  noise?: number;
  /** Seed of the initial masks and patterns. */
  seed?: number;
}

export type NormalizedNeuralCleanse = Required<NeuralCleanseOptions>;

export interface NeuralCleanseDetails {
  /** Per job: the mask's area fraction, |m|_1 / (H W) (mask 'whole': the opacity). */
  norms: number[];
  /** Per job: the share of the call's images the kept mask and pattern send to the class. */
  attackSuccess: number[];
  /** Per job: whether the class reached successThreshold (else the last mask is returned). */
  reached: boolean[];
  /** Per job: lambda at the end. */
  cost: number[];
  /** Per job: the mean loss of the class at every step. */
  lossHistory: Float32Array[];
  /** Per job: the mask's area fraction at every step. */
  normHistory: Float32Array[];
  /** Per job: the mask (1 x H x W). Not part of toJSON(). */
  masks: Image[];
  /** Per job: the pattern (C x H x W, values in [0, 1]). Not part of toJSON(). */
  patterns: Image[];
}

export interface NeuralCleanseOutputs {
  mask: NativeTensor;
  pattern: NativeTensor;
  norm: NativeTensor;
  attackSuccess: NativeTensor;
  reached: NativeTensor;
  cost: NativeTensor;
  lossHistory: NativeTensor;
  normHistory: NativeTensor;
}

const DEFAULTS = Object.freeze({
  steps: 1000,
  learningRate: 0.1,
  initialCost: 0.001,
  costMultiplier: 2,
  earlyStopPatience: 25,
  patience: 5,
  successThreshold: 0.99,
  head: 'softmax',
  mask: 'pixel',
  noise: 0,
  seed: 0,
} as const);

/** The method's own option names (the backdoor scan passes these through). */
export const NEURAL_CLEANSE_OPTIONS: readonly (keyof NeuralCleanseOptions)[] = Object.freeze(Object.keys(DEFAULTS) as (keyof NeuralCleanseOptions)[]);

function images(t: NativeTensor): Image[] {
  const [n, channels, height, width] = t.shape;
  const per = channels * height * width;
  return Array.from({ length: n }, (_, i) => ({ data: (t.data as Float32Array).slice(i * per, (i + 1) * per), channels, height, width }));
}

export const neuralCleanse: MethodSpec<'neural-cleanse', NeuralCleanseOptions, NormalizedNeuralCleanse, NeuralCleanseDetails, NeuralCleanseOutputs> = {
  name: 'neural-cleanse',
  summary: 'Neural Cleanse (Wang et al. 2019): the smallest mask and pattern that send the images to the class',
  defaults: DEFAULTS,
  normalize(options) {
    const d = DEFAULTS;
    return Object.freeze({
      steps: v.optionalNumber('options.steps', options.steps, d.steps, { integer: true, min: 1, max: 100000 }),
      learningRate: v.optionalNumber('options.learningRate', options.learningRate, d.learningRate, { above: 0, max: 100 }),
      initialCost: v.optionalNumber('options.initialCost', options.initialCost, d.initialCost, { min: 0, max: 1e6 }),
      costMultiplier: v.optionalNumber('options.costMultiplier', options.costMultiplier, d.costMultiplier, { min: 1, max: 100 }),
      earlyStopPatience: v.optionalNumber('options.earlyStopPatience', options.earlyStopPatience, d.earlyStopPatience, { integer: true, min: 0, max: 100000 }),
      patience: v.optionalNumber('options.patience', options.patience, d.patience, { integer: true, min: 1, max: 100000 }),
      successThreshold: v.optionalNumber('options.successThreshold', options.successThreshold, d.successThreshold, { above: 0, max: 1 }),
      head: v.oneOf<Head>('options.head', options.head, ['softmax', 'sigmoid'], d.head),
      mask: v.oneOf<MaskShape>('options.mask', options.mask, ['pixel', 'whole'], d.mask),
      noise: v.optionalNumber('options.noise', options.noise, d.noise, { min: 0, max: 1 }),
      seed: v.optionalNumber('options.seed', options.seed, d.seed, { integer: true, min: 0, max: Number.MAX_SAFE_INTEGER }),
    });
  },
  finish(raw, context) {
    const o = raw.outputs;
    const norms = Array.from(o.norm.data);
    const attackSuccess = Array.from(o.attackSuccess.data);
    const reached = Array.from(o.reached.data, (x) => x > 0.5);
    const details = {
      norms,
      attackSuccess,
      reached,
      cost: Array.from(o.cost.data),
      lossHistory: rowsOf(o.lossHistory),
      normHistory: rowsOf(o.normHistory),
    };
    const withPictures = Object.defineProperties(details, {
      masks: { value: images(o.mask), enumerable: false },
      patterns: { value: images(o.pattern), enumerable: false },
    }) as typeof details & Pick<NeuralCleanseDetails, 'masks' | 'patterns'>;
    const maps = mapsPerJob(raw, context, (j) => ({ norm: norms[j], attackSuccess: attackSuccess[j], reached: reached[j] }));
    return { maps, details: withPictures };
  },
};
