/**
 * Backdoor scanning with input-agnostic saliency: every class's map and picture come from the model alone
 * (one batched explain call), each is scored for a trigger signature, and outlying classes are flagged.
 *
 *   const scan = await scanBackdoor(model, { size: 32 });
 *   scan.flagged                 // e.g. [2]
 *   scan.classes[2].box          // { top, left, height, width } of the suspected trigger
 *   await scan.writePictures('out/scan');
 *
 * Signature of a class c (docs/methods/input-agnostic.md, "Backdoor scanning"):
 *  - region: the connected component of the map, at regionThreshold of its peak, holding the peak; its box;
 *  - lift: the share of the map's mass (above its median, the background) inside the box divided by the box's share of the image (how many
 *    times denser than uniform the saliency is there): a trigger is small and holds much of the mass;
 *  - flip rate: the class's nudge inside the box alone (grown 1 px, as a full-contrast stamp), pasted on random inputs, turns how many of those
 *    not already of class c into c (a trigger works anywhere; a small piece of an ordinary class does not);
 *  - signature = concentration x flip rate, and its anomaly index across classes: Neural Cleanse's outlier
 *    test, (x - median) / (1.4826 MAD).
 * A class is flagged when its anomaly index, flip rate and area pass their thresholds together.
 */
import { join } from 'node:path';
import { abortError, invalidType, outOfRange } from '../errors.js';
import { colorize } from '../pictures.js';
import { makeFolder, writeFileAtomic } from '../safe-write.js';
import type { Model } from '../model.js';
import type { ExplanationFor } from '../methods/index.js';
import { INPUT_AGNOSTIC_OPTIONS, type InputAgnosticOptions } from '../methods/input-agnostic.js';
import * as v from '../validate.js';
import { magnified, withBox } from './pictures.js';
import { anomalyIndices, peakRegion, random, type Box } from './scores.js';

export type { Box };

export interface ScanBackdoorOptions extends Partial<InputAgnosticOptions> {
  /** Input size of the model: a side or [height, width] (required). */
  size: number | [number, number];
  /** Input channels (default: the model's first convolution's, or 3). */
  channels?: number;
  /** Classes to scan (default: every class of the model). */
  classes?: number[];
  /** Anomaly index (MAD units above the median) from which a class is an outlier (default 2, as Neural Cleanse). */
  anomalyThreshold?: number;
  /** Flip rate from which the region alone counts as working on other inputs (default 0.7). */
  flipThreshold?: number;
  /** Largest region (fraction of the image) that can be a trigger (default 0.25). */
  maxArea?: number;
  /** Where the region is grown: pixels at or above this fraction of the map's peak (default 0.5). */
  regionThreshold?: number;
  /** Random inputs for the flip test (default 32). */
  trials?: number;
  /** Pixels the region is grown by on each side before it is pasted in the flip test (default 1). */
  pasteMargin?: number;
  batchSize?: number;
  signal?: AbortSignal;
  onProgress?: (p: { iteration: number; total: number; energy: number; fraction: number }) => void;
}

export interface ClassScan {
  class: number;
  label?: string;
  box: Box;
  /** Share of the map's mass inside the box. */
  concentration: number;
  /** The box's share of the image. */
  areaFraction: number;
  /** concentration / areaFraction. */
  lift: number;
  /** concentration x flipRate: the share of the saliency held by a region that works on its own. */
  signature: number;
  /** (signature - median) / (1.4826 MAD) across the scanned classes. */
  anomalyIndex: number;
  /** Share of random inputs (not already of this class) that the pasted region turns into this class. */
  flipRate: number;
  /** The model's confidence for the class on its whole picture. */
  fidelity: number;
  flagged: boolean;
}

export class BackdoorScan {
  readonly classes: readonly ClassScan[];
  readonly flagged: readonly number[];
  /** The input-agnostic explanation the scan is made of: a map and a picture per class. */
  readonly explanation: ExplanationFor<'input-agnostic'>;
  readonly thresholds: Readonly<{ anomaly: number; flip: number; maxArea: number; region: number }>;
  readonly timings: Readonly<{ totalMs: number; mapsMs: number }>;

  constructor(init: {
    classes: ClassScan[];
    explanation: ExplanationFor<'input-agnostic'>;
    thresholds: BackdoorScan['thresholds'];
    timings: BackdoorScan['timings'];
  }) {
    this.classes = Object.freeze(init.classes.map((c) => Object.freeze(c)));
    this.flagged = Object.freeze(init.classes.filter((c) => c.flagged).map((c) => c.class));
    this.explanation = init.explanation;
    this.thresholds = Object.freeze(init.thresholds);
    this.timings = Object.freeze(init.timings);
  }

  /** Whether any class carries a trigger signature. */
  get suspicious(): boolean {
    return this.flagged.length > 0;
  }

  toJSON(): Record<string, unknown> {
    return {
      suspicious: this.suspicious,
      flagged: this.flagged,
      classes: this.classes,
      thresholds: this.thresholds,
      options: this.explanation.options,
      timings: this.timings,
    };
  }

  /**
   * Writes, per class, `class-<c>-map.png` (the saliency, viridis), `class-<c>-picture.png` (the class's
   * picture with the region's box in red), magnified `scale` times, and `scan.json`. Returns the paths.
   */
  async writePictures(dir: string, options: { scale?: number } = {}): Promise<string[]> {
    const scale = v.optionalNumber('options.scale', options.scale, 4, { integer: true, min: 1, max: 32 });
    await makeFolder(dir, 'dir');
    const details = this.explanation.details;
    const paths: string[] = [];
    for (let j = 0; j < this.classes.length; j++) {
      const c = this.classes[j];
      const map = this.explanation.maps[j];
      const mapPath = join(dir, `class-${c.class}-map.png`);
      await writeFileAtomic(mapPath, await magnified(colorize(map.data, 'viridis'), map.height, map.width, scale));
      const picture = withBox(details.visualizations[j], c.box);
      const picturePath = join(dir, `class-${c.class}-picture.png`);
      await writeFileAtomic(picturePath, await magnified(picture, details.visualizations[j].height, details.visualizations[j].width, scale));
      paths.push(mapPath, picturePath);
    }
    const jsonPath = join(dir, 'scan.json');
    await writeFileAtomic(jsonPath, JSON.stringify(this.toJSON(), null, 2) + '\n');
    paths.push(jsonPath);
    return paths;
  }
}

/** Scans every class (or `options.classes`) of a classifier for a backdoor trigger. */
export async function scanBackdoor(model: Model, options: ScanBackdoorOptions): Promise<BackdoorScan> {
  const start = performance.now();
  const opts = v.plainObject('options', options);
  const known = [
    'size',
    'channels',
    'classes',
    'anomalyThreshold',
    'flipThreshold',
    'maxArea',
    'regionThreshold',
    'trials',
    'pasteMargin',
    'batchSize',
    'signal',
    'onProgress',
    ...INPUT_AGNOSTIC_OPTIONS,
  ];
  v.knownKeys('options', opts, known);
  if (opts.size === undefined) throw invalidType('options.size', 'a positive integer or a [height, width] pair', undefined);
  const [height, width] = v.size('options.size', opts.size);
  const anomaly = v.optionalNumber('options.anomalyThreshold', opts.anomalyThreshold, 2, { min: 0 });
  const flip = v.optionalNumber('options.flipThreshold', opts.flipThreshold, 0.7, { min: 0, max: 1 });
  const maxArea = v.optionalNumber('options.maxArea', opts.maxArea, 0.25, { above: 0, max: 1 });
  const region = v.optionalNumber('options.regionThreshold', opts.regionThreshold, 0.5, { above: 0, max: 1 });
  const margin = v.optionalNumber('options.pasteMargin', opts.pasteMargin, 1, { integer: true, min: 0, max: 64 });
  const trials = v.optionalNumber('options.trials', opts.trials, 32, { integer: true, min: 1, max: 4096 });
  const channels = v.optionalNumber('options.channels', opts.channels, model.info().inputChannels > 0 ? model.info().inputChannels : 3, {
    integer: true,
    min: 1,
    max: 64,
  });
  const seed = v.optionalNumber('options.seed', opts.seed, 0, { integer: true, min: 0, max: Number.MAX_SAFE_INTEGER });

  // The number of classes, from one forward of a grey image.
  const plane = height * width;
  const grey = { data: new Float32Array(channels * plane).fill(0.5), channels, height, width };
  const classCount = (await model.predict(grey, { top: 0 })).logits.length;
  let classes: number[];
  if (opts.classes === undefined) classes = Array.from({ length: classCount }, (_, i) => i);
  else {
    if (!Array.isArray(opts.classes) || opts.classes.length === 0) throw invalidType('options.classes', 'a non-empty array of class indices', opts.classes);
    classes = opts.classes.map((c, i) => v.number(`options.classes[${i}]`, c, { integer: true, min: 0 }));
    for (const [i, c] of classes.entries()) if (c >= classCount) throw outOfRange(`options.classes[${i}]`, `a class index below ${classCount}`, c);
  }
  if (classes.length < 3) throw outOfRange('options.classes', 'at least 3 classes (the outlier test compares them)', classes.length);

  // One call: every class is a target of the same batched run.
  // The method's own options and the run's, as the caller gave them: explain checks them.
  const passthrough: Record<string, unknown> = {};
  for (const k of [...INPUT_AGNOSTIC_OPTIONS, 'batchSize', 'signal', 'onProgress']) if (opts[k] !== undefined) passthrough[k] = opts[k];
  const mapsStart = performance.now();
  const explanation = await model.explain([height, width], { ...passthrough, method: 'input-agnostic', target: classes, channels, resize: true });
  const mapsMs = performance.now() - mapsStart;
  const details = explanation.details;

  // Region, concentration and lift per class.
  // The map's median is its background level: mass is counted above it, so that a diffuse floor spread over
  // the whole image does not drown a compact peak.
  const scored = explanation.maps.map((map) => {
    const box = peakRegion(map, region);
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

  // Flip test: the same random inputs for every class; one predict batch for the inputs, one per class.
  const rand = random(seed);
  // Random inputs: uniform noise of random contrast and brightness (a U[0, 1] * a + b, a in [0.2, 1],
  // b in [0, 1 - a]), so that they span dim and bright, flat and busy inputs without assuming a dataset.
  const inputs = Array.from({ length: trials }, () => {
    const a = 0.2 + 0.8 * rand();
    const b = (1 - a) * rand();
    return Float32Array.from({ length: channels * plane }, () => b + a * rand());
  });
  const base = await model.predict(
    inputs.map((data) => ({ data, channels, height, width })),
    { top: 1 },
  );
  const flipRates: number[] = [];
  for (let j = 0; j < classes.length; j++) {
    if (opts.signal instanceof AbortSignal && opts.signal.aborted) throw abortError(opts.signal.reason);
    // What is pasted: the class's nudge inside the box grown by `margin` pixels, at full contrast: 1 where
    // rho > 5 % of its peak there, 0 where rho < -5 %, grey between. The pattern the method found, at the
    // strength a stamp has; with the l2 projection rho is not saturated and a linear stretch of it flipped
    // only 28-38 % of inputs on the trojaned fixture, against 100 % for this ternary stamp.
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
    const patch = new Float32Array(channels * plane);
    for (let i = 0; i < patch.length; i++) patch[i] = rho[i] > 0.05 * peak ? 1 : rho[i] < -0.05 * peak ? 0 : 0.5;
    const pasted = inputs.map((input) => {
      const data = input.slice();
      for (let c = 0; c < channels; c++) {
        for (let y = top; y < bottom; y++) {
          const row = c * plane + y * width;
          data.set(patch.subarray(row + left, row + right), row + left);
        }
      }
      return { data, channels, height, width };
    });
    const predicted = await model.predict(pasted, { top: 1 });
    let eligible = 0;
    let flipped = 0;
    for (let t = 0; t < trials; t++) {
      if (base[t].top[0].index === classes[j]) continue;
      eligible++;
      if (predicted[t].top[0].index === classes[j]) flipped++;
    }
    flipRates.push(eligible > 0 ? flipped / eligible : 0);
  }

  // The signature: the share of the class's saliency held by a region that works on its own.
  const signatures = scored.map((s, j) => s.concentration * flipRates[j]);
  const indices = anomalyIndices(signatures);
  const result: ClassScan[] = classes.map((c, j) => ({
    class: c,
    ...(model.labels ? { label: model.labels[c] } : {}),
    box: scored[j].box,
    concentration: scored[j].concentration,
    areaFraction: scored[j].areaFraction,
    lift: scored[j].lift,
    anomalyIndex: indices[j],
    flipRate: flipRates[j],
    signature: signatures[j],
    fidelity: details.fidelity[j],
    flagged: indices[j] >= anomaly && flipRates[j] >= flip && scored[j].areaFraction <= maxArea,
  }));
  return new BackdoorScan({
    classes: result,
    explanation,
    thresholds: { anomaly, flip, maxArea, region },
    timings: { totalMs: performance.now() - start, mapsMs },
  });
}
