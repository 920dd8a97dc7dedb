/**
 * Backdoor scanning, an application on the public Model API: every class of a classifier is examined for a
 * trigger (a small pattern that sends any input to it), and classes that stand out from the others are flagged.
 *
 *   const scan = await scanBackdoor(model, { size: 32 });                              // input-agnostic maps
 *   const nc = await scanBackdoor(model, { size: 32, method: 'neural-cleanse' });      // Neural Cleanse
 *   scan.flagged                 // e.g. [2], most suspicious first
 *   scan.classes[2].box          // { top, left, height, width } of the suspected trigger
 *   await scan.writePictures('out/scan');
 *
 * Two methods (docs/methods/input-agnostic.md, "Backdoor scanning"; docs/methods/neural-cleanse.md):
 *  - 'input-agnostic' (default, data-free): each class's input-agnostic map and picture; the region around the
 *    map's peak is pasted on inputs of other classes; a class whose small region works on its own is an outlier;
 *  - 'neural-cleanse': each class's smallest reversed mask and pattern; a class whose mask is a low outlier.
 * This file holds what both share: the options every scan takes, the result, and the dispatch.
 */
import { rm } from 'node:fs/promises';
import { join } from 'node:path';
import { TorchSaliencyError, abortError, invalidType, invalidValue, outOfRange } from '../errors.js';
import { colorize } from '../pictures.js';
import type { Explanation } from '../explanation.js';
import type { Image } from '../image.js';
import type { MapData } from '../map.js';
import { makeFolder, writeFileAtomic } from '../safe-write.js';
import type { Model } from '../model.js';
import { derived } from '../methods/types.js';
import * as v from '../validate.js';
import { magnified, withBox } from './pictures.js';
import type { Head } from './inputs.js';
import type { Box } from './scores.js';
import type { ClassScanBase, MethodScan, ScanContext } from './types.js';
import { scanInputAgnostic, type InputAgnosticClassScan, type InputAgnosticScanOptions } from './scan-input-agnostic.js';
import { scanNeuralCleanse, type NeuralCleanseClassScan, type NeuralCleanseScanOptions } from './scan-neural-cleanse.js';

export type { Box };
export type ScanMethod = 'input-agnostic' | 'neural-cleanse';

/** The options of every scan. */
export interface CommonScanOptions {
  /** Input size of the model: a side or [height, width] (default: the size of `images`, else the size the model's parameters fix; without either, required). */
  size?: number | [number, number];
  /** Input channels (default: the model's first convolution's, or 3). */
  channels?: number;
  /** Classes to scan (default: every class of the model). */
  classes?: number[];
  /** How the model's outputs are read (default 'softmax': argmax and cross-entropy; 'sigmoid': multi-label, logit > 0). */
  head?: Head;
  /** Clean images of the model's size, when the caller has some (default: seeded random inputs). */
  images?: Image[];
  /** Anomaly index (MAD units from the median, on the suspicious side) from which a class is an outlier (default 2, as Neural Cleanse). */
  anomalyThreshold?: number;
  seed?: number;
  batchSize?: number;
  signal?: AbortSignal;
  onProgress?: (p: { iteration: number; total: number; energy: number; fraction: number }) => void;
}

export type ScanBackdoorOptions = ({ method?: 'input-agnostic' } & InputAgnosticScanOptions) | ({ method: 'neural-cleanse' } & NeuralCleanseScanOptions);

export type ClassScan = InputAgnosticClassScan | NeuralCleanseClassScan;

export class BackdoorScan<C extends ClassScanBase = ClassScan> {
  readonly method: ScanMethod;
  readonly classes: readonly C[];
  /** Flagged classes, the most anomalous first. */
  readonly flagged: readonly number[];
  /** The model-level score (higher: more suspicious): the largest anomaly index of a class that may be a trigger. */
  readonly score: number;
  /** Per class: a picture of what the method found (input-agnostic picture; NC's mask times pattern on grey). Not in toJSON(). */
  readonly pictures!: readonly Image[];
  /** Per class: the map the region is read from. Not in toJSON(). */
  readonly maps!: readonly MapData[];
  /** The method's explanation the scan is made of (its options, details and timings). */
  readonly explanation: Explanation<object, object>;
  readonly thresholds: Readonly<Record<string, number>>;
  readonly options: Readonly<Record<string, unknown>>;
  readonly timings: Readonly<{ totalMs: number; methodMs: number }>;

  constructor(init: Omit<MethodScan<C>, 'methodMs'> & { method: ScanMethod; timings: { totalMs: number; methodMs: number } }) {
    this.method = init.method;
    this.classes = Object.freeze(init.classes.map((c) => Object.freeze(c)));
    this.flagged = Object.freeze(
      init.classes
        .filter((c) => c.flagged)
        .sort((a, b) => b.anomalyIndex - a.anomalyIndex)
        .map((c) => c.class),
    );
    this.score = init.score;
    Object.defineProperty(this, 'pictures', { value: Object.freeze(init.pictures), enumerable: false });
    Object.defineProperty(this, 'maps', { value: Object.freeze(init.maps), enumerable: false });
    this.explanation = init.explanation;
    this.thresholds = Object.freeze(init.thresholds);
    this.options = init.options;
    this.timings = Object.freeze(init.timings);
  }

  /** Whether any class carries a trigger signature. */
  get suspicious(): boolean {
    return this.flagged.length > 0;
  }

  toJSON(): Record<string, unknown> {
    return {
      method: this.method,
      suspicious: this.suspicious,
      flagged: this.flagged,
      score: this.score,
      classes: this.classes,
      thresholds: this.thresholds,
      options: this.options,
      timings: this.timings,
    };
  }

  /**
   * Writes, per class, `class-<c>-map.png` (the map, viridis) and `class-<c>-picture.png` (the class's picture
   * with the region's box in red), magnified `scale` times, and `scan.json`. Returns the paths.
   */
  async writePictures(dir: string, options: { scale?: number; signal?: AbortSignal; argument?: string } = {}): Promise<string[]> {
    const scale = v.optionalNumber('options.scale', options.scale, 4, { integer: true, min: 1, max: 32 });
    const argument = options.argument ?? 'dir';
    const signal = options.signal;
    await makeFolder(dir, argument);
    // A scan.json (and its page) of an earlier scan in this folder would describe pictures this one overwrites:
    // they go first, and scan.json comes last, so that an interrupted write leaves no scan.json that disagrees.
    for (const stale of ['scan.json', 'scan.html']) await rm(join(dir, stale), { force: true });
    const paths: string[] = [];
    for (let j = 0; j < this.classes.length; j++) {
      if (signal?.aborted) throw abortError(signal.reason);
      const c = this.classes[j];
      const map = this.maps[j];
      const mapPath = join(dir, `class-${c.class}-map.png`);
      await writeFileAtomic(mapPath, await magnified(colorize(map.data, 'viridis'), map.height, map.width, scale), { argument });
      const picture = this.pictures[j];
      const picturePath = join(dir, `class-${c.class}-picture.png`);
      await writeFileAtomic(picturePath, await magnified(withBox(picture, c.box), picture.height, picture.width, scale), { argument });
      paths.push(mapPath, picturePath);
    }
    if (signal?.aborted) throw abortError(signal.reason);
    const jsonPath = join(dir, 'scan.json');
    await writeFileAtomic(jsonPath, JSON.stringify(this.toJSON(), null, 2) + '\n', { argument });
    paths.push(jsonPath);
    return paths;
  }
}

/** The defaults of the options every scan takes (the doc's "Scan options" table is checked against them). */
export const SCAN_DEFAULTS = Object.freeze({
  size: derived("the model's, where it fixes one"),
  method: 'input-agnostic',
  classes: derived('every class'),
  channels: derived("the model's"),
  head: 'softmax',
  images: derived('none: seeded random inputs'),
  anomalyThreshold: 2,
  seed: 0,
} as const);

/** Keys every scan takes: its own options, and the run's (batchSize, signal, onProgress) passed to the method. */
const COMMON = [...Object.keys(SCAN_DEFAULTS), 'batchSize', 'signal', 'onProgress'];

/**
 * The scan's input size: options.size; else the size of options.images; else the size the model's parameters
 * fix (Model.info().inputSize: a ViT's positional embedding times its patch, an MLP's first layer) when the
 * model runs on it. Otherwise a typed error for options.size, before anything runs: a model that takes any
 * size (a fully convolutional one) leaves it to the caller, since a trigger's size is in pixels of that input.
 */
async function scanSize(model: Model, opts: Readonly<Record<string, unknown>>, channels: number): Promise<[number, number]> {
  if (opts.size !== undefined) return v.size('options.size', opts.size);
  const first = Array.isArray(opts.images) ? (opts.images[0] as Partial<Image> | undefined) : undefined;
  if (first && Number.isInteger(first.height) && Number.isInteger(first.width)) return [first.height!, first.width!];
  const hint = model.info().inputSize ?? null;
  let why = "the model's parameters fix none (no positional embedding, no linear first layer)";
  if (hint) {
    const [height, width] = hint;
    try {
      await model.predict({ data: new Float32Array(channels * height * width), channels, height, width }, { top: 0 });
      return [height, width];
    } catch (e) {
      if (!(e instanceof TorchSaliencyError) || (e.code !== 'ERR_MODEL_RUN' && e.code !== 'ERR_INPUT_SHAPE')) throw e;
      why = `the size its parameters suggest, ${height} x ${width}, does not run (${e.message})`;
    }
  }
  throw invalidType('options.size', `the model's input size, a positive integer or a [height, width] pair (${why})`, undefined);
}

/** Scans every class (or `options.classes`) of a classifier for a backdoor trigger. */
export function scanBackdoor(model: Model, options: { method: 'neural-cleanse' } & NeuralCleanseScanOptions): Promise<BackdoorScan<NeuralCleanseClassScan>>;
export function scanBackdoor(model: Model, options: { method?: 'input-agnostic' } & InputAgnosticScanOptions): Promise<BackdoorScan<InputAgnosticClassScan>>;
export function scanBackdoor(model: Model, options: ScanBackdoorOptions): Promise<BackdoorScan>;
export async function scanBackdoor(model: Model, options: ScanBackdoorOptions): Promise<BackdoorScan> {
  const start = performance.now();
  const opts = v.plainObject('options', options);
  const d = SCAN_DEFAULTS;
  const method = v.oneOf<ScanMethod>('options.method', opts.method, ['input-agnostic', 'neural-cleanse'], d.method);
  const info = model.info();
  const channels = v.optionalNumber('options.channels', opts.channels, info.inputChannels > 0 ? info.inputChannels : 3, { integer: true, min: 1, max: 64 });
  const [height, width] = await scanSize(model, opts, channels);
  const head = v.oneOf<Head>('options.head', opts.head, ['softmax', 'sigmoid'], d.head);
  const anomaly = v.optionalNumber('options.anomalyThreshold', opts.anomalyThreshold, d.anomalyThreshold, { min: 0 });
  const seed = v.optionalNumber('options.seed', opts.seed, d.seed, { integer: true, min: 0, max: Number.MAX_SAFE_INTEGER });
  let images: Image[] | undefined;
  if (opts.images !== undefined) {
    if (!Array.isArray(opts.images) || opts.images.length === 0) throw invalidType('options.images', 'a non-empty array of images', opts.images);
    images = opts.images.map((im: unknown, i) => {
      const name = `options.images[${i}]`;
      const o = v.plainObject(name, im) as Partial<Image>;
      if (
        !(o.data instanceof Float32Array) ||
        o.channels !== channels ||
        o.height !== height ||
        o.width !== width ||
        o.data.length !== channels * height * width
      ) {
        throw invalidType(name, `an image of ${channels} x ${height} x ${width} (Float32Array data)`, im);
      }
      return o as Image;
    });
  }

  // The number of classes, from one forward of a grey image.
  const grey = { data: new Float32Array(channels * height * width).fill(0.5), channels, height, width };
  const classCount = (await model.predict(grey, { top: 0 })).logits.length;
  let classes: number[];
  if (opts.classes === undefined) classes = Array.from({ length: classCount }, (_, i) => i);
  else {
    if (!Array.isArray(opts.classes) || opts.classes.length === 0) throw invalidType('options.classes', 'a non-empty array of class indices', opts.classes);
    classes = opts.classes.map((c, i) => v.number(`options.classes[${i}]`, c, { integer: true, min: 0 }));
    for (const [i, c] of classes.entries()) {
      if (c >= classCount) throw outOfRange(`options.classes[${i}]`, `a class index below ${classCount}`, c);
      // A class twice would be compared with itself by the outlier test, and its pictures written twice.
      if (classes.indexOf(c) < i) throw invalidValue(`options.classes[${i}]`, 'a class not given before (each class once)', c);
    }
  }
  if (classes.length < 3) throw outOfRange('options.classes', 'at least 3 classes (the outlier test compares them)', classes.length);

  const context: ScanContext = { height, width, channels, classes, head, images, anomaly, seed, options: opts };
  const run = method === 'neural-cleanse' ? scanNeuralCleanse : scanInputAgnostic;
  const result = await run(model, context, COMMON);
  return new BackdoorScan<ClassScan>({ ...result, method, timings: { totalMs: performance.now() - start, methodMs: result.methodMs } });
}
