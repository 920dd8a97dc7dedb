/**
 * The contract between the public `explain` call and each method's file: a method normalises its own
 * options into a frozen object and a baton for the native side, and turns the native result into maps.
 */
import type { Baton, NativeTensor } from '../native.js';
import type { Image } from '../image.js';
import { SaliencyMap } from '../explanation.js';

/** One (image, target) pair of a call. */
export interface Job {
  image: number;
  target: number;
}

export interface MethodContext {
  images: readonly Image[];
  height: number;
  width: number;
  channels: number;
  labels?: readonly string[];
}

export interface NormalizedMethod<O extends object = object> {
  /** Options as the method will use them, defaults filled in (frozen; part of the result). */
  options: Readonly<O>;
  /** What the native method reads (numbers, strings, number arrays). */
  baton: Baton;
}

export interface RawResult {
  maps: NativeTensor;
  extras: Record<string, NativeTensor>;
}

export interface FinishContext<O extends object = object> extends MethodContext {
  jobs: readonly Job[];
  options: Readonly<O>;
}

export interface MethodSpec<O extends object = object> {
  readonly name: string;
  /** One line for --help and errors. */
  readonly summary: string;
  /** Option names beyond the common ones (target, batchSize, signal, onProgress, resize, smooth). */
  readonly optionNames: readonly string[];
  normalize(options: Record<string, unknown>, context: MethodContext): NormalizedMethod<O>;
  /** Maps and method-specific details from the native result. Default: one map per job. */
  finish?(raw: RawResult, context: FinishContext<O>): { maps: SaliencyMap[]; details?: Record<string, unknown> };
}

/** The default finish: the native maps tensor holds one H x W map per job. */
export function mapsPerJob(raw: RawResult, context: FinishContext, extra?: (job: number) => Record<string, unknown>): SaliencyMap[] {
  const [count, height, width] = raw.maps.shape.length === 3 ? raw.maps.shape : [raw.maps.shape[0], raw.maps.shape[1], 1];
  const plane = height * width;
  const maps: SaliencyMap[] = [];
  for (let j = 0; j < count; j++) {
    const job = context.jobs[j];
    maps.push(
      new SaliencyMap(raw.maps.data.slice(j * plane, (j + 1) * plane) as Float32Array, height, width, {
        image: job.image,
        target: job.target,
        label: context.labels?.[job.target],
        ...(extra ? extra(j) : {}),
      }),
    );
  }
  return maps;
}
