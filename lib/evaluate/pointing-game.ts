/**
 * The pointing game (Zhang et al., 2016; TorchRay's benchmark protocol): a map "hits" when its maximum lies
 * within `tolerance` pixels of an object of the target class. Accuracy is the mean over classes of each
 * class's hit rate, so that frequent classes do not dominate.
 */
import { argmax2d, type MapData } from '../map.js';
import { invalidType, outOfRange } from '../errors.js';
import * as v from '../validate.js';

/** The pointing game's default (docs/evaluation.md's options table is checked against it). */
export const POINTING_GAME_DEFAULTS = Object.freeze({ tolerance: 15 } as const);

/** An object's region: boxes [x0, y0, x1, y1] (x1, y1 exclusive) or a binary mask at the map's size. */
export type ObjectRegion = { boxes: ReadonlyArray<readonly [number, number, number, number]> } | { mask: Uint8Array | readonly number[] };

export interface PointingGameOptions {
  /** The maximum counts as on the object when closer than this many pixels to it (default 15, as published). */
  tolerance?: number;
}

export interface ClassScore {
  hits: number;
  misses: number;
  /** hits / (hits + misses), NaN when the class was never asked */
  rate: number;
}

export interface PointingGameSummary {
  /** Mean of per-class hit rates over the classes that were asked. */
  accuracy: number;
  /** Hits over all trials, regardless of class. */
  overall: number;
  trials: number;
  perClass: ClassScore[];
}

/**
 * Is (y, x) on the region or closer than `tolerance` (Euclidean, in pixels) to it? Closer, strictly, as
 * TorchRay's benchmark tests it (d^2 < tolerance^2); a point on the region hits whatever the tolerance.
 */
export function pointHits(point: readonly [number, number], region: ObjectRegion, height: number, width: number, tolerance: number): boolean {
  const [py, px] = point;
  const t2 = tolerance * tolerance;
  if ('boxes' in region) {
    return region.boxes.some(([x0, y0, x1, y1]) => {
      // Distance from the point to the box's pixels [x0, x1 - 1] x [y0, y1 - 1].
      const dx = px < x0 ? x0 - px : px > x1 - 1 ? px - (x1 - 1) : 0;
      const dy = py < y0 ? y0 - py : py > y1 - 1 ? py - (y1 - 1) : 0;
      return dx * dx + dy * dy < t2 || (dx === 0 && dy === 0);
    });
  }
  const mask = region.mask;
  if (mask.length !== height * width) throw outOfRange('region.mask', `a mask of ${height * width} values (the map's size)`, mask.length);
  const r = Math.ceil(tolerance);
  for (let y = Math.max(0, py - r); y <= Math.min(height - 1, py + r); y++) {
    for (let x = Math.max(0, px - r); x <= Math.min(width - 1, px + r); x++) {
      if (mask[y * width + x] && ((y - py) ** 2 + (x - px) ** 2 < t2 || (y === py && x === px))) return true;
    }
  }
  return false;
}

export class PointingGame {
  readonly numClasses: number;
  readonly tolerance: number;
  readonly #hits: number[];
  readonly #misses: number[];

  constructor(numClasses: number, options: PointingGameOptions = {}) {
    this.numClasses = v.number('numClasses', numClasses, { integer: true, min: 1 });
    this.tolerance = v.optionalNumber('options.tolerance', options.tolerance, POINTING_GAME_DEFAULTS.tolerance, { min: 0 });
    this.#hits = new Array(this.numClasses).fill(0);
    this.#misses = new Array(this.numClasses).fill(0);
  }

  /** Scores one map for one class present in the image; returns whether it hit. */
  evaluate(map: MapData, target: number, region: ObjectRegion): boolean {
    v.number('target', target, { integer: true, min: 0, max: this.numClasses - 1 });
    if (!region || typeof region !== 'object' || !('boxes' in region || 'mask' in region)) throw invalidType('region', '{ boxes } or { mask }', region);
    const hit = pointHits(argmax2d(map), region, map.height, map.width, this.tolerance);
    this.record(target, hit);
    return hit;
  }

  /** Records a hit or a miss for a class, decided elsewhere. */
  record(target: number, hit: boolean): void {
    v.number('target', target, { integer: true, min: 0, max: this.numClasses - 1 });
    if (hit) this.#hits[target]++;
    else this.#misses[target]++;
  }

  summary(): PointingGameSummary {
    const perClass = this.#hits.map((h, c) => {
      const m = this.#misses[c];
      return { hits: h, misses: m, rate: h + m > 0 ? h / (h + m) : NaN };
    });
    const asked = perClass.filter((c) => c.hits + c.misses > 0);
    const hits = asked.reduce((s, c) => s + c.hits, 0);
    const trials = asked.reduce((s, c) => s + c.hits + c.misses, 0);
    return {
      accuracy: asked.length ? asked.reduce((s, c) => s + c.rate, 0) / asked.length : NaN,
      overall: trials ? hits / trials : NaN,
      trials,
      perClass,
    };
  }
}
