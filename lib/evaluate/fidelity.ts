/**
 * Fidelity of a saliency map to the model (Petsiuk et al., RISE, 2018): the deletion curve removes the most
 * salient pixels first and watches the class probability fall (lower area under the curve is better); the
 * insertion curve adds them to a blurred canvas and watches it rise (higher is better). The images of each
 * curve go through the model in batches.
 */
import type { Image } from '../image.js';
import { resizeMap, type MapData } from '../map.js';
import type { Model } from '../model.js';
import * as v from '../validate.js';

/** The deletion and insertion curves' defaults (docs/evaluation.md's options table is checked against them). */
export const FIDELITY_DEFAULTS = Object.freeze({
  steps: 32,
  deletionBaseline: 'zero',
  insertionBaseline: 'blur',
  blurSigma: 0.05,
  batchSize: 64,
} as const);

export interface FidelityOptions {
  /** Points on each curve besides the start (default 32). */
  steps?: number;
  /** What deleted pixels become (default 'zero'). */
  deletionBaseline?: 'zero' | 'blur' | 'mean';
  /** The canvas pixels are inserted into (default 'blur'). */
  insertionBaseline?: 'zero' | 'blur' | 'mean';
  /** Gaussian sigma of the 'blur' baseline as a fraction of the image's larger side (default 0.05). */
  blurSigma?: number;
  /** Images per model call (default 64). */
  batchSize?: number;
}

export interface Curve {
  /** Fraction of pixels changed at each point, 0..1. */
  fractions: Float32Array;
  /** Probability of the target class at each point. */
  probabilities: Float32Array;
  /** Trapezoidal area under the curve over [0, 1]. */
  auc: number;
}

export interface FidelityResult {
  deletion: Curve;
  insertion: Curve;
}

/** Separable Gaussian blur of a planar image (edges clamped). */
export function blurImage(image: Image, sigma: number): Image {
  if (sigma <= 0) return image;
  const half = Math.ceil(3 * sigma);
  const k = Array.from({ length: 2 * half + 1 }, (_, i) => Math.exp(-0.5 * ((i - half) / sigma) ** 2));
  const sum = k.reduce((a, b) => a + b, 0);
  const kernel = k.map((x) => x / sum);
  const { channels, height, width } = image;
  const tmp = new Float32Array(image.data.length);
  const out = new Float32Array(image.data.length);
  for (let c = 0; c < channels; c++) {
    const o = c * height * width;
    for (let y = 0; y < height; y++) {
      for (let x = 0; x < width; x++) {
        let s = 0;
        for (let j = -half; j <= half; j++) s += kernel[j + half] * image.data[o + y * width + Math.min(width - 1, Math.max(0, x + j))];
        tmp[o + y * width + x] = s;
      }
    }
    for (let y = 0; y < height; y++) {
      for (let x = 0; x < width; x++) {
        let s = 0;
        for (let j = -half; j <= half; j++) s += kernel[j + half] * tmp[o + Math.min(height - 1, Math.max(0, y + j)) * width + x];
        out[o + y * width + x] = s;
      }
    }
  }
  return { ...image, data: out };
}

function baseline(image: Image, kind: 'zero' | 'blur' | 'mean', sigma: number): Float32Array {
  if (kind === 'zero') return new Float32Array(image.data.length);
  if (kind === 'blur') return blurImage(image, sigma * Math.max(image.height, image.width)).data;
  const out = new Float32Array(image.data.length);
  const plane = image.height * image.width;
  for (let c = 0; c < image.channels; c++) {
    let s = 0;
    for (let i = 0; i < plane; i++) s += image.data[c * plane + i];
    out.fill(s / plane, c * plane, (c + 1) * plane);
  }
  return out;
}

function auc(fractions: Float32Array, values: Float32Array): number {
  let a = 0;
  for (let i = 1; i < values.length; i++) a += ((values[i] + values[i - 1]) / 2) * (fractions[i] - fractions[i - 1]);
  return a;
}

/** Floats of curve images alive at once (64 MB): the images of a curve are made batch by batch within it. */
const CURVE_FLOATS = 2 ** 24;

/** The fidelity options checked, with their defaults (a typed error names the first that is wrong). */
export function checkFidelityOptions(options: FidelityOptions = {}): Required<FidelityOptions> {
  const d = FIDELITY_DEFAULTS;
  const o = v.plainObject('options', options);
  v.knownKeys('options', o, Object.keys(d));
  const kinds = ['zero', 'blur', 'mean'] as const;
  return {
    steps: v.optionalNumber('options.steps', o.steps, d.steps, { integer: true, min: 1, max: 4096 }),
    deletionBaseline: v.oneOf('options.deletionBaseline', o.deletionBaseline, kinds, d.deletionBaseline),
    insertionBaseline: v.oneOf('options.insertionBaseline', o.insertionBaseline, kinds, d.insertionBaseline),
    // At most the image's larger side: the blur's kernel (and its time) grows with sigma.
    blurSigma: v.optionalNumber('options.blurSigma', o.blurSigma, d.blurSigma, { min: 0, max: 1 }),
    batchSize: v.optionalNumber('options.batchSize', o.batchSize, d.batchSize, { integer: true, min: 1 }),
  };
}

/** Deletion and insertion curves of one map for one image and class. */
export async function fidelity(model: Model, image: Image, map: MapData, target: number, options: FidelityOptions = {}): Promise<FidelityResult> {
  const deletion = await fidelityCurve(model, image, map, target, 'deletion', options);
  const insertion = await fidelityCurve(model, image, map, target, 'insertion', options);
  return { deletion, insertion };
}

/** One of the two curves (see fidelity). */
export async function fidelityCurve(
  model: Model,
  image: Image,
  map: MapData,
  target: number,
  kind: 'deletion' | 'insertion',
  options: FidelityOptions = {},
): Promise<Curve> {
  const { steps, deletionBaseline: delBase, insertionBaseline: insBase, blurSigma: sigma, batchSize } = checkFidelityOptions(options);
  v.number('target', target, { integer: true, min: 0 });

  const plane = image.height * image.width;
  const saliency = resizeMap(map, image.height, image.width).data;
  const order = Array.from({ length: plane }, (_, i) => i).sort((a, b) => saliency[b] - saliency[a]);
  const fractions = Float32Array.from({ length: steps + 1 }, (_, k) => k / steps);

  const curve = async (start: Float32Array, end: Float32Array): Promise<Curve> => {
    // Image k takes the first round(k/steps * plane) pixels of `order` from `end`, the rest from `start`. The
    // images are made batch by batch, at most CURVE_FLOATS floats of them alive at once, whatever steps and batchSize.
    const current = Float32Array.from(start);
    let done = 0;
    const probabilities = new Float32Array(steps + 1);
    const chunk = Math.max(1, Math.min(batchSize, Math.floor(CURVE_FLOATS / image.data.length)));
    for (let b = 0; b <= steps; b += chunk) {
      const images: Image[] = [];
      for (let k = b; k <= Math.min(steps, b + chunk - 1); k++) {
        const upto = Math.round((k / steps) * plane);
        for (; done < upto; done++) {
          const p = order[done];
          for (let c = 0; c < image.channels; c++) current[c * plane + p] = end[c * plane + p];
        }
        images.push({ ...image, data: Float32Array.from(current) });
      }
      const preds = await model.predict(images, { top: 0 });
      preds.forEach((p, i) => (probabilities[b + i] = p.probabilities[target]));
    }
    return { fractions, probabilities, auc: auc(fractions, probabilities) };
  };

  return kind === 'deletion' ? curve(image.data, baseline(image, delBase, sigma)) : curve(baseline(image, insBase, sigma), image.data);
}
