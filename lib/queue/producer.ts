/**
 * The producer side of the queue: puts predict and explain jobs on a BullMQ queue in Redis and awaits
 * their results. It is also the HTTP front's executor in `serve --redis` (work goes to the workers), so it
 * bounds the queue (ERR_QUEUE_FULL past `maxQueue` waiting jobs) and cancels a job whose caller left: a
 * waiting job is removed, a running one is cancelled through the workers' cancel channel.
 */
import { Queue, QueueEvents, type Job } from 'bullmq';
import { Redis } from 'ioredis';
import { TorchSaliencyError, abortError } from '../errors.js';
import type { ModelSummary, WorkExecutor } from '../service/executor.js';
import { queueFull } from '../service/errors.js';
import type { WorkKind } from '../service/work.js';
import * as v from '../validate.js';
import { DEFAULT_QUEUE, fromFailureReason, type JobData } from './job.js';
import { redisConnection } from './redis.js';

export interface ProducerOptions {
  /** redis://host:port[/db] */
  redis: string;
  /** Queue name (default 'torch-saliency'); workers must use the same. */
  queue?: string;
  /** Tries per job (default 3) and the first retry's delay, doubled each time (default 1000 ms). Callers' faults are never retried. */
  attempts?: number;
  backoffMs?: number;
  /** Waiting jobs at most; more are refused with ERR_QUEUE_FULL (default: no bound). */
  maxQueue?: number;
  /** Seconds a finished job (and its result) stays in Redis (default 3600). */
  keepSeconds?: number;
  /**
   * How long a call waits for Redis when it is not connected (not reached yet, or reconnecting) before it
   * fails with ERR_REDIS_UNAVAILABLE (default 10000 ms): a restart is ridden out, a Redis that is down is said.
   */
  redisWaitMs?: number;
}

export interface EnqueueOptions {
  /** Milliseconds from now after which the work is no longer wanted. */
  deadlineMs?: number;
  /** Your own job id (idempotent submission: a second add with the same id is ignored). */
  jobId?: string;
}

export interface ResultOptions {
  signal?: AbortSignal;
  /** Give up waiting after this many milliseconds (the job is cancelled). */
  timeoutMs?: number;
  onProgress?: (progress: unknown) => void;
}

/** Key names shared with the workers. */
export function queueKeys(prefix: string, queue: string) {
  return { workers: `${prefix}:${queue}:ts-workers:`, cancel: `${prefix}:${queue}:ts-cancel` };
}

/** How long ready() waits for Redis to answer. */
const READY_TIMEOUT_MS = 2000;

export class QueueProducer implements WorkExecutor {
  readonly queue: Queue<JobData>;
  readonly events: QueueEvents;
  readonly #redis: Redis;
  readonly #keys: ReturnType<typeof queueKeys>;
  readonly #attempts: number;
  readonly #backoffMs: number;
  readonly #maxQueue: number;
  readonly #keepSeconds: number;
  readonly #redisWaitMs: number;
  readonly #where: string;
  #connecting?: Promise<void>;
  #waiting = 0;

  constructor(options: ProducerOptions) {
    const opts = v.plainObject('options', options);
    v.knownKeys('options', opts, ['redis', 'queue', 'attempts', 'backoffMs', 'maxQueue', 'keepSeconds', 'redisWaitMs']);
    const connection = redisConnection(v.string('options.redis', opts.redis));
    const name = opts.queue === undefined ? DEFAULT_QUEUE : v.string('options.queue', opts.queue);
    this.#attempts = v.optionalNumber('options.attempts', opts.attempts, 3, { integer: true, min: 1, max: 100 });
    this.#backoffMs = v.optionalNumber('options.backoffMs', opts.backoffMs, 1000, { integer: true, min: 0 });
    this.#maxQueue = opts.maxQueue === undefined ? Infinity : v.number('options.maxQueue', opts.maxQueue, { integer: true, min: 0 });
    this.#keepSeconds = v.optionalNumber('options.keepSeconds', opts.keepSeconds, 3600, { integer: true, min: 1 });
    this.#redisWaitMs = v.optionalNumber('options.redisWaitMs', opts.redisWaitMs, 10_000, { integer: true, min: 0 });
    this.#where = `${connection.host}:${connection.port}`;
    this.queue = new Queue<JobData>(name, { connection });
    // QueueEvents.close() first disconnects, and its disconnect awaits the connection's start-up (the 'ready'
    // event, then INFO for a version check): with Redis never reached that never came, so a producer, and
    // `serve --redis` on SIGTERM, hung on close. Started without waiting for 'ready', its disconnect ends a
    // client still trying to connect. (The Queue's own connection checks the Redis version.)
    this.events = new QueueEvents(name, { connection, skipWaitingForReady: true, skipVersionCheck: true });
    this.#redis = new Redis(connection);
    this.#keys = queueKeys('bull', name);
    // An 'error' event without a listener would throw; a lost connection is retried (see redis.ts).
    for (const emitter of [this.queue, this.events, this.#redis] as { on(e: string, f: () => void): unknown }[]) emitter.on('error', () => {});
    // Every awaited result listens on these until its job ends: many at once is normal here.
    this.queue.setMaxListeners(0);
    this.events.setMaxListeners(0);
  }

  /** Puts one image on the queue for prediction; resolves to the job id. */
  enqueuePredict(model: string, image: Buffer, options: { top?: number } = {}, enqueue: EnqueueOptions = {}): Promise<string> {
    return this.#add('predict', model, image, options, enqueue);
  }

  /** Puts one image on the queue for explanation (options as in the HTTP service: method, its options, target, picture, data). */
  enqueueExplain(model: string, image: Buffer, options: Record<string, unknown> & { method: string }, enqueue: EnqueueOptions = {}): Promise<string> {
    return this.#add('explain', model, image, options, enqueue);
  }

  /**
   * Resolves at once while Redis is connected; otherwise waits for the connection up to `redisWaitMs`, then
   * rejects with ERR_REDIS_UNAVAILABLE. Commands themselves wait through a reconnect without end (redis.ts).
   */
  #reachable(): Promise<void> {
    if (this.#redis.status === 'ready') return Promise.resolve();
    // One wait shared by every call made meanwhile (one set of listeners on the client, however many calls).
    this.#connecting ??= this.#waitForRedis().finally(() => (this.#connecting = undefined));
    return this.#connecting;
  }

  async #waitForRedis(): Promise<void> {
    const redis = this.#redis;
    let last: Error | undefined;
    let timer: NodeJS.Timeout | undefined;
    let onReady = () => {};
    let onEnd = () => {};
    const onError = (e: Error) => (last = e);
    const ready = await new Promise<boolean>((resolve) => {
      onReady = () => resolve(true);
      onEnd = () => resolve(false);
      redis.once('ready', onReady);
      redis.once('end', onEnd);
      redis.on('error', onError);
      timer = setTimeout(() => resolve(false), this.#redisWaitMs);
    });
    clearTimeout(timer);
    redis.off('ready', onReady);
    redis.off('end', onEnd);
    redis.off('error', onError);
    if (!ready) {
      const why = redis.status === 'end' ? 'the producer was closed' : (last?.message ?? `not connected within ${this.#redisWaitMs} ms`);
      throw new TorchSaliencyError('ERR_REDIS_UNAVAILABLE', `Cannot reach Redis at ${this.#where}: ${why}`, { argument: 'redis' });
    }
  }

  async #add(kind: WorkKind, model: string, image: Buffer, options: Record<string, unknown>, enqueue: EnqueueOptions): Promise<string> {
    if (!Buffer.isBuffer(image)) throw new TorchSaliencyError('ERR_INVALID_ARG_TYPE', "Expected the image's bytes (a Buffer) for image", { argument: 'image' });
    await this.#reachable();
    if (Number.isFinite(this.#maxQueue)) {
      this.#waiting = await this.queue.getWaitingCount();
      if (this.#waiting >= this.#maxQueue) throw queueFull(this.#waiting, 1);
    }
    const data: JobData = { kind, model, image: image.toString('base64'), options };
    if (enqueue.deadlineMs !== undefined) data.deadline = Date.now() + v.number('enqueue.deadlineMs', enqueue.deadlineMs, { min: 0 });
    const job = await this.queue.add(kind, data, {
      jobId: enqueue.jobId,
      attempts: this.#attempts,
      backoff: { type: 'exponential', delay: this.#backoffMs },
      removeOnComplete: { age: this.#keepSeconds },
      removeOnFail: { age: this.#keepSeconds },
    });
    return job.id!;
  }

  /** The job's answer once it has finished; rejects with the job's typed error if it failed. */
  async result(jobId: string, options: ResultOptions = {}): Promise<Record<string, unknown>> {
    await this.#reachable();
    const job = await this.queue.getJob(jobId);
    if (!job)
      throw new TorchSaliencyError('ERR_JOB_NOT_FOUND', `No job ${JSON.stringify(jobId)} in the queue (finished jobs are kept ${this.#keepSeconds} s)`, {
        argument: 'jobId',
      });
    const { signal, timeoutMs, onProgress } = options;
    if (signal?.aborted) throw abortError(signal.reason);
    const onEvent = ({ jobId: id, data }: { jobId: string; data: unknown }) => {
      if (id === jobId) onProgress?.(data);
    };
    if (onProgress) this.events.on('progress', onEvent);
    let stop: (() => void) | undefined;
    const stopped = new Promise<never>((_, reject) => {
      const onAbort = () => reject(abortError(signal!.reason));
      signal?.addEventListener('abort', onAbort, { once: true });
      const timer =
        timeoutMs === undefined
          ? undefined
          : setTimeout(() => reject(new TorchSaliencyError('ERR_DEADLINE', `The job did not finish within ${timeoutMs} ms; it was cancelled`)), timeoutMs);
      stop = () => {
        signal?.removeEventListener('abort', onAbort);
        clearTimeout(timer);
      };
    });
    try {
      return (await Promise.race([job.waitUntilFinished(this.events), stopped])) as Record<string, unknown>;
    } catch (e) {
      if (e instanceof TorchSaliencyError) {
        if (e.code === 'ABORT_ERR' || e.code === 'ERR_DEADLINE') await this.cancel(jobId).catch(() => {});
        throw e;
      }
      throw fromFailureReason((e as Error).message);
    } finally {
      stop?.();
      if (onProgress) this.events.off('progress', onEvent);
    }
  }

  /** Cancels a job: removed if still waiting, stopped by its worker if running. */
  async cancel(jobId: string): Promise<void> {
    await this.#reachable();
    const job: Job<JobData> | undefined = await this.queue.getJob(jobId);
    if (!job) return;
    const state = await job.getState();
    if (state === 'waiting' || state === 'delayed' || state === 'prioritized') {
      await job.remove().catch(() => this.#redis.publish(this.#keys.cancel, jobId));
    } else if (state === 'active') await this.#redis.publish(this.#keys.cancel, jobId);
  }

  // The HTTP front's executor.

  async run(model: string, kind: WorkKind, image: Buffer, options: Record<string, unknown>, signal: AbortSignal): Promise<Record<string, unknown>> {
    const id = await this.#add(kind, model, image, options, {});
    return this.result(id, { signal });
  }

  /** The models the live workers serve (each worker lists its own). */
  async models(): Promise<ModelSummary[]> {
    await this.#reachable();
    const keys: string[] = [];
    let cursor = '0';
    do {
      const [next, found] = await this.#redis.scan(cursor, 'MATCH', `${this.#keys.workers}*`, 'COUNT', 100);
      cursor = next;
      keys.push(...found);
    } while (cursor !== '0');
    const byName = new Map<string, ModelSummary>();
    for (const text of keys.length ? await this.#redis.mget(keys) : []) {
      if (!text) continue;
      for (const m of (JSON.parse(text) as { models: ModelSummary[] }).models) byName.set(m.name, m);
    }
    return [...byName.values()].sort((a, b) => a.name.localeCompare(b.name));
  }

  /**
   * Whether Redis answers a ping within 2 s. Commands wait through a reconnect without end (see redis.ts), so
   * without the bound GET /ready never answered while Redis was down, instead of saying 503.
   */
  async ready(): Promise<boolean> {
    let timer: NodeJS.Timeout | undefined;
    const late = new Promise<false>((resolve) => (timer = setTimeout(() => resolve(false), READY_TIMEOUT_MS)));
    try {
      return await Promise.race([this.#redis.ping().then((answer) => answer === 'PONG'), late]);
    } catch {
      return false;
    } finally {
      clearTimeout(timer);
    }
  }

  queued(): Record<string, number> {
    return { queue: this.#waiting };
  }

  running(): Record<string, number> {
    return {};
  }

  rejectQueued(): void {}

  /** Ends the connections at once, whether Redis was reached or not; jobs already queued stay queued. */
  async close(): Promise<void> {
    await Promise.allSettled([this.events.close(), this.queue.close()]);
    this.#redis.disconnect();
  }
}

export function createProducer(options: ProducerOptions): QueueProducer {
  return new QueueProducer(options);
}
