/**
 * Options every method shares: which maps to make (target), how to batch (batchSize), how to report
 * (onProgress, progressEvery), how to stop (signal), and the post-processing of maps (resize, smooth).
 */
import { TorchSaliencyError, invalidType } from '../errors.js';
import type { NativeProgress } from '../native.js';
import * as v from '../validate.js';
import { derived, type MethodContext, type OptionDefault } from './types.js';

/** A class index, a label, 'top-1', or 'top-k' (the k best classes). */
export type TargetSpec = number | string;

export interface ProgressEvent extends NativeProgress {
  /** iteration / total */
  fraction: number;
}

/** What a caller may give every method, besides `method` and the method's own options. */
export interface CommonOptions {
  /**
   * Which class to explain: one for every image, or an array (one entry per image when several images
   * are given; several targets for a single image otherwise). Default 'top-1'.
   */
  target?: TargetSpec | readonly (TargetSpec | readonly TargetSpec[])[];
  /**
   * Largest batch sent through the model at once. Default: about AUTO_BATCH_PIXELS pixels of input per batch
   * (41 images at 224 px), so that memory does not grow with the number of images; 0: everything in one
   * batch. Methods that choose otherwise say so in their table.
   */
  batchSize?: number;
  signal?: AbortSignal;
  onProgress?: (p: ProgressEvent) => void;
  /** Progress is reported every this many iterations (default 10). */
  progressEvery?: number;
  /** Output size of the maps: true (the image's, default), false (the method's own) or a size. */
  resize?: boolean | number | readonly [number, number];
  /** Gaussian smoothing of the maps, sigma = smooth * max(height, width) (default 0: none). */
  smooth?: number;
  /** For a size given instead of an image: the placeholder's channels (default: the model's, or 3). */
  channels?: number;
}

/** The most pixels a map may be resized to when that is more than the image's own. */
export const MAX_RESIZE_PIXELS = 4096 * 4096;

/**
 * Input pixels per batch through the model when batchSize is not given: a call with many images runs in
 * batches of this size, instead of one batch whose activations grow with the number of images.
 */
export const AUTO_BATCH_PIXELS = 2 ** 21;

/** Rows of height x width per batch when batchSize is not given (at least 1). */
export function autoBatchRows(height: number, width: number): number {
  return Math.max(1, Math.floor(AUTO_BATCH_PIXELS / (height * width)));
}

/** Defaults of the common options, as docs/methods/README.md shows them. */
export const COMMON_DEFAULTS = Object.freeze({
  target: 'top-1',
  batchSize: derived('auto'),
  signal: null,
  onProgress: null,
  progressEvery: 10,
  resize: true,
  smooth: 0,
  channels: derived("the model's"),
} as const) satisfies { readonly [K in keyof CommonOptions]-?: OptionDefault };

export const COMMON_OPTION_NAMES: readonly string[] = Object.freeze(['method', ...Object.keys(COMMON_DEFAULTS)]);

/** The common options as every method's native side reads them (part of `result.options`). */
export interface NormalizedCommon {
  batchSize: number;
  progressEvery: number;
  /** Output size of the maps, or null for the method's own resolution. */
  resize: [number, number] | null;
  smooth: number;
}

export interface CommonRuntime {
  signal?: AbortSignal;
  onProgress?: (p: ProgressEvent) => void;
}

/**
 * Checks the common options. `given.batchSize` is the caller's, undefined when not given: a method with a
 * default of its own for it (extremal perturbation, RISE) replaces `common.batchSize` with that.
 */
export function normalizeCommon(
  options: Readonly<Record<string, unknown>>,
  context: Pick<MethodContext, 'height' | 'width'>,
): {
  common: NormalizedCommon;
  given: { batchSize: number | undefined };
  runtime: CommonRuntime;
} {
  const given = options.batchSize === undefined ? undefined : v.number('options.batchSize', options.batchSize, { integer: true, min: 0 });
  const batchSize = given ?? autoBatchRows(context.height, context.width);
  const progressEvery = v.optionalNumber('options.progressEvery', options.progressEvery, COMMON_DEFAULTS.progressEvery, { integer: true, min: 1 });
  const smooth = v.optionalNumber('options.smooth', options.smooth, COMMON_DEFAULTS.smooth, { min: 0, max: 1 });
  let resize: [number, number] | null;
  const r = options.resize === undefined ? COMMON_DEFAULTS.resize : options.resize;
  if (r === true) resize = [context.height, context.width];
  else if (r === false) resize = null;
  else resize = v.size('options.resize', r);
  // Maps at a size far above the image's only cost memory (jobs x areas x height x width floats, and more
  // while resizing): [16384, 16384] on a 64-px image took 2 GB. Larger than the image up to MAX_RESIZE_PIXELS.
  if (resize && resize[0] * resize[1] > Math.max(MAX_RESIZE_PIXELS, context.height * context.width)) {
    throw new TorchSaliencyError(
      'ERR_OUT_OF_RANGE',
      `Expected a map size of at most ${MAX_RESIZE_PIXELS} pixels (4096 x 4096) or the image's own (${context.height} x ${context.width}) for options.resize but received ${resize[0]} x ${resize[1]}`,
      { argument: 'options.resize' },
    );
  }
  const signal = options.signal;
  if (signal !== undefined && !(signal instanceof AbortSignal)) throw invalidType('options.signal', 'an AbortSignal', signal);
  const onProgress = options.onProgress;
  if (onProgress !== undefined && typeof onProgress !== 'function') throw invalidType('options.onProgress', 'a function', onProgress);
  return {
    common: { batchSize, progressEvery, resize, smooth },
    given: { batchSize: given },
    runtime: { signal: signal as AbortSignal | undefined, onProgress: onProgress as CommonRuntime['onProgress'] },
  };
}
