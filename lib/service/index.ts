/**
 * The HTTP service: `createService(model)` for one model (routes /predict and /explain), or
 * `createModelService(models)` for models by name (/v1/models/:name/...), or `createQueueFront(producer)`
 * for a front that puts the work on a BullMQ queue for workers. See docs/service.md.
 */
import type { FastifyInstance } from 'fastify';
import type { AddressInfo } from 'node:net';
import type { Server } from 'node:http';
import type { Fit } from '../image.js';
import type { Model } from '../model.js';
import * as v from '../validate.js';
import { invalidValue } from '../errors.js';
import { buildApp, cancelAll, listen, type AppContext } from './app.js';
import { LocalExecutor, type WorkExecutor } from './executor.js';
import { normalizeLimits, type Limits } from './limits.js';
import { createMetrics, type ServiceMetrics } from './metrics.js';
import { MODEL_NAME, type ServedModel } from './models.js';

export interface ServiceOptions {
  /** Size incoming images are resized to (default: their own size; requests of different sizes are never merged). */
  size?: number | [number, number];
  fit?: Fit;
  /** Most images merged into one native call (default 16). */
  maxBatch?: number;
  /** Native calls of each kind (predict, explain) running at once, per model (default 1: one call already takes every core). */
  concurrency?: number;
  /** Largest request body in bytes (same as limits.maxBodyBytes). */
  maxBodyBytes?: number;
  /** The operator's limits; see lib/service/limits.ts and docs/service.md for each and its default. */
  limits?: Partial<Limits>;
  /** Fastify's logger (pino): false (default), true, or pino options. */
  logger?: boolean | object;
  /** The model that /predict and /explain use (default: the only one, when there is one). */
  defaultModel?: string;
}

export interface ServiceStats {
  requests: number;
  predictRequests: number;
  explainRequests: number;
  errors: number;
  /** Native calls made, and jobs that shared a call with an earlier one. */
  calls: number;
  merged: number;
  queued: number;
  running: number;
}

export class SaliencyService {
  readonly app: FastifyInstance;
  readonly limits: Readonly<Limits>;
  readonly metrics: ServiceMetrics;
  readonly #ctx: AppContext;
  readonly #executor: WorkExecutor;
  #closing?: Promise<void>;
  #idleTimer?: NodeJS.Timeout;

  /** @internal use createService, createModelService or createQueueFront */
  constructor(executor: (limits: Limits, metrics: ServiceMetrics) => WorkExecutor, options: ServiceOptions, resizing: boolean, defaultModel?: string) {
    const opts = v.plainObject('options', options);
    v.knownKeys('options', opts, ['size', 'fit', 'maxBatch', 'concurrency', 'maxBodyBytes', 'limits', 'logger', 'defaultModel']);
    const limits = normalizeLimits(
      { ...(opts.maxBodyBytes !== undefined ? { maxBodyBytes: opts.maxBodyBytes } : {}), ...v.plainObject('options.limits', opts.limits) },
      resizing,
    );
    this.limits = limits;
    let exec: WorkExecutor | undefined;
    this.metrics = createMetrics({ queued: () => exec?.queued() ?? {}, running: () => exec?.running() ?? {} });
    exec = executor(limits, this.metrics);
    this.#executor = exec;
    this.#ctx = {
      limits,
      executor: exec,
      metrics: this.metrics,
      defaultModel: (opts.defaultModel as string | undefined) ?? defaultModel,
      inflight: new Set(),
      closing: () => this.#closing !== undefined,
      settled: () => this.#settled(),
      stats: { requests: 0, predictRequests: 0, explainRequests: 0, errors: 0 },
    };
    this.app = buildApp(this.#ctx, (opts.logger as boolean | object | undefined) ?? false);
  }

  get server(): Server {
    return this.app.server;
  }

  /** Starts listening (default on loopback, a free port); resolves to the address. */
  listen(port = 0, host = '127.0.0.1'): Promise<AddressInfo> {
    return listen(this.app, port, host);
  }

  /**
   * Stops accepting, lets work in flight finish for `limits.graceMs`, then cancels what is left (its
   * requests get 503 ERR_SHUTTING_DOWN) and resolves when every connection has closed.
   */
  close(): Promise<void> {
    this.#closing ??= (async () => {
      clearTimeout(this.#idleTimer);
      const grace = setTimeout(() => cancelAll(this.#ctx), this.limits.graceMs);
      try {
        await this.app.close();
      } finally {
        clearTimeout(grace);
        await this.#executor.close();
      }
    })();
    return this.#closing;
  }

  stats(): ServiceStats {
    const sum = (r: Record<string, number>) => Object.values(r).reduce((a, b) => a + b, 0);
    const batch = (this.#executor as { stats?: () => { calls: number; merged: number } }).stats?.() ?? { calls: 0, merged: 0 };
    return { ...this.#ctx.stats, ...batch, queued: sum(this.#executor.queued()), running: sum(this.#executor.running()) };
  }

  #settled(): void {
    const wait = this.limits.releaseCacheAfterMs;
    if (wait === 0 || this.#closing) return;
    clearTimeout(this.#idleTimer);
    this.#idleTimer = setTimeout(() => {
      const idle = this.#ctx.inflight.size === 0 && this.stats().queued === 0 && this.stats().running === 0;
      const release = (this.#executor as { releaseCache?: () => number }).releaseCache;
      if (idle && release) this.metrics.cacheReleased.inc(release.call(this.#executor));
    }, wait);
    this.#idleTimer.unref();
  }
}

function localExecutor(models: readonly ServedModel[], options: ServiceOptions) {
  const maxBatch = v.optionalNumber('options.maxBatch', options.maxBatch, 16, { integer: true, min: 1, max: 4096 });
  const concurrency = v.optionalNumber('options.concurrency', options.concurrency, 1, { integer: true, min: 1, max: 64 });
  return (limits: Limits, metrics: ServiceMetrics) =>
    new LocalExecutor(models, limits, { maxBatch, concurrency }, (name, call) => metrics.observeCall(name, call));
}

/** An HTTP service over one model (named `default`): POST /predict, POST /explain. Call listen() to start it. */
export function createService(model: Model, options: ServiceOptions = {}): SaliencyService {
  const opts = v.plainObject('options', options) as ServiceOptions;
  const size = opts.size === undefined ? undefined : v.size('options.size', opts.size);
  const fit = v.oneOf<Fit>('options.fit', opts.fit, ['cover', 'contain', 'fill'], 'cover');
  const served: ServedModel = { name: 'default', model, size, fit };
  return new SaliencyService(localExecutor([served], opts), opts, size !== undefined, 'default');
}

/** An HTTP service over several models by name: POST /v1/models/:name/{predict,explain}, GET /v1/models. */
export function createModelService(models: readonly ServedModel[], options: ServiceOptions = {}): SaliencyService {
  const opts = v.plainObject('options', options) as ServiceOptions;
  models.forEach((m, i) => {
    if (!MODEL_NAME.test(m.name)) throw invalidValue(`models[${i}].name`, 'a name of letters, digits, ., _ and - (at most 128)', m.name);
  });
  const resizing = models.length > 0 && models.every((m) => m.size !== undefined);
  return new SaliencyService(localExecutor(models, opts), opts, resizing, models.length === 1 ? models[0].name : undefined);
}

/** An HTTP front whose work goes to `executor` (a queue producer: see lib/queue/producer.ts). */
export function createFront(executor: WorkExecutor, options: ServiceOptions & { resizing?: boolean } = {}): SaliencyService {
  const { resizing, ...rest } = options;
  return new SaliencyService(() => executor, rest, resizing ?? false);
}

export { loadModelFolder, type ServedModel, type ModelFolderOptions } from './models.js';
export type { Limits } from './limits.js';
export type { WorkExecutor, ModelSummary } from './executor.js';
export { isCallerFault, httpStatus } from './errors.js';
