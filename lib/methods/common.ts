/**
 * Options every method shares: which maps to make (target), how to batch (batchSize), how to report
 * (onProgress, progressEvery), how to stop (signal), and the post-processing of maps (resize, smooth).
 */
import { invalidType } from '../errors.js';
import type { Baton, NativeProgress } from '../native.js';
import * as v from '../validate.js';
import type { MethodContext } from './types.js';

export const COMMON_OPTION_NAMES = ['method', 'target', 'batchSize', 'signal', 'onProgress', 'progressEvery', 'resize', 'smooth'] as const;

export interface ProgressEvent extends NativeProgress {
  /** iteration / total */
  fraction: number;
}

export interface CommonOptions {
  /** Largest batch sent through the model at once (0: everything in one batch). */
  batchSize: number;
  progressEvery: number;
  /** Output size of the maps, or null for the method's own resolution. */
  resize: [number, number] | null;
  /** Gaussian smoothing of the maps, sigma = smooth * max(height, width); 0 = none. */
  smooth: number;
}

export interface CommonRuntime {
  signal?: AbortSignal;
  onProgress?: (p: ProgressEvent) => void;
}

export function normalizeCommon(
  options: Record<string, unknown>,
  context: MethodContext,
  defaults: { resize?: boolean; batchSize?: number } = {},
): {
  common: CommonOptions;
  runtime: CommonRuntime;
  baton: Baton;
} {
  const batchSize = v.optionalNumber('options.batchSize', options.batchSize, defaults.batchSize ?? 0, { integer: true, min: 0 });
  const progressEvery = v.optionalNumber('options.progressEvery', options.progressEvery, 10, { integer: true, min: 1 });
  const smooth = v.optionalNumber('options.smooth', options.smooth, 0, { min: 0, max: 1 });
  let resize: [number, number] | null;
  const r = options.resize === undefined ? (defaults.resize ?? true) : options.resize;
  if (r === true) resize = [context.height, context.width];
  else if (r === false) resize = null;
  else resize = v.size('options.resize', r);
  const signal = options.signal;
  if (signal !== undefined && !(signal instanceof AbortSignal)) throw invalidType('options.signal', 'an AbortSignal', signal);
  const onProgress = options.onProgress;
  if (onProgress !== undefined && typeof onProgress !== 'function') throw invalidType('options.onProgress', 'a function', onProgress);
  const baton: Baton = { batchSize, progressEvery, smooth, resizeHeight: resize ? resize[0] : 0, resizeWidth: resize ? resize[1] : 0 };
  return {
    common: { batchSize, progressEvery, resize, smooth },
    runtime: { signal: signal as AbortSignal | undefined, onProgress: onProgress as CommonRuntime['onProgress'] },
    baton,
  };
}
