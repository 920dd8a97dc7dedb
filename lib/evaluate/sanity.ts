/**
 * The model-parameter randomisation test (Adebayo et al., "Sanity Checks for Saliency Maps", NeurIPS 2018):
 * re-draw the model's parameters layer by layer from the output side down ('cascading'), or one layer at a
 * time ('independent'), explain the same images and classes again, and measure how alike the maps stay
 * (Spearman rank correlation, SSIM). A map that stays alike while the model it explains is destroyed shows
 * the image, not the model. Every randomised model is a copy (Model.cloneReinitialized); the model passed in
 * is never changed.
 */
import { abortError, invalidType } from '../errors.js';
import type { Image } from '../image.js';
import { resizeMap, type MapData } from '../map.js';
import type { Model } from '../model.js';
import { derived } from '../methods/types.js';
import * as v from '../validate.js';
import { jobMaps } from './job-maps.js';
import { spearman, ssim } from './similarity.js';

export interface SanityOptions {
  /** 'cascading' (default): each step re-draws one more layer, top first; 'independent': one layer alone. */
  order?: 'cascading' | 'independent';
  /** Seed of the re-drawn parameters (default 42; each layer's draw starts from it). */
  seed?: number;
  /** The layers, in the order they are re-drawn (default: model.parameterLayers(), output side first). */
  layers?: readonly string[];
  /**
   * How many points the test measures at (default 12): with more layers than that, cascading randomisation
   * still re-draws every layer but measures after evenly spaced ones (always the first and the last).
   */
  points?: number;
}

export interface SanityStep {
  /** The layer re-drawn at this step (cascading: the last of those re-drawn so far). */
  layer: string;
  /** How many layers are re-drawn in the model of this step. */
  randomized: number;
  /** Mean over the maps of the rank correlation with the original map (1: unchanged; near 0: unrelated); constant maps left out. */
  spearman: number;
  /** Mean SSIM with the original map. */
  ssim: number;
  spearmanPerMap: number[];
  ssimPerMap: number[];
}

export interface SanityResult {
  order: 'cascading' | 'independent';
  seed: number;
  steps: SanityStep[];
}

/** A job: which image and class a map explains. */
export interface SanityJob {
  image: number;
  target: number;
}

/**
 * Explains the jobs on each randomised copy with `explain` (the method and its options; targets are set per
 * image here) and compares each map with the original map of the same job.
 */
/** The sanity check's defaults (docs/evaluation.md's options table is checked against them); `images` is evaluate()'s. */
export const SANITY_DEFAULTS = Object.freeze({
  images: 4,
  order: 'cascading',
  seed: 42,
  layers: derived('every layer with parameters, output side first'),
  points: 12,
} as const);

/** The layers option: absent, or an array of layer names. */
export function checkSanityLayers(name: string, layers: unknown): void {
  if (layers !== undefined && !(Array.isArray(layers) && layers.every((l) => typeof l === 'string' && l !== '')))
    throw invalidType(name, 'an array of layer names', layers);
}

/** `indices` into `images` grouped by image shape (channels, height, width), each group in the given order. */
export function sizeGroups(indices: readonly number[], images: readonly Image[]): number[][] {
  const groups = new Map<string, number[]>();
  for (const i of indices) {
    const { channels, height, width } = images[i];
    const key = `${channels}x${height}x${width}`;
    const group = groups.get(key);
    if (group) group.push(i);
    else groups.set(key, [i]);
  }
  return [...groups.values()];
}

export async function sanityCheck(
  model: Model,
  images: readonly Image[],
  jobs: readonly SanityJob[],
  originalMaps: readonly MapData[],
  explain: Record<string, unknown>,
  options: SanityOptions & { signal?: AbortSignal; onStep?: (done: number, total: number) => void } = {},
): Promise<SanityResult> {
  const d = SANITY_DEFAULTS;
  const order = v.oneOf('options.order', options.order, ['cascading', 'independent'] as const, d.order);
  const seed = v.optionalNumber('options.seed', options.seed, d.seed, { integer: true, min: 0, max: Number.MAX_SAFE_INTEGER });
  const points = v.optionalNumber('options.points', options.points, d.points, { integer: true, min: 1 });
  checkSanityLayers('options.layers', options.layers);
  const layers = options.layers ? [...options.layers] : model.parameterLayers().reverse();
  if (layers.length === 0) return { order, seed, steps: [] };
  // The steps measured: all layers, or `points` evenly spaced ones including the first and the last.
  const measured =
    layers.length <= points
      ? layers.map((_, i) => i)
      : [...new Set(Array.from({ length: points }, (_, k) => Math.round((k * (layers.length - 1)) / Math.max(1, points - 1))))];
  // Targets per image, in the order of the jobs (explain returns maps image by image, targets in order).
  const perImage = images.map((_, i) => jobs.filter((j) => j.image === i).map((j) => j.target));
  const used = perImage.map((t, i) => (t.length > 0 ? i : -1)).filter((i) => i >= 0);
  const ordered = used.flatMap((i) =>
    jobs
      .map((j, k) => ({ j, k }))
      .filter(({ j }) => j.image === i)
      .map(({ k }) => k),
  );

  const steps: SanityStep[] = [];
  let current: Model | null = null;
  let drawn = 0;
  try {
    for (let s = 0; s < measured.length; s++) {
      if (options.signal?.aborted) throw abortError(options.signal.reason);
      const upto = measured[s];
      let next: Model;
      if (order === 'cascading') {
        // A copy of the previous copy: the layers drawn before keep their weights (each layer's draw is seeded alone).
        next = await (current ?? model).cloneReinitialized(layers.slice(drawn, upto + 1), { seed });
        drawn = upto + 1;
      } else {
        next = await model.cloneReinitialized([layers[upto]], { seed });
      }
      current?.dispose();
      current = next;
      const spearmanPerMap: number[] = new Array(ordered.length);
      const ssimPerMap: number[] = new Array(ordered.length);
      // One explain call per image size (images of different sizes cannot share a batch).
      for (const group of sizeGroups(used, images)) {
        const r = await current.explain(
          group.map((i) => images[i]),
          { ...explain, target: group.map((i) => perImage[i]), signal: options.signal } as never,
        );
        const groupJobs = group.flatMap((i) => ordered.filter((k) => jobs[k].image === i));
        for (const [n, m] of jobMaps(r.maps).entries()) {
          const at = ordered.indexOf(groupJobs[n]);
          const original = originalMaps[groupJobs[n]];
          const map = m.height === original.height && m.width === original.width ? m : resizeMap(m, original.height, original.width);
          spearmanPerMap[at] = spearman(original.data, map.data);
          ssimPerMap[at] = ssim(original.data, map.data, original.height, original.width);
          // Tens of ms of JS per map at 224 px: the event loop runs between maps, not after all of them.
          await new Promise<void>((resolve) => setImmediate(resolve));
        }
      }
      // A constant map (Grad-CAM of a destroyed model is often all zero) has no rank correlation: NaN for that
      // map, and the mean is over the maps that have one (NaN when none has).
      const mean = (xs: number[]) => {
        const ok = xs.filter((x) => Number.isFinite(x));
        return ok.length ? ok.reduce((a, b) => a + b, 0) / ok.length : NaN;
      };
      steps.push({
        layer: layers[upto],
        randomized: order === 'cascading' ? upto + 1 : 1,
        spearman: mean(spearmanPerMap),
        ssim: mean(ssimPerMap),
        spearmanPerMap,
        ssimPerMap,
      });
      options.onStep?.(s + 1, measured.length);
    }
  } finally {
    current?.dispose();
  }
  return { order, seed, steps };
}
