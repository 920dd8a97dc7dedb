/**
 * A queue worker: consumes predict and explain jobs from a BullMQ queue with the models of its folder.
 * It takes up to `maxBatch` jobs at once and hands them to one batcher per model, so queued jobs with
 * equal options share one native call, as in the HTTP service.
 *
 * Faults: a job whose data is bad (a caller's fault) fails at once with a typed error and is not retried;
 * other failures are retried with back-off (the producer sets the attempts). A job whose worker dies is
 * found by BullMQ's stalled-job check (its lock expires) and run again by another worker; the processor
 * is idempotent (the result file is keyed by job id and written atomically), so a job re-run after a
 * stall completes once. A Redis restart is ridden out by reconnecting. A job past its deadline, or
 * cancelled by its producer, has its native work cancelled through the AbortSignal.
 */
import { UnrecoverableError, Worker, type Job } from 'bullmq';
import { Redis } from 'ioredis';
import { hostname } from 'node:os';
import { join } from 'node:path';
import { TorchSaliencyError } from '../errors.js';
import { ModelBatcher } from '../batching/batcher.js';
import { deadlineExceeded, isCallerFault, shuttingDown } from '../service/errors.js';
import { normalizeLimits, type Limits } from '../service/limits.js';
import { findModel, type ServedModel } from '../service/models.js';
import { perform } from '../service/work.js';
import * as v from '../validate.js';
import { DEFAULT_QUEUE, failureReason, jobChecker, type JobData } from './job.js';
import { queueKeys } from './producer.js';
import { redisConnection } from './redis.js';
import { writeFileAtomic } from '../safe-write.js';

export interface WorkerOptions {
  redis: string;
  queue?: string;
  /** Jobs taken at once, and the most merged into one native call (default 16). */
  maxBatch?: number;
  /** Where each job's answer is also written, as `<job id>.json` (default: only the job's return value). */
  results?: string;
  /** The caps and pixel limit jobs are checked against (as the HTTP service's). */
  limits?: Partial<Limits>;
  /** BullMQ's lock (a dead worker's job is taken back after it) and stalled-check period, in ms (defaults 30000 and 15000). */
  lockDurationMs?: number;
  stalledIntervalMs?: number;
  /** On close(): how long running jobs may finish (default 10000 ms); after it they are left to the stalled check. */
  graceMs?: number;
  /** Called on each finished or failed job (logs). */
  onEvent?: (event: { job: string; state: 'completed' | 'failed'; reason?: string; ms: number }) => void;
}

export class QueueWorker {
  readonly worker: Worker<JobData>;
  readonly id: string;
  readonly limits: Readonly<Limits>;
  readonly #served: Map<string, ServedModel>;
  readonly #batchers = new Map<string, ModelBatcher>();
  readonly #results?: string;
  readonly #check: (data: unknown) => JobData;
  readonly #redis: Redis;
  readonly #subscriber: Redis;
  readonly #keys: ReturnType<typeof queueKeys>;
  readonly #graceMs: number;
  readonly #onEvent?: WorkerOptions['onEvent'];
  #heartbeat?: NodeJS.Timeout;
  #registered: Promise<void>;
  #closing?: Promise<void>;
  /** Whether Redis was ever reached. */
  #reached = false;
  completed = 0;
  failed = 0;

  constructor(models: readonly ServedModel[], options: WorkerOptions) {
    const opts = v.plainObject('options', options);
    v.knownKeys('options', opts, ['redis', 'queue', 'maxBatch', 'results', 'limits', 'lockDurationMs', 'stalledIntervalMs', 'graceMs', 'onEvent']);
    const connection = redisConnection(v.string('options.redis', opts.redis));
    const name = opts.queue === undefined ? DEFAULT_QUEUE : v.string('options.queue', opts.queue);
    const maxBatch = v.optionalNumber('options.maxBatch', opts.maxBatch, 16, { integer: true, min: 1, max: 4096 });
    const lockDuration = v.optionalNumber('options.lockDurationMs', opts.lockDurationMs, 30_000, { integer: true, min: 100 });
    const stalledInterval = v.optionalNumber('options.stalledIntervalMs', opts.stalledIntervalMs, 15_000, { integer: true, min: 100 });
    this.#graceMs = v.optionalNumber('options.graceMs', opts.graceMs, 10_000, { integer: true, min: 0 });
    this.#results = opts.results === undefined ? undefined : v.string('options.results', opts.results);
    this.#onEvent = options.onEvent;
    this.limits = normalizeLimits(
      opts.limits,
      models.every((m) => m.size !== undefined),
    );
    this.#check = jobChecker(this.limits);
    this.#served = new Map(models.map((m) => [m.name, m]));
    for (const m of models) this.#batchers.set(m.name, new ModelBatcher(m.model, { maxBatch, concurrency: 1 }));
    this.id = `${hostname()}-${process.pid}-${Math.random().toString(36).slice(2, 8)}`;
    this.#keys = queueKeys('bull', name);
    this.#redis = new Redis(connection);
    this.#subscriber = new Redis(connection);
    this.#redis.on('error', () => {});
    this.#redis.once('ready', () => (this.#reached = true));
    this.#subscriber.on('error', () => {});
    // A producer whose caller left asks the worker running the job to stop it.
    this.#subscriber.subscribe(this.#keys.cancel).catch(() => {});
    this.#subscriber.on('message', (_channel, jobId: string) => this.worker.cancelJob(jobId, 'cancelled by its producer'));
    this.worker = new Worker<JobData>(name, (job, _token, signal) => this.#process(job, signal), {
      connection,
      name: this.id,
      concurrency: maxBatch,
      lockDuration,
      stalledInterval,
      maxStalledCount: 1,
      autorun: true,
    });
    this.worker.on('error', () => {});
    this.#registered = this.#register();
    this.#heartbeat = setInterval(() => void this.#register(), 10_000);
    this.#heartbeat.unref();
  }

  /** Resolves once the worker listens for jobs and has listed its models in Redis. */
  async ready(): Promise<void> {
    await Promise.all([this.worker.waitUntilReady(), this.#registered]);
  }

  #register(): Promise<void> {
    const models = [...this.#served.values()].map((s) => ({ name: s.name, device: s.model.device, labels: s.model.labels?.length, size: s.size }));
    return this.#redis.set(`${this.#keys.workers}${this.id}`, JSON.stringify({ models, pid: process.pid }), 'EX', 30).then(
      () => {},
      () => {},
    );
  }

  async #process(job: Job<JobData>, bullSignal?: AbortSignal): Promise<Record<string, unknown>> {
    const start = performance.now();
    const controller = new AbortController();
    const onBull = () => controller.abort(new TorchSaliencyError('ABORT_ERR', String(bullSignal?.reason ?? 'The job was cancelled')));
    bullSignal?.addEventListener('abort', onBull, { once: true });
    let deadline: NodeJS.Timeout | undefined;
    try {
      let data: JobData;
      try {
        data = this.#check(job.data);
      } catch (e) {
        throw new UnrecoverableError(failureReason(e));
      }
      if (data.deadline !== undefined) {
        const left = data.deadline - Date.now();
        if (left <= 0) throw new UnrecoverableError(failureReason(deadlineExceeded(0)));
        deadline = setTimeout(() => controller.abort(deadlineExceeded(left)), left);
      }
      const served = findModel(this.#served, data.model);
      let lastProgress = 0;
      const answer = await perform(
        { served, batcher: this.#batchers.get(served.name)! },
        data.kind,
        Buffer.from(data.image, 'base64'),
        data.options,
        this.limits,
        {
          signal: controller.signal,
          onProgress: (p) => {
            // Progress goes through Redis: a few updates a second at most.
            const now = performance.now();
            if (now - lastProgress < 250) return;
            lastProgress = now;
            job.updateProgress({ iteration: p.iteration, total: p.total, fraction: p.fraction }).catch(() => {});
          },
        },
      );
      const result = { ...answer, job: job.id, model: data.model, kind: data.kind };
      if (this.#results) await this.#writeResult(job.id!, result);
      this.completed++;
      this.#onEvent?.({ job: job.id!, state: 'completed', ms: performance.now() - start });
      return result;
    } catch (e) {
      this.failed++;
      const reason = controller.signal.aborted ? controller.signal.reason : e;
      const text = e instanceof UnrecoverableError ? e.message : failureReason(reason);
      this.#onEvent?.({ job: job.id!, state: 'failed', reason: text, ms: performance.now() - start });
      const code = (reason as { code?: string }).code;
      // The same job would fail the same way again: no retry. Other failures are retried with back-off.
      if (e instanceof UnrecoverableError || isCallerFault(code) || code === 'ERR_DEADLINE' || code === 'ABORT_ERR') throw new UnrecoverableError(text);
      throw new Error(text);
    } finally {
      clearTimeout(deadline);
      bullSignal?.removeEventListener('abort', onBull);
    }
  }

  /** Written to a temporary name then renamed: a reader never sees half a file, and a re-run replaces it whole. */
  async #writeResult(jobId: string, result: Record<string, unknown>): Promise<void> {
    const safe = jobId.replace(/[^A-Za-z0-9._-]/g, '_');
    await writeFileAtomic(join(this.#results!, `${safe}.json`), JSON.stringify(result), { argument: 'results' });
  }

  /**
   * Stops taking jobs; running ones may finish for `graceMs`, after which their native work is cancelled
   * and they are left to BullMQ's stalled check (another worker runs them again).
   */
  close(): Promise<void> {
    this.#closing ??= (async () => {
      clearInterval(this.#heartbeat);
      // BullMQ's Worker.close() first disconnects its blocking connection, and that awaits the connection's
      // start-up, which never comes when Redis was never reached: close() then waited without end (and a
      // second close(true) only returns the first one's promise). Ending its connections by force ends those
      // waits; with Redis never reached no job can be running, so there is nothing to wait for.
      const force = () => this.worker.getBackend().close(true);
      if (!this.#reached) await force().catch(() => {});
      // Commands wait through a reconnect without end (redis.ts): this one only while connected.
      if (this.#redis.status === 'ready') await this.#redis.del(`${this.#keys.workers}${this.id}`).catch(() => {});
      const grace = new Promise<'late'>((resolve) => setTimeout(() => resolve('late'), this.#graceMs).unref());
      const closed = this.worker.close();
      if ((await Promise.race([closed, grace])) === 'late') {
        for (const b of this.#batchers.values()) b.rejectQueued(shuttingDown());
        await force().catch(() => {});
        await closed.catch(() => {});
      }
      this.#subscriber.disconnect();
      this.#redis.disconnect();
    })();
    return this.#closing;
  }
}

export function createWorker(models: readonly ServedModel[], options: WorkerOptions): QueueWorker {
  return new QueueWorker(models, options);
}
