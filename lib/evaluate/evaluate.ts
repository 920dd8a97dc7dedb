/**
 * evaluate(): which map to trust, on the user's own model and annotated images. For each method it explains
 * every (image, class) pair once, in batches of images, and scores those maps: the pointing game (TorchRay's
 * protocol: 15 px, mean of per-class hit rates, all and difficult pairs, the centre baseline beside it),
 * deletion and insertion curves with their areas (Petsiuk et al., 2018), and the model-parameter
 * randomisation test (Adebayo et al., 2018) on a few of the images. Time is kept per method and score.
 */
import { abortError, invalidType, invalidValue } from '../errors.js';
import type { Image } from '../image.js';
import { argmax2d } from '../map.js';
import type { Model } from '../model.js';
import type { MethodName } from '../methods/index.js';
import { REQUIRED, derived } from '../methods/types.js';
import * as v from '../validate.js';
import type { Box } from './annotations.js';
import { checkFidelityOptions, fidelityCurve, type FidelityOptions } from './fidelity.js';
import { jobMaps, type JobMap } from './job-maps.js';
import { meanCurve, type CurveScore } from './mean-curve.js';
import { POINTING_GAME_DEFAULTS, PointingGame, pointHits, type PointingGameSummary } from './pointing-game.js';
import { SANITY_DEFAULTS, checkSanityLayers, sanityCheck, sizeGroups, type SanityOptions, type SanityResult } from './sanity.js';

export type { CurveScore };

export type ScoreName = 'pointing-game' | 'deletion' | 'insertion' | 'sanity';
export const SCORE_NAMES: readonly ScoreName[] = ['pointing-game', 'deletion', 'insertion', 'sanity'];

/** An image with the objects annotated on it, boxes in the image's pixels ([x0, y0, x1, y1], ends exclusive). */
export interface EvaluationImage {
  name: string;
  image: Image;
  objects: readonly { classIndex: number; boxes: readonly Box[]; difficult?: boolean }[];
}

/** A method and its options, as model.explain takes them; `name` labels it in the results (default: method). */
export interface MethodSpec {
  method: MethodName;
  name?: string;
  [option: string]: unknown;
}

export interface EvaluateProgress {
  method: string;
  score: ScoreName | 'explain';
  done: number;
  total: number;
}

export interface EvaluateOptions {
  methods: readonly (MethodName | MethodSpec)[];
  /** Which scores (default all four). */
  scores?: readonly ScoreName[];
  /** Pointing-game tolerance in pixels (default 15). */
  tolerance?: number;
  /** Deletion and insertion curves: steps, baselines, batch size (see fidelity). */
  fidelity?: FidelityOptions;
  /** The randomisation test: order, seed, layers, points; `images`: on the first this many images (default 4). */
  sanity?: SanityOptions & { images?: number };
  /** Images per explain call (default 8). */
  batchSize?: number;
  signal?: AbortSignal;
  onProgress?: (p: EvaluateProgress) => void;
  /**
   * Called once per method with its maps, one per pair in the order of Evaluation.pairList (several maps of a
   * pair summed), before they are scored: e.g. to save pictures of some of them. Not counted in the timings.
   */
  onMaps?: (method: string, maps: readonly JobMap[]) => void | Promise<void>;
}

export interface PointingGameScore {
  /** All (image, class) pairs. */
  all: PointingGameSummary;
  /** Pairs whose class covers less than 1/4 of the image in an image with another class (Zhang et al.). */
  difficult: PointingGameSummary;
  /** Hit or miss per pair, in the order of Evaluation.pairList. */
  hits: boolean[];
}

export interface MethodEvaluation {
  name: string;
  method: MethodName;
  options: Readonly<Record<string, unknown>>;
  pointingGame?: PointingGameScore;
  deletion?: CurveScore;
  insertion?: CurveScore;
  sanity?: SanityResult;
}

export interface EvaluationTiming {
  method: string;
  score: ScoreName | 'explain';
  ms: number;
}

export interface Evaluation {
  images: number;
  /** (image, class) pairs scored per method. */
  pairs: number;
  /** The pairs: image name, class index, whether difficult (image order, then the order classes first appear). */
  pairList: { image: string; target: number; difficult: boolean }[];
  tolerance: number;
  /** The centre baseline: the image's centre as the "maximum" of every map. */
  baseline: { pointingGame: PointingGameScore };
  methods: MethodEvaluation[];
  timings: EvaluationTiming[];
}

interface Pair {
  image: number;
  target: number;
  boxes: Box[];
  difficult: boolean;
}

function pairsOf(items: readonly EvaluationImage[]): Pair[] {
  const pairs: Pair[] = [];
  items.forEach((item, image) => {
    const classes = [...new Set(item.objects.map((o) => o.classIndex))];
    const area = item.image.height * item.image.width;
    for (const target of classes) {
      const objects = item.objects.filter((o) => o.classIndex === target);
      const boxes = objects.flatMap((o) => o.boxes);
      const covered = boxes.reduce((s, [x0, y0, x1, y1]) => s + (x1 - x0) * (y1 - y0), 0);
      pairs.push({ image, target, boxes, difficult: covered < area / 4 && classes.length > 1 });
    }
  });
  return pairs;
}

function checkItems(items: unknown): readonly EvaluationImage[] {
  if (!Array.isArray(items) || items.length === 0) throw invalidType('images', 'a non-empty array of { name, image, objects }', items);
  items.forEach((it, i) => {
    if (!it || typeof it !== 'object' || !it.image || typeof it.image !== 'object' || !Array.isArray(it.objects))
      throw invalidType(`images[${i}]`, '{ name, image, objects }', it);
    if (typeof it.name !== 'string') throw invalidType(`images[${i}].name`, 'a string', it.name);
    it.objects.forEach((o: { classIndex?: unknown; boxes?: unknown }, k: number) => {
      const name = `images[${i}].objects[${k}]`;
      if (!o || typeof o !== 'object') throw invalidType(name, '{ classIndex, boxes }', o);
      v.number(`${name}.classIndex`, o.classIndex, { integer: true, min: 0 });
      if (!Array.isArray(o.boxes) || o.boxes.length === 0) throw invalidType(`${name}.boxes`, 'a non-empty array of [x0, y0, x1, y1]', o.boxes);
      // A box of NaN, or with its ends swapped, scored a silent miss and counted no area before.
      o.boxes.forEach((b: unknown, j: number) => {
        const ok = Array.isArray(b) && b.length === 4 && b.every((x) => typeof x === 'number' && Number.isFinite(x)) && b[2] > b[0] && b[3] > b[1];
        if (!ok) throw invalidValue(`${name}.boxes[${j}]`, 'a box [x0, y0, x1, y1] of finite numbers with x1 > x0 and y1 > y0', b);
      });
    });
  });
  return items;
}

function specOf(m: unknown, i: number): MethodSpec {
  if (typeof m === 'string') return { method: m as MethodName };
  if (m && typeof m === 'object' && typeof (m as MethodSpec).method === 'string') return m as MethodSpec;
  throw invalidType(`options.methods[${i}]`, 'a method name or { method, ...options }', m);
}

/** evaluate()'s own defaults (docs/evaluation.md's options table is checked against them). */
export const EVALUATE_DEFAULTS = Object.freeze({
  methods: REQUIRED,
  scores: derived('every score'),
  tolerance: POINTING_GAME_DEFAULTS.tolerance,
  batchSize: 8,
  fidelity: derived('the defaults below'),
  sanity: derived('the defaults below'),
} as const);

/** evaluate()'s options checked and with their defaults, before any work. */
interface CheckedOptions {
  specs: MethodSpec[];
  scores: readonly ScoreName[];
  tolerance: number;
  batchSize: number;
  sanityImages: number;
  sanityOptions: SanityOptions;
  fidelity: FidelityOptions | undefined;
  signal: AbortSignal | undefined;
  progress: EvaluateOptions['onProgress'];
  onMaps: EvaluateOptions['onMaps'];
}

/**
 * Checks evaluate()'s own options (not the methods' options, which explain checks) and throws the typed error
 * naming the first one that is wrong: for a caller that wants to know before reading its images.
 */
export function checkEvaluateOptions(options: EvaluateOptions): CheckedOptions {
  const opts = v.plainObject('options', options);
  v.knownKeys('options', opts, [...Object.keys(EVALUATE_DEFAULTS), 'signal', 'onProgress', 'onMaps']);
  if (!Array.isArray(opts.methods) || opts.methods.length === 0) throw invalidType('options.methods', 'a non-empty array of methods', opts.methods);
  const specs = (opts.methods as unknown[]).map(specOf);
  // Results, timings and pictures are keyed by the name: two methods of one name would merge silently.
  specs.forEach((spec, i) => {
    const name = spec.name ?? spec.method;
    if (typeof name !== 'string' || name === '') throw invalidType(`options.methods[${i}].name`, 'a non-empty string', name);
    if (specs.slice(0, i).some((other) => (other.name ?? other.method) === name))
      throw invalidValue(`options.methods[${i}]`, `a name no other method has (give each its own name: { method, name })`, name);
  });
  if (opts.scores !== undefined && !Array.isArray(opts.scores)) throw invalidType('options.scores', `an array of ${SCORE_NAMES.join(', ')}`, opts.scores);
  const scores =
    opts.scores === undefined ? SCORE_NAMES : (opts.scores as unknown[]).map((s, i) => v.oneOf(`options.scores[${i}]`, s, SCORE_NAMES, 'pointing-game'));
  if (scores.length === 0) throw invalidValue('options.scores', `some of ${SCORE_NAMES.join(', ')}`, opts.scores);
  const tolerance = v.optionalNumber('options.tolerance', opts.tolerance, EVALUATE_DEFAULTS.tolerance, { min: 0 });
  const batchSize = v.optionalNumber('options.batchSize', opts.batchSize, EVALUATE_DEFAULTS.batchSize, { integer: true, min: 1 });
  const { images: sanityCount, ...sanityOptions } = v.plainObject('options.sanity', opts.sanity ?? {}) as SanityOptions & { images?: number };
  v.knownKeys('options.sanity', sanityOptions, ['order', 'seed', 'layers', 'points']);
  checkSanityLayers('options.sanity.layers', sanityOptions.layers);
  const sanityImages = v.optionalNumber('options.sanity.images', sanityCount, SANITY_DEFAULTS.images, { integer: true, min: 1 });
  const fidelity = opts.fidelity === undefined ? undefined : (v.plainObject('options.fidelity', opts.fidelity) as FidelityOptions);
  checkFidelityOptions(fidelity);
  const signal = opts.signal as AbortSignal | undefined;
  if (signal !== undefined && !(signal instanceof AbortSignal)) throw invalidType('options.signal', 'an AbortSignal', signal);
  const progress = opts.onProgress as EvaluateOptions['onProgress'];
  if (progress !== undefined && typeof progress !== 'function') throw invalidType('options.onProgress', 'a function', progress);
  const onMaps = opts.onMaps as EvaluateOptions['onMaps'];
  if (onMaps !== undefined && typeof onMaps !== 'function') throw invalidType('options.onMaps', 'a function', onMaps);
  return { specs, scores, tolerance, batchSize, sanityImages, sanityOptions, fidelity, signal, progress, onMaps };
}

/** Scores each method's maps on the annotated images (see the file's comment and docs/evaluation.md). */
export async function evaluate(model: Model, images: readonly EvaluationImage[], options: EvaluateOptions): Promise<Evaluation> {
  const items = checkItems(images);
  const { specs, scores, tolerance, batchSize, sanityImages, sanityOptions, fidelity, signal, progress, onMaps } = checkEvaluateOptions(options);
  const checkAbort = () => {
    if (signal?.aborted) throw abortError(signal.reason);
  };
  const classes = (await model.predict(items[0].image, { top: 0 })).logits.length;
  for (const [i, it] of items.entries()) {
    for (const [k, o] of it.objects.entries()) v.number(`images[${i}].objects[${k}].classIndex`, o.classIndex, { integer: true, min: 0, max: classes - 1 });
  }

  const pairs = pairsOf(items);
  // Batches of at most batchSize images of one size (images of different sizes cannot share an explain call).
  const batches = sizeGroups(
    items.map((_, i) => i),
    items.map((it) => it.image),
  ).flatMap((group) => Array.from({ length: Math.ceil(group.length / batchSize) }, (_, k) => group.slice(k * batchSize, (k + 1) * batchSize)));
  const timings: EvaluationTiming[] = [];
  const timed = async <T>(method: string, score: EvaluationTiming['score'], work: () => Promise<T> | T): Promise<T> => {
    const start = performance.now();
    try {
      return await work();
    } finally {
      const ms = performance.now() - start;
      const t = timings.find((x) => x.method === method && x.score === score);
      if (t) t.ms += ms;
      else timings.push({ method, score, ms });
    }
  };
  // Each image's pairs, by index into pairs (searching all pairs per image or per map grew with their square).
  const pairsByImage: number[][] = items.map(() => []);
  pairs.forEach((p, n) => pairsByImage[p.image].push(n));
  const playPointingGame = (point: (p: Pair, n: number) => [number, number]): PointingGameScore => {
    const all = new PointingGame(classes, { tolerance });
    const difficult = new PointingGame(classes, { tolerance });
    const hits = pairs.map((p, n) => {
      const { height, width } = items[p.image].image;
      const hit = pointHits(point(p, n), { boxes: p.boxes }, height, width, tolerance);
      all.record(p.target, hit);
      if (p.difficult) difficult.record(p.target, hit);
      return hit;
    });
    return { all: all.summary(), difficult: difficult.summary(), hits };
  };
  const baseline = { pointingGame: playPointingGame((p) => [Math.floor(items[p.image].image.height / 2), Math.floor(items[p.image].image.width / 2)]) };

  const results: MethodEvaluation[] = [];
  for (const spec of specs) {
    const { name: label, ...explainOptions } = spec;
    const name = label ?? spec.method;
    // Maps for every pair: one explain call per batch of images, each image with all its classes.
    const maps: JobMap[] = new Array(pairs.length);
    let normalized: Readonly<Record<string, unknown>> = {};
    await timed(name, 'explain', async () => {
      let done = 0;
      for (const batch of batches) {
        checkAbort();
        const targets = batch.map((i) => pairsByImage[i].map((n) => pairs[n].target));
        const r = await model.explain(
          batch.map((i) => items[i].image),
          { ...explainOptions, target: targets, signal } as never,
        );
        normalized = r.options as Readonly<Record<string, unknown>>;
        for (const m of jobMaps(r.maps)) {
          const image = batch[m.image];
          const at = pairsByImage[image].find((n) => pairs[n].target === m.target)!;
          maps[at] = { ...m, image };
        }
        done += batch.length;
        progress?.({ method: name, score: 'explain', done, total: items.length });
      }
    });
    await onMaps?.(name, maps);
    const { signal: _s, target: _t, ...shownOptions } = normalized as Record<string, unknown>;
    const result: MethodEvaluation = { name, method: spec.method, options: shownOptions };
    if (scores.includes('pointing-game')) {
      result.pointingGame = await timed(name, 'pointing-game', () => playPointingGame((_, n) => argmax2d(maps[n])));
    }
    for (const kind of ['deletion', 'insertion'] as const) {
      if (!scores.includes(kind)) continue;
      result[kind] = await timed(name, kind, async () => {
        const curves = [];
        for (const [n, p] of pairs.entries()) {
          checkAbort();
          curves.push(await fidelityCurve(model, items[p.image].image, maps[n], p.target, kind, fidelity));
          progress?.({ method: name, score: kind, done: n + 1, total: pairs.length });
        }
        return meanCurve(curves);
      });
    }
    if (scores.includes('sanity')) {
      const use = pairs.map((p, n) => ({ p, n })).filter(({ p }) => p.image < sanityImages);
      result.sanity = await timed(name, 'sanity', () =>
        sanityCheck(
          model,
          items.slice(0, sanityImages).map((it) => it.image),
          use.map(({ p }) => ({ image: p.image, target: p.target })),
          use.map(({ n }) => maps[n]),
          explainOptions,
          { ...sanityOptions, signal, onStep: (done, total) => progress?.({ method: name, score: 'sanity', done, total }) },
        ),
      );
    }
    results.push(result);
  }
  const pairList = pairs.map((p) => ({ image: items[p.image].name, target: p.target, difficult: p.difficult }));
  return { images: items.length, pairs: pairs.length, pairList, tolerance, baseline, methods: results, timings };
}
