/**
 * One batcher for everything that serves many callers from one model: the HTTP service, the queue worker
 * and library users with concurrent single-image calls. Each job is one image. Jobs of one kind
 * (predict or explain) with equal options and image size that wait together are merged into one native
 * call (up to `maxBatch` images); the batch's result is split back per job, so each caller gets what a
 * call of its own would have given. An idle batcher starts a lone job at once; jobs that arrive while a
 * call runs wait for the next one.
 *
 * A caller that decodes an image before submitting it may say so (`incoming`): a call about to start then
 * waits, at most HOLD_MAX_MS, while more jobs are still being decoded than wait, and for a moment after a
 * call has ended when few jobs wait, since the callers it answered tend to come straight back. Without
 * this, N clients in a loop split into two groups that alternate for good, at whatever sizes chance gave
 * (measured through the HTTP service on EfficientNet-Lite0: 1+15, 2+14, 3+13, 12+4 images per call), and
 * the small group's call costs several times more per image than the large one's. With it they settle into
 * two equal groups, one decoding while the other runs (waiting for all of them instead left the cores to
 * the model alone, then to the decoding alone: slower on a small model). The cores are not idle while it
 * waits: the images it waits for are being decoded on them.
 *
 * Every job may carry an AbortSignal. A job aborted while waiting leaves the queue at once; a job aborted
 * while its batch runs is answered at once, and when every job of a batch has gone the native call
 * itself is cancelled (the signal reaches the native loop), so abandoned work never holds the cores.
 * The queue is bounded (`maxQueue` images): past it `submit` throws ERR_QUEUE_FULL with a retry hint.
 */
import { TorchSaliencyError, abortError } from '../errors.js';
import { Explanation, SaliencyMap, type TargetInfo } from '../explanation.js';
import type { Image } from '../image.js';
import type { Model, Prediction } from '../model.js';
import type { ExplainOptions } from '../methods/index.js';
import type { TargetSpec } from '../methods/common.js';
import { isCallerFault, queueFull } from '../service/errors.js';
import * as v from '../validate.js';

export interface BatcherOptions {
  /** Most images in one native call (default 16). */
  maxBatch?: number;
  /** Native calls of each kind running at once (default 1: one call already uses every core). */
  concurrency?: number;
  /** Most images waiting (not yet running); more are refused with ERR_QUEUE_FULL (default: no bound). */
  maxQueue?: number;
  /** Told about every native call: for metrics. */
  onCall?: (call: BatchCall) => void;
}

/** One native call the batcher made. */
export interface BatchCall {
  kind: 'predict' | 'explain';
  method: string;
  /** Jobs (images) merged into the call. */
  jobs: number;
  ms: number;
  outcome: 'ok' | 'error' | 'aborted';
}

export interface BatchedResult<T> {
  result: T;
  /** How many jobs shared the native call. */
  batch: number;
  /** Time spent waiting for a call, and in the call. */
  waitMs: number;
  runMs: number;
}

/** Longest a call waits for jobs still being decoded (see `incoming`), and for callers coming back after a call. */
const HOLD_MAX_MS = 50;
const COMEBACK_MS = 20;

export interface JobOptions {
  signal?: AbortSignal;
}

/** Explain options for one image: as Model.explain's, with one target spec (or a list of them) for the image. */
export type ExplainJobOptions = Omit<ExplainOptions, 'target'> & { target?: TargetSpec | readonly TargetSpec[] };

interface Pending {
  kind: 'predict' | 'explain';
  key: string;
  image: Image;
  target?: TargetSpec | readonly TargetSpec[];
  top: number;
  options: Record<string, unknown>;
  signal?: AbortSignal;
  onProgress?: ExplainOptions['onProgress'];
  enqueued: number;
  settled: boolean;
  resolve: (r: BatchedResult<unknown>) => void;
  reject: (e: unknown) => void;
  detach: () => void;
}

/** JSON with sorted object keys: equal options give equal text whatever order they were written in. */
function stableJSON(value: unknown): string {
  return JSON.stringify(value, (_, val: unknown) =>
    val && typeof val === 'object' && !Array.isArray(val) && !ArrayBuffer.isView(val)
      ? Object.fromEntries(Object.entries(val as Record<string, unknown>).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)))
      : val,
  );
}

export class ModelBatcher {
  readonly model: Model;
  readonly maxBatch: number;
  readonly concurrency: number;
  readonly maxQueue: number;
  readonly #onCall?: (call: BatchCall) => void;
  #queue: Pending[] = [];
  #running = { predict: 0, explain: 0 };
  #scheduled = false;
  /** Jobs announced by `incoming` and not yet submitted, by kind. */
  #incoming = { predict: 0, explain: 0 };
  /** The last finished call of each kind: its jobs and when it ended. */
  #last = { predict: { jobs: 0, ended: -Infinity }, explain: { jobs: 0, ended: -Infinity } };
  /** Since when a call of each kind has been held back (undefined: not held). */
  #holdSince: { predict?: number; explain?: number } = {};
  #holdTimer?: NodeJS.Timeout;
  #calls = 0;
  #merged = 0;
  /** Moving average of a call's duration, for the retry hint. */
  #avgCallMs = 0;

  constructor(model: Model, options: BatcherOptions = {}) {
    const opts = v.plainObject('options', options);
    v.knownKeys('options', opts, ['maxBatch', 'concurrency', 'maxQueue', 'onCall']);
    this.model = model;
    this.maxBatch = v.optionalNumber('options.maxBatch', opts.maxBatch, 16, { integer: true, min: 1, max: 4096 });
    this.concurrency = v.optionalNumber('options.concurrency', opts.concurrency, 1, { integer: true, min: 1, max: 64 });
    this.maxQueue = opts.maxQueue === undefined ? Infinity : v.number('options.maxQueue', opts.maxQueue, { integer: true, min: 0 });
    this.#onCall = options.onCall;
  }

  /** Jobs waiting for a call. */
  get queued(): number {
    return this.#queue.length;
  }

  /** Native calls in flight. */
  get running(): number {
    return this.#running.predict + this.#running.explain;
  }

  /** Whether a new job would be refused now. */
  get full(): boolean {
    return this.#queue.length >= this.maxQueue;
  }

  /** Calls made, and jobs that shared a call with an earlier job (a call of n jobs adds n - 1). */
  stats(): { calls: number; merged: number; queued: number; running: number } {
    return { calls: this.#calls, merged: this.#merged, queued: this.queued, running: this.running };
  }

  /** Seconds after which a refused caller may try again: the time the queue ahead takes, roughly. */
  retryAfterSeconds(): number {
    const batches = Math.ceil((this.#queue.length + 1) / this.maxBatch);
    const seconds = Math.ceil((batches * (this.#avgCallMs || 1000)) / this.concurrency / 1000);
    return Math.min(60, Math.max(1, seconds));
  }

  /** Class scores for one image (`top` classes listed, default 5). */
  async predict(image: Image, options: { top?: number } & JobOptions = {}): Promise<BatchedResult<Prediction>> {
    const top = v.optionalNumber('options.top', options.top, 5, { integer: true, min: 0 });
    return this.#submit(
      { kind: 'predict', key: stableJSON(['predict', image.channels, image.height, image.width]), image, top, options: {} },
      options.signal,
    ) as Promise<BatchedResult<Prediction>>;
  }

  /** Saliency maps for one image, as `model.explain(image, options)` would give them. */
  async explain(image: Image, options: ExplainJobOptions): Promise<BatchedResult<Explanation>> {
    const { target, signal, onProgress, ...rest } = v.plainObject('options', options) as ExplainJobOptions & {
      onProgress?: ExplainOptions['onProgress'];
      signal?: AbortSignal;
    };
    if (typeof rest.method !== 'string')
      throw new TorchSaliencyError('ERR_INVALID_ARG_TYPE', `Expected a method name for options.method but received ${typeof rest.method}`, {
        argument: 'options.method',
      });
    // Options that are equal as JSON merge; anything that is not plain data (a function, say) keeps its job alone.
    const plain = Object.values(rest).every((x) => x === null || ['string', 'number', 'boolean', 'undefined'].includes(typeof x) || Array.isArray(x));
    const key = plain ? stableJSON(['explain', image.channels, image.height, image.width, rest]) : `explain-alone-${Math.random()}`;
    return this.#submit({ kind: 'explain', key, image, target, top: 0, options: rest, onProgress }, signal) as Promise<BatchedResult<Explanation>>;
  }

  /**
   * Says that a job of `kind` is on its way (its image is being decoded), so that a call about to start
   * waits for it (at most HOLD_MAX_MS). Returns the function to call once the job has been submitted, or
   * given up; call it just before submitting (in the same turn of the event loop).
   */
  incoming(kind: 'predict' | 'explain'): () => void {
    this.#incoming[kind]++;
    let done = false;
    return () => {
      if (done) return;
      done = true;
      this.#incoming[kind]--;
      if (this.#queue.length > 0) this.#schedule();
    };
  }

  /** Refuses every job still waiting (running calls go on); for shutdown. */
  rejectQueued(error: unknown): void {
    const queue = this.#queue;
    this.#queue = [];
    for (const job of queue) this.#settle(job, () => job.reject(error));
  }

  #submit(init: Omit<Pending, 'signal' | 'enqueued' | 'settled' | 'resolve' | 'reject' | 'detach'>, signal?: AbortSignal): Promise<BatchedResult<unknown>> {
    if (signal !== undefined && !(signal instanceof AbortSignal))
      return Promise.reject(new TorchSaliencyError('ERR_INVALID_ARG_TYPE', 'Expected an AbortSignal for options.signal', { argument: 'options.signal' }));
    if (signal?.aborted) return Promise.reject(abortError(signal.reason));
    if (this.full) return Promise.reject(queueFull(this.#queue.length, this.retryAfterSeconds()));
    return new Promise((resolve, reject) => {
      const job: Pending = { ...init, signal, enqueued: performance.now(), settled: false, resolve, reject, detach: () => {} };
      if (signal) {
        const onAbort = () => {
          // Waiting: it leaves the queue. Running: it is answered now; its call is cancelled once no job wants it.
          this.#queue = this.#queue.filter((j) => j !== job);
          this.#settle(job, () => reject(abortError(signal.reason)));
        };
        signal.addEventListener('abort', onAbort, { once: true });
        job.detach = () => signal.removeEventListener('abort', onAbort);
      }
      const idle = this.#running[job.kind] < this.concurrency && !this.#queue.some((j) => j.kind === job.kind) && !this.#scheduled;
      this.#queue.push(job);
      // An idle batcher starts at once (no extra turn of the event loop for a lone job); jobs that come
      // while a call runs wait and go together in the next one.
      if (idle) this.#flush();
      else this.#schedule();
    });
  }

  #settle(job: Pending, answer: () => void): void {
    if (job.settled) return;
    job.settled = true;
    job.detach();
    answer();
  }

  #schedule(): void {
    if (this.#scheduled) return;
    this.#scheduled = true;
    // Jobs made in the same turn of the event loop join this call.
    setImmediate(() => {
      this.#scheduled = false;
      this.#flush();
    });
  }

  #flush(): void {
    for (const kind of ['explain', 'predict'] as const) {
      while (this.#running[kind] < this.concurrency) {
        const first = this.#queue.find((j) => j.kind === kind);
        if (!first) {
          this.#holdSince[kind] = undefined;
          break;
        }
        const group: Pending[] = [];
        const rest: Pending[] = [];
        for (const job of this.#queue) {
          if (job.key === first.key && group.length < this.maxBatch) group.push(job);
          else rest.push(job);
        }
        if (this.#hold(kind, group.length)) break;
        this.#holdSince[kind] = undefined;
        this.#queue = rest;
        this.#launch(kind, group);
      }
    }
  }

  /**
   * Whether a call of `kind` with `jobs` images should wait for more: while more jobs announced by `incoming`
   * are still being decoded than wait (so that a burst splits into two calls of about equal size: one runs
   * while the other's images are decoded, and neither is a lone image), or for COMEBACK_MS after a call of
   * many jobs ended when few wait now; never past HOLD_MAX_MS, never with a full group. Arms a timer for the
   * next look.
   */
  #hold(kind: 'predict' | 'explain', jobs: number): boolean {
    if (jobs >= this.maxBatch) return false;
    const now = performance.now();
    const since = (this.#holdSince[kind] ??= now);
    const left = since + HOLD_MAX_MS - now;
    if (left <= 0) return false;
    const last = this.#last[kind];
    const comeback = last.ended + COMEBACK_MS - now;
    const waitFor = this.#incoming[kind] > jobs ? left : comeback > 0 && jobs < last.jobs / 2 ? Math.min(left, comeback) : 0;
    if (waitFor <= 0) return false;
    clearTimeout(this.#holdTimer);
    this.#holdTimer = setTimeout(() => this.#flush(), Math.ceil(waitFor));
    return true;
  }

  #launch(kind: 'predict' | 'explain', group: Pending[]): void {
    this.#running[kind]++;
    this.#calls++;
    this.#merged += group.length - 1;
    const start = performance.now();
    const method = kind === 'explain' ? String(group[0].options.method) : 'predict';
    const run = kind === 'predict' ? this.#runPredict(group, start) : this.#runExplain(group, start);
    run.then(
      (outcome) => this.#done(kind, method, group.length, start, outcome),
      () => this.#done(kind, method, group.length, start, 'error'),
    );
  }

  #done(kind: 'predict' | 'explain', method: string, jobs: number, start: number, outcome: BatchCall['outcome']): void {
    const ms = performance.now() - start;
    this.#last[kind] = { jobs, ended: performance.now() };
    if (outcome === 'ok') this.#avgCallMs = this.#avgCallMs ? 0.8 * this.#avgCallMs + 0.2 * ms : ms;
    this.#running[kind]--;
    try {
      this.#onCall?.({ kind, method, jobs, ms, outcome });
    } catch {
      // An observer's failure must not stop the batcher.
    }
    if (this.#queue.length > 0) this.#schedule();
  }

  #answer<T>(job: Pending, result: T, batch: number, start: number): void {
    const now = performance.now();
    this.#settle(job, () => job.resolve({ result, batch, waitMs: start - job.enqueued, runMs: now - start }));
  }

  async #runPredict(group: Pending[], start: number): Promise<BatchCall['outcome']> {
    const top = Math.max(...group.map((j) => j.top));
    try {
      const predictions = await this.model.predict(
        group.map((j) => j.image),
        { top },
      );
      group.forEach((job, i) => this.#answer(job, { ...predictions[i], top: predictions[i].top.slice(0, job.top) }, group.length, start));
      return 'ok';
    } catch (e) {
      group.forEach((job) => this.#settle(job, () => job.reject(e)));
      return 'error';
    }
  }

  async #runExplain(group: Pending[], start: number): Promise<BatchCall['outcome']> {
    const live = new Set(group.filter((j) => !j.settled));
    const controller = new AbortController();
    const leave = (job: Pending) => {
      live.delete(job);
      if (live.size === 0) controller.abort(job.signal?.reason);
    };
    for (const job of group) job.signal?.addEventListener('abort', () => leave(job), { once: true });
    if (live.size === 0) return 'aborted';
    const progress = group.some((j) => j.onProgress)
      ? (p: Parameters<NonNullable<ExplainOptions['onProgress']>>[0]) => {
          for (const job of live) job.onProgress?.(p);
        }
      : undefined;
    const options = {
      ...group[0].options,
      target: group.map((j) => (j.target ?? 'top-1') as TargetSpec | readonly TargetSpec[]),
      signal: controller.signal,
      onProgress: progress,
    };
    let explanation: Explanation;
    try {
      explanation = await this.model.explain(
        group.map((j) => j.image),
        options as unknown as ExplainOptions,
      );
    } catch (e) {
      if (controller.signal.aborted) return 'aborted';
      const code = (e as { code?: string }).code;
      // A merged call that one job's own input broke (a target the model lacks, say): each job gets its own answer.
      if (group.length > 1 && isCallerFault(code) && String((e as { argument?: string }).argument ?? '').startsWith('options.target')) {
        await Promise.all(group.filter((j) => !j.settled).map((job) => this.#runExplain([job], performance.now())));
        return 'error';
      }
      group.forEach((job) => this.#settle(job, () => job.reject(group.length === 1 ? ownTarget(e) : e)));
      return 'error';
    }
    group.forEach((job, index) => this.#answer(job, splitExplanation(explanation, index), group.length, start));
    return 'ok';
  }
}

/** A lone job's error about 'options.target[0]' (the batch's first entry) names the job's own 'options.target'. */
function ownTarget(e: unknown): unknown {
  const err = e as TorchSaliencyError;
  if (!(err instanceof TorchSaliencyError) || !err.argument?.startsWith('options.target[0]')) return e;
  const argument = err.argument.replace('options.target[0]', 'options.target');
  const out = new TorchSaliencyError(err.code, err.message.split(err.argument).join(argument), { argument, cause: err.cause });
  out.stack = err.stack;
  return out;
}

/**
 * The part of a batch's explanation that belongs to image `index`, as a call on that image alone gives it:
 * its maps and targets (renumbered to image 0), and the per-map and per-job details sliced to them.
 */
export function splitExplanation(explanation: Explanation, index: number): Explanation {
  const mapIndices = explanation.maps.flatMap((m, i) => (m.image === index ? [i] : []));
  const targetIndices = explanation.targets.flatMap((t, i) => (t.image === index ? [i] : []));
  const maps = mapIndices.map((i) => {
    const m = explanation.maps[i];
    return new SaliencyMap(m.data, m.height, m.width, { ...m.meta, image: 0 });
  });
  const targets: TargetInfo[] = targetIndices.map((i) => ({ ...explanation.targets[i], image: 0 }));
  const details: Record<string, unknown> = {};
  for (const [k, val] of Object.entries(explanation.details)) {
    const list = Array.isArray(val) || ArrayBuffer.isView(val) ? (val as ArrayLike<unknown>) : undefined;
    const slice = (indices: number[]) =>
      ArrayBuffer.isView(val) ? (val.constructor as Float32ArrayConstructor).from(indices, (i) => Number(list![i])) : indices.map((i) => list![i]);
    if (list && list.length === explanation.maps.length) details[k] = slice(mapIndices);
    else if (list && list.length === explanation.targets.length) details[k] = slice(targetIndices);
    else details[k] = val;
  }
  return new Explanation({ method: explanation.method, options: explanation.options, maps, targets, details, timings: { ...explanation.timings } });
}

/** A batcher over `model`: see ModelBatcher. */
export function createBatcher(model: Model, options: BatcherOptions = {}): ModelBatcher {
  return new ModelBatcher(model, options);
}
