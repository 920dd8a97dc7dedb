/**
 * What one request (or queued job) may ask for, and how long and how much the service waits. Every limit
 * has an operator-set value (ServiceOptions.limits, or the `serve`/`worker` flags named here) and a
 * default; docs/service.md lists them.
 */
import * as v from '../validate.js';

export interface Limits {
  /** Largest request body in bytes: a declared Content-Length over it is refused up front, a longer body while read (413). */
  maxBodyBytes: number;
  /** Most pixels an image may declare, checked from its header before decoding (413). Default 4 MP, or 25 MP when images are resized (`size`). */
  maxPixels: number;
  /** Images in one request (multipart or JSON). */
  maxImages: number;
  /** Caps on the options that scale the work (400 ERR_OUT_OF_RANGE past them). */
  maxIter: number;
  maxNumMasks: number;
  maxSamples: number;
  maxIterations: number;
  maxAreas: number;
  /** Targets per image, 'top-k' counting k. */
  maxTargets: number;
  /** Images waiting for the model; more are refused with 429 and Retry-After. */
  maxQueue: number;
  /** Deadline of a request from its arrival: past it the work is cancelled and the answer is 504. */
  timeoutMs: number;
  /** A client that has not sent its headers (the whole request) by then gets 408 and is disconnected. */
  headersTimeoutMs: number;
  requestTimeoutMs: number;
  /** Open connections at most; more are closed as they arrive. */
  maxConnections: number;
  /** On SIGTERM (close()): how long work in flight may finish before it is cancelled. */
  graceMs: number;
  /** Idle time after which the CPU block cache is given back to the system (0: never). */
  releaseCacheAfterMs: number;
}

/** Each limit's command-line flag, for messages that tell an operator how to raise it. */
export const LIMIT_FLAGS: Readonly<Record<keyof Limits, string>> = {
  maxBodyBytes: '--max-body-bytes',
  maxPixels: '--max-pixels',
  maxImages: '--max-images',
  maxIter: '--cap-max-iter',
  maxNumMasks: '--cap-num-masks',
  maxSamples: '--cap-samples',
  maxIterations: '--cap-iterations',
  maxAreas: '--cap-areas',
  maxTargets: '--cap-targets',
  maxQueue: '--max-queue',
  timeoutMs: '--timeout-ms',
  headersTimeoutMs: '--headers-timeout-ms',
  requestTimeoutMs: '--request-timeout-ms',
  maxConnections: '--max-connections',
  graceMs: '--grace-ms',
  releaseCacheAfterMs: '--release-cache-after-ms',
};

export function defaultLimits(resizing: boolean): Limits {
  return {
    maxBodyBytes: 32 * 1024 * 1024,
    maxPixels: resizing ? 25_000_000 : 4_194_304,
    maxImages: 16,
    maxIter: 1000,
    maxNumMasks: 8000,
    maxSamples: 64,
    maxIterations: 1000,
    maxAreas: 8,
    maxTargets: 10,
    maxQueue: 64,
    timeoutMs: 60_000,
    headersTimeoutMs: 10_000,
    requestTimeoutMs: 30_000,
    maxConnections: 256,
    graceMs: 10_000,
    releaseCacheAfterMs: 5_000,
  };
}

/** The defaults with the operator's values checked and laid over them. */
export function normalizeLimits(given: unknown, resizing: boolean): Readonly<Limits> {
  const opts = v.plainObject('options.limits', given);
  const limits = defaultLimits(resizing);
  v.knownKeys('options.limits', opts, Object.keys(limits));
  for (const key of Object.keys(limits) as (keyof Limits)[]) {
    const min = key === 'releaseCacheAfterMs' || key === 'graceMs' || key === 'maxQueue' ? 0 : 1;
    limits[key] = v.optionalNumber(`options.limits.${key}`, opts[key], limits[key], { integer: true, min });
  }
  return Object.freeze(limits);
}
