/**
 * The Neural Cleanse scan (Wang et al., IEEE S&P 2019), the reference the input-agnostic scan is measured
 * against: per class, the smallest mask and pattern that send the inputs (the caller's clean images, or
 * seeded random inputs of several kinds) to it (the 'neural-cleanse' method, every class in one run); a class
 * whose mask's L1 norm is a low outlier, (median - norm) / (1.4826 MAD) >= anomalyThreshold, is flagged.
 * See docs/methods/neural-cleanse.md.
 */
import { invalidType } from '../errors.js';
import type { Image } from '../image.js';
import type { Model } from '../model.js';
import { NEURAL_CLEANSE_OPTIONS, type NeuralCleanseOptions } from '../methods/neural-cleanse.js';
import { derived } from '../methods/types.js';
import * as v from '../validate.js';
import { INPUT_KINDS, randomInputs, type InputKind } from './inputs.js';
import { anomalyIndices, peakRegion } from './scores.js';
import type { ClassScanBase, MethodScan, ScanContext } from './types.js';
import type { CommonScanOptions } from './scan.js';

export interface NeuralCleanseScanOptions extends CommonScanOptions, Omit<Partial<NeuralCleanseOptions>, 'head'> {
  /** Random inputs to reverse the triggers on when no images are given (default 24). */
  inputs?: number;
  /** Kinds of random inputs, taken in turn (default all: 'uniform', 'grey', 'smooth'). */
  inputKinds?: InputKind[];
}

export interface NeuralCleanseClassScan extends ClassScanBase {
  /** The reversed mask's L1 norm as a share of the image, |m|_1 / (H W). */
  norm: number;
  /** Share of the inputs the reversed mask and pattern send to the class. */
  attackSuccess: number;
  /** Whether the optimisation reached the success threshold (a class that did not cannot be flagged). */
  reached: boolean;
}

/** The defaults of the Neural Cleanse scan's own options (checked against its doc table). */
export const NEURAL_CLEANSE_SCAN_DEFAULTS = Object.freeze({
  inputs: 24,
  inputKinds: derived(INPUT_KINDS.map((k) => `'${k}'`).join(', ')),
} as const);

const OWN = Object.keys(NEURAL_CLEANSE_SCAN_DEFAULTS);

export async function scanNeuralCleanse(model: Model, context: ScanContext, common: readonly string[]): Promise<MethodScan<NeuralCleanseClassScan>> {
  const opts = context.options;
  v.knownKeys(
    'options',
    opts,
    [...common, ...OWN, ...NEURAL_CLEANSE_OPTIONS].filter((k) => k !== 'head' || common.includes(k)),
  );
  const { height, width, channels, classes, head } = context;
  const count = v.optionalNumber('options.inputs', opts.inputs, NEURAL_CLEANSE_SCAN_DEFAULTS.inputs, { integer: true, min: 1, max: 4096 });
  let kinds: InputKind[] = [...INPUT_KINDS];
  if (opts.inputKinds !== undefined) {
    if (!Array.isArray(opts.inputKinds) || opts.inputKinds.length === 0)
      throw invalidType('options.inputKinds', `a non-empty array of ${INPUT_KINDS.map((k) => `'${k}'`).join(', ')}`, opts.inputKinds);
    kinds = opts.inputKinds.map((k, i) => v.oneOf<InputKind>(`options.inputKinds[${i}]`, k, INPUT_KINDS, 'uniform'));
  }
  const inputs: Image[] = context.images ?? randomInputs(count, channels, height, width, context.seed, kinds);

  const passthrough: Record<string, unknown> = {};
  for (const k of [...NEURAL_CLEANSE_OPTIONS, 'batchSize', 'signal', 'onProgress']) if (opts[k] !== undefined) passthrough[k] = opts[k];
  passthrough.head = head;
  if (passthrough.seed === undefined) passthrough.seed = context.seed;
  const start = performance.now();
  // Every input serves every class: the classes are the targets of the first image only (the method
  // optimises each distinct target over all the call's images).
  const explanation = await model.explain(inputs, { ...passthrough, method: 'neural-cleanse', target: inputs.map((_, i) => (i === 0 ? classes : [])) });
  const methodMs = performance.now() - start;
  const d = explanation.details;

  // Low outliers of the norm: the index is (median - norm) / (1.4826 MAD), so high is suspicious.
  const indices = anomalyIndices(
    d.norms.map((x) => -x),
    1e-6,
  );
  const result: NeuralCleanseClassScan[] = classes.map((c, j) => ({
    class: c,
    ...(model.labels ? { label: model.labels[c] } : {}),
    box: peakRegion(explanation.maps[j], 0.5),
    norm: d.norms[j],
    attackSuccess: d.attackSuccess[j],
    reached: d.reached[j],
    anomalyIndex: indices[j],
    flagged: d.reached[j] && indices[j] >= context.anomaly,
  }));
  // The picture of a class: its pattern where its mask is, grey elsewhere.
  const pictures = d.masks.map((mask, j) => {
    const pattern = d.patterns[j];
    const plane = height * width;
    const data = new Float32Array(channels * plane);
    for (let c = 0; c < channels; c++)
      for (let i = 0; i < plane; i++) data[c * plane + i] = mask.data[i] * pattern.data[c * plane + i] + (1 - mask.data[i]) * 0.5;
    return { data, channels, height, width };
  });
  const reachedScores = result.filter((c) => c.reached).map((c) => c.anomalyIndex);
  return {
    classes: result,
    score: reachedScores.length > 0 ? Math.max(...reachedScores) : 0,
    pictures,
    maps: explanation.maps,
    explanation,
    thresholds: { anomaly: context.anomaly },
    options: explanation.options,
    methodMs,
  };
}
