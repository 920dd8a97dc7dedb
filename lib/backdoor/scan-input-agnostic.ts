/**
 * The input-agnostic scan: every class's map and picture come from the model alone (one batched explain
 * call), each is scored for a trigger signature, and outlying classes are flagged.
 *
 * Signature of a class c (docs/methods/input-agnostic.md, "Backdoor scanning"):
 *  - region: the connected component of the map, at regionThreshold of its peak, holding the peak; its box;
 *  - concentration: the share of the map's mass (above its median, the background) inside the box;
 *  - flip rate: the class's nudge inside the box alone (grown by pasteMargin, as a full-contrast stamp), pasted
 *    on inputs (the caller's images, or seeded random ones of several kinds), turns how many of those not
 *    already of class c into c (a trigger works anywhere; a small piece of an ordinary class does not);
 *  - control: the smaller flip rate of the stamp inverted and of the region filled with its mean colour; specific flip rate = flip rate - control's
 *    (a class inputs fall into whatever is pasted there is an attractor, not a trigger);
 *  - signature = concentration x specific flip rate, and its anomaly index across classes (Neural Cleanse's outlier
 *    test, (x - median) / (1.4826 MAD)).
 * A class is flagged when its anomaly index, flip rate and area pass their thresholds together, or when the
 * whole-image test (whole-image.ts: the smallest opacity of a pattern blended over the whole image that sends
 * noisy inputs to the class, a low outlier across classes) flags it: blended triggers have no region.
 */
import { abortError, invalidType } from '../errors.js';
import type { Image } from '../image.js';
import type { Model } from '../model.js';
import type { ExplanationFor } from '../methods/index.js';
import { INPUT_AGNOSTIC_OPTIONS, type InputAgnosticOptions } from '../methods/input-agnostic.js';
import { derived } from '../methods/types.js';
import * as v from '../validate.js';
import { INPUT_KINDS, randomInputs, says, type InputKind } from './inputs.js';
import { anomalyIndices, boxBlur, peakRegion, type Box } from './scores.js';
import type { ClassScanBase, MethodScan, ScanContext } from './types.js';
import type { CommonScanOptions } from './scan.js';
import { wholeImageTest, type WholeImageResult } from './whole-image.js';

export interface InputAgnosticScanOptions extends CommonScanOptions, Partial<InputAgnosticOptions> {
  /** Specific flip rate from which the region alone counts as working on other inputs (default 0.6). */
  flipThreshold?: number;
  /**
   * Largest region (fraction of the image) that can be a trigger (default 0.1). Applied per pass: a pass whose
   * region for a class is larger counts as no signature for that class (specific flip rate and signature 0).
   */
  maxArea?: number;
  /** Where the region is grown: pixels at or above this fraction of the map's peak (default 0.5). */
  regionThreshold?: number;
  /** Radius (pixels) of the box filter the map is smoothed with before the region is grown (default floor(side / 64)). */
  regionBlur?: number;
  /** Random inputs for the flip test when no images are given (default 32). */
  trials?: number;
  /** Kinds of random inputs, taken in turn (default all: 'uniform', 'grey', 'smooth'). */
  inputKinds?: InputKind[];
  /** Pixels the region is grown by on each side before it is pasted in the flip test (default 1). */
  pasteMargin?: number;
  /**
   * Independent passes (seeds seed, seed + 1, ...: maps, and random inputs when no images are given) whose
   * per-class flip rates, concentrations and signatures are averaged (default 2). One pass's flip rates swing
   * by tens of points from seed to seed.
   */
  seeds?: number;
  /** Run the whole-image test for blended triggers (default false). */
  wholeImage?: boolean;
  /** Optimisation steps of the whole-image test at most (default 200; it stops earlier once every class has converged). */
  wholeImageSteps?: number;
  /** Standard deviation of the Gaussian noise added to the blended inputs of the whole-image test (default 0.04). */
  wholeImageNoise?: number;
  /** Random inputs of the whole-image test when no images are given (default 24). */
  wholeImageInputs?: number;
  /** Anomaly index of a class's log opacity (low side) from which the whole-image test flags it (default 2). */
  wholeImageThreshold?: number;
}

export interface InputAgnosticClassScan extends ClassScanBase {
  /** Share of the map's mass inside the box. */
  concentration: number;
  /** The box's share of the image. */
  areaFraction: number;
  /** concentration / areaFraction. */
  lift: number;
  /** concentration x specificFlipRate: the share of the saliency held by a region that works on its own. */
  signature: number;
  /** Share of the flip test's inputs (not already of this class) that the pasted region turns into this class. */
  flipRate: number;
  /** The smaller flip rate of two controls: the stamp with black and white swapped, and filled with its mean colour. */
  controlFlipRate: number;
  /** flipRate - controlFlipRate (at least 0; 0 in a pass whose region is larger than maxArea): the flips the stamp's pattern makes. */
  specificFlipRate: number;
  /** Share of the flip test's inputs that are of this class before anything is pasted. */
  baseRate: number;
  /** The model's confidence for the class on its whole picture. */
  fidelity: number;
  /** Whole-image test (absent when `wholeImage` is false): the smallest opacity of a blended pattern that sends the noisy inputs to the class. */
  opacity?: number;
  /** Whole-image test: whether a blended pattern reached the class on the inputs at all (a class not reached cannot be flagged by it). */
  opacityReached?: boolean;
  /** Whole-image test: anomaly index of the class's log opacity, low side (high is suspicious). */
  opacityIndex?: number;
  /** Whether the whole-image test flags the class (it is then flagged whatever the region test says). */
  wholeImageFlagged?: boolean;
}

/** The defaults of the input-agnostic scan's own options (checked against its doc table). */
export const INPUT_AGNOSTIC_SCAN_DEFAULTS = Object.freeze({
  flipThreshold: 0.6,
  maxArea: 0.1,
  regionThreshold: 0.5,
  regionBlur: derived('floor(min(height, width) / 64)'),
  pasteMargin: 1,
  trials: 32,
  inputKinds: derived(INPUT_KINDS.map((k) => `'${k}'`).join(', ')),
  seeds: 2,
  wholeImage: false,
  wholeImageSteps: 200,
  wholeImageNoise: 0.04,
  wholeImageInputs: 24,
  wholeImageThreshold: 2,
} as const);

const OWN = Object.keys(INPUT_AGNOSTIC_SCAN_DEFAULTS);

export async function scanInputAgnostic(model: Model, context: ScanContext, common: readonly string[]): Promise<MethodScan<InputAgnosticClassScan>> {
  const opts = context.options;
  v.knownKeys('options', opts, [...common, ...OWN, ...INPUT_AGNOSTIC_OPTIONS]);
  const { height, width, channels, classes, head } = context;
  const d = INPUT_AGNOSTIC_SCAN_DEFAULTS;
  const flip = v.optionalNumber('options.flipThreshold', opts.flipThreshold, d.flipThreshold, { min: 0, max: 1 });
  const maxArea = v.optionalNumber('options.maxArea', opts.maxArea, d.maxArea, { above: 0, max: 1 });
  const region = v.optionalNumber('options.regionThreshold', opts.regionThreshold, d.regionThreshold, { above: 0, max: 1 });
  const blur = v.optionalNumber('options.regionBlur', opts.regionBlur, Math.floor(Math.min(height, width) / 64), { integer: true, min: 0, max: 64 });
  const margin = v.optionalNumber('options.pasteMargin', opts.pasteMargin, d.pasteMargin, { integer: true, min: 0, max: 64 });
  const trials = v.optionalNumber('options.trials', opts.trials, d.trials, { integer: true, min: 1, max: 4096 });
  let kinds: InputKind[] = [...INPUT_KINDS];
  if (opts.inputKinds !== undefined) {
    if (!Array.isArray(opts.inputKinds) || opts.inputKinds.length === 0)
      throw invalidType('options.inputKinds', `a non-empty array of ${INPUT_KINDS.map((k) => `'${k}'`).join(', ')}`, opts.inputKinds);
    kinds = opts.inputKinds.map((k, i) => v.oneOf<InputKind>(`options.inputKinds[${i}]`, k, INPUT_KINDS, 'uniform'));
  }
  const seeds = v.optionalNumber('options.seeds', opts.seeds, d.seeds, { integer: true, min: 1, max: 64 });
  const wholeImage = v.boolean('options.wholeImage', opts.wholeImage, d.wholeImage);
  const wholeSteps = v.optionalNumber('options.wholeImageSteps', opts.wholeImageSteps, d.wholeImageSteps, { integer: true, min: 1, max: 100000 });
  const wholeNoise = v.optionalNumber('options.wholeImageNoise', opts.wholeImageNoise, d.wholeImageNoise, { min: 0, max: 1 });
  const wholeInputs = v.optionalNumber('options.wholeImageInputs', opts.wholeImageInputs, d.wholeImageInputs, { integer: true, min: 1, max: 4096 });
  const wholeThreshold = v.optionalNumber('options.wholeImageThreshold', opts.wholeImageThreshold, d.wholeImageThreshold, { min: 0 });
  const plane = height * width;
  const first = context.seed;

  // One pass per seed: every class is a target of the same batched run.
  let methodMs = 0;
  const passes: Pass[] = [];
  for (let k = 0; k < seeds; k++) {
    const passthrough: Record<string, unknown> = {};
    for (const key of [...INPUT_AGNOSTIC_OPTIONS, 'batchSize', 'signal', 'onProgress']) if (opts[key] !== undefined) passthrough[key] = opts[key];
    passthrough.seed = first + k;
    const mapsStart = performance.now();
    const explanation = await model.explain([height, width], { ...passthrough, method: 'input-agnostic', target: classes, channels, resize: true });
    methodMs += performance.now() - mapsStart;
    passes.push(await scorePass(explanation, first + k));
  }

  // The whole-image test: one Neural Cleanse run with a scalar mask, every class together, on the caller's
  // images or seeded random inputs (a seed of their own, apart from the passes' flip tests).
  let whole: WholeImageResult | undefined;
  if (wholeImage) {
    const inputs = context.images ?? randomInputs(wholeInputs, channels, height, width, first + 7919, kinds);
    whole = await wholeImageTest(model, inputs, classes, {
      steps: wholeSteps,
      noise: wholeNoise,
      head,
      seed: first,
      batchSize: opts.batchSize,
      signal: opts.signal,
      onProgress: opts.onProgress,
    });
    methodMs += whole.ms;
  }

  // Averaged over the passes; the box, picture and map are those of the pass with the class's largest signature
  // (among the passes whose region may be a trigger, when there is one).
  const mean = (f: (p: Pass, j: number) => number, j: number) => passes.reduce((sum, p) => sum + f(p, j), 0) / passes.length;
  const best = classes.map((_, j) => {
    const small = passes.filter((p) => p.scored[j].areaFraction <= maxArea);
    return small.reduce((a, p) => (p.signatures[j] > a.signatures[j] ? p : a), small[0] ?? passes[0]);
  });
  const flipRates = classes.map((_, j) => mean((p) => p.flipRates[j], j));
  const controlRates = classes.map((_, j) => mean((p) => p.controlRates[j], j));
  const baseRates = classes.map((_, j) => mean((p) => p.baseRates[j], j));
  const specific = classes.map((_, j) => mean((p) => p.specific[j], j));
  const signatures = classes.map((_, j) => mean((p) => p.signatures[j], j));
  const concentrations = classes.map((_, j) => mean((p) => p.scored[j].concentration, j));
  const indices = anomalyIndices(signatures);
  const result: InputAgnosticClassScan[] = classes.map((c, j) => {
    const s = best[j].scored[j];
    const wholeFlag = whole ? whole.reached[j] && whole.index[j] >= wholeThreshold : false;
    return {
      class: c,
      ...(model.labels ? { label: model.labels[c] } : {}),
      box: s.box,
      concentration: concentrations[j],
      areaFraction: s.areaFraction,
      lift: s.lift,
      anomalyIndex: indices[j],
      flipRate: flipRates[j],
      controlFlipRate: controlRates[j],
      baseRate: baseRates[j],
      specificFlipRate: specific[j],
      signature: signatures[j],
      fidelity: best[j].explanation.details.fidelity[j],
      ...(whole ? { opacity: whole.opacity[j], opacityReached: whole.reached[j], opacityIndex: whole.index[j], wholeImageFlagged: wholeFlag } : {}),
      flagged: (indices[j] >= context.anomaly && specific[j] >= flip) || wholeFlag,
    };
  });
  return {
    classes: result,
    // The model-level score: the larger of the two tests' largest indices (a class not reached by a blend counts 0).
    score: Math.max(...indices, ...(whole ? whole.index.map((x, j) => (whole.reached[j] ? x : 0)) : [])),
    pictures: classes.map((_, j) => best[j].explanation.details.visualizations[j]),
    maps: classes.map((_, j) => best[j].explanation.maps[j]),
    explanation: passes[0].explanation,
    thresholds: { anomaly: context.anomaly, flip, maxArea, region, regionBlur: blur, seeds, ...(whole ? { wholeImage: wholeThreshold } : {}) },
    options: passes[0].explanation.options,
    methodMs,
  };

  /** One pass's region, concentration and flip test per class. */
  async function scorePass(explanation: ExplanationFor<'input-agnostic'>, seed: number): Promise<Pass> {
    const details = explanation.details;

    // Region, concentration and lift per class. The map's median is its background level: mass is counted
    // above it, so that a diffuse floor spread over the whole image does not drown a compact peak.
    const scored = explanation.maps.map((map) => {
      // The map is per pixel and spiky at larger sizes (its peak a few pixels where the trigger has tens): the
      // region is grown on a smoothed copy, so that it spans the pattern rather than its sharpest pixel.
      const box = peakRegion(blur > 0 ? boxBlur(map, blur) : map, region);
      const floor = [...map.data].sort((a, b) => a - b)[map.data.length >> 1];
      let inside = 0;
      let total = 0;
      for (let y = 0; y < height; y++) {
        for (let x = 0; x < width; x++) {
          const m = Math.max(0, map.data[y * width + x] - floor);
          total += m;
          if (y >= box.top && y < box.top + box.height && x >= box.left && x < box.left + box.width) inside += m;
        }
      }
      const concentration = total > 0 ? inside / total : 0;
      const areaFraction = (box.height * box.width) / plane;
      return { box, concentration, areaFraction, lift: concentration / areaFraction };
    });

    // Flip test: the same inputs for every class; one predict batch for the inputs, one per class.
    const inputs: Image[] = context.images ?? randomInputs(trials, channels, height, width, seed, kinds);
    const base = await model.predict(inputs, { top: 1 });
    const flipRates: number[] = [];
    const controlRates: number[] = [];
    const baseRates: number[] = [];
    for (let j = 0; j < classes.length; j++) {
      if (opts.signal instanceof AbortSignal && opts.signal.aborted) throw abortError(opts.signal.reason);
      // What is pasted: the class's nudge inside the box grown by `margin` pixels, at full contrast: 1 where
      // rho > 5 % of its peak there, 0 where rho < -5 %, grey between (docs: a linear stretch of rho flipped
      // only 28-38 % of inputs on the trojaned fixture with the l2 projection, this ternary stamp 100 %).
      const { box } = scored[j];
      const top = Math.max(0, box.top - margin);
      const left = Math.max(0, box.left - margin);
      const bottom = Math.min(height, box.top + box.height + margin);
      const right = Math.min(width, box.left + box.width + margin);
      const rho = details.perturbations[j].data;
      let peak = 1e-12;
      for (let c = 0; c < channels; c++) {
        for (let y = top; y < bottom; y++) for (let x = left; x < right; x++) peak = Math.max(peak, Math.abs(rho[c * plane + y * width + x]));
      }
      // The stamp, and two controls: the same region with black and white swapped, and filled with the
      // stamp's mean colour. A class the inputs fall into whatever is pasted there (an attractor of noise, not
      // a trigger) flips as many with a control; a trigger's pattern matters. The control's rate is the smaller
      // of the two: a checkerboard's inverse is a checkerboard too, a solid patch's mean is the patch itself.
      const patch = new Float32Array(channels * plane);
      const inverse = new Float32Array(channels * plane);
      const flat = new Float32Array(channels * plane);
      for (let i = 0; i < patch.length; i++) {
        patch[i] = rho[i] > 0.05 * peak ? 1 : rho[i] < -0.05 * peak ? 0 : 0.5;
        inverse[i] = 1 - patch[i];
      }
      for (let c = 0; c < channels; c++) {
        let sum = 0;
        for (let y = top; y < bottom; y++) for (let x = left; x < right; x++) sum += patch[c * plane + y * width + x];
        flat.fill(sum / Math.max(1, (bottom - top) * (right - left)), c * plane, (c + 1) * plane);
      }
      const paste = (stamp: Float32Array) =>
        inputs.map((input) => {
          const data = input.data.slice();
          for (let c = 0; c < channels; c++) {
            for (let y = top; y < bottom; y++) {
              const row = c * plane + y * width;
              data.set(stamp.subarray(row + left, row + right), row + left);
            }
          }
          return { data, channels, height, width };
        });
      const n = inputs.length;
      const predicted = await model.predict([...paste(patch), ...paste(inverse), ...paste(flat)], { top: 1 });
      let eligible = 0;
      const flips = [0, 0, 0];
      for (let t = 0; t < n; t++) {
        if (says(base[t].logits, classes[j], head)) continue;
        eligible++;
        for (let k = 0; k < 3; k++) if (says(predicted[k * n + t].logits, classes[j], head)) flips[k]++;
      }
      baseRates.push(1 - eligible / n);
      flipRates.push(eligible > 0 ? flips[0] / eligible : 0);
      controlRates.push(eligible > 0 ? Math.min(flips[1], flips[2]) / eligible : 0);
    }

    // A region larger than maxArea is not a trigger candidate in this pass: no signature (the flip rates are kept).
    const specific = flipRates.map((f, j) => (scored[j].areaFraction <= maxArea ? Math.max(0, f - controlRates[j]) : 0));
    const signatures = scored.map((x, j) => x.concentration * specific[j]);
    return { explanation, scored, flipRates, controlRates, baseRates, specific, signatures };
  }
}

interface Pass {
  explanation: ExplanationFor<'input-agnostic'>;
  scored: { box: Box; concentration: number; areaFraction: number; lift: number }[];
  flipRates: number[];
  controlRates: number[];
  baseRates: number[];
  specific: number[];
  signatures: number[];
}
