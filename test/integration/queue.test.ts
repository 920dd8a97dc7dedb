// Workers on BullMQ over a real redis-server started by the test on a free loopback port: a round trip
// equal to a direct call, two worker processes sharing 40 jobs (none lost, none run twice), a worker
// SIGKILLed mid-job (another completes the job once), a Redis restart, poison payloads, the queue bound
// and the deadline.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { spawn, type ChildProcess } from 'node:child_process';
import { copyFileSync, mkdtempSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createFront, loadModelFolder, readImage, type ServedModel } from '../../lib/index.js';
import { createProducer, type QueueProducer } from '../../lib/queue/producer.js';
import { createWorker, type QueueWorker } from '../../lib/queue/worker.js';
import { FIXTURES, ROOT, maxAbsDiff, model as modelPath } from './helpers.js';
import { RedisServer, freePort, hasRedis } from './redis.js';

const shapes = join(FIXTURES, 'shapes');
const bodies = readdirSync(shapes)
  .filter((f) => f.endsWith('.png'))
  .sort()
  .map((f) => readFileSync(join(shapes, f)));
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

let redis: RedisServer;
let dir: string;
let served: ServedModel[];
let producer: QueueProducer;
let queueName = 0;

beforeAll(async () => {
  if (!hasRedis && !process.env.CI) return;
  redis = await RedisServer.start();
  dir = mkdtempSync(join(tmpdir(), 'ts-queue-'));
  copyFileSync(modelPath('shapes_traced.pt'), join(dir, 'shapes.pt'));
  copyFileSync(join(FIXTURES, 'models', 'shapes_labels.txt'), join(dir, 'shapes.labels.txt'));
  served = await loadModelFolder(join(dir), { device: 'cpu' });
});

afterAll(async () => {
  if (!hasRedis && !process.env.CI) return;
  await producer?.close();
  for (const s of served ?? []) s.model.dispose();
  await redis?.stop();
  rmSync(dir, { recursive: true, force: true });
});

/** A fresh queue per test: jobs of one test never reach another's workers. */
function freshQueue(): string {
  return `test-${process.pid}-${queueName++}`;
}

/** `torch-saliency worker` in a child process; resolves once it listens for jobs. */
async function workerProcess(queue: string, results: string, extra: string[] = []): Promise<{ child: ChildProcess; log: () => string }> {
  const child = spawn(
    process.execPath,
    [
      '--import',
      'tsx',
      join(ROOT, 'lib', 'cli', 'index.ts'),
      'worker',
      '--redis',
      redis.url,
      '--queue',
      queue,
      '--models',
      dir,
      '--device',
      'cpu',
      '--results',
      results,
      ...extra,
    ],
    { cwd: ROOT, stdio: ['ignore', 'ignore', 'pipe'], env: { ...process.env, OMP_NUM_THREADS: '1' } },
  );
  let log = '';
  child.stderr!.on('data', (d) => (log += d.toString()));
  const end = Date.now() + 60_000;
  while (!/ready/.test(log)) {
    if (child.exitCode !== null || Date.now() > end) throw new Error(`worker did not start: ${log}`);
    await sleep(100);
  }
  return { child, log: () => log };
}

function stopProcess(child: ChildProcess): Promise<number | null> {
  if (child.exitCode !== null) return Promise.resolve(child.exitCode);
  return new Promise((resolve) => {
    child.once('exit', (code) => resolve(code));
    child.kill('SIGTERM');
  });
}

// Skipped only off CI on a machine without redis-server; CI installs it (.ci/run) and must run these.
describe.skipIf(!hasRedis && !process.env.CI)('queue workers on Redis', () => {
  it('round trip: a queued explain equals a direct call, with progress through the job', async () => {
    const queue = freshQueue();
    producer = createProducer({ redis: redis.url, queue });
    const worker = createWorker(served, { redis: redis.url, queue });
    try {
      await worker.ready();
      const id = await producer.enqueueExplain('shapes', bodies[0], { method: 'gradient', data: true });
      const got = (await producer.result(id)) as { maps: { data: string; target: number }[]; job: string };
      expect(got.job).toBe(id);
      const direct = await served[0].model.explain(await readImage(bodies[0]), { method: 'gradient' });
      const buf = Buffer.from(got.maps[0].data, 'base64');
      const data = new Float32Array(buf.buffer, buf.byteOffset, buf.byteLength / 4);
      expect(got.maps[0].target).toBe(direct.maps[0].target);
      expect(maxAbsDiff(data, direct.maps[0].data)).toBeLessThanOrEqual(1e-4 * Math.max(...direct.maps[0].data.map(Math.abs)));

      const progress: unknown[] = [];
      const ep = await producer.enqueueExplain('shapes', bodies[1], { method: 'extremal-perturbation', maxIter: 60 });
      const answer = await producer.result(ep, { onProgress: (p) => progress.push(p) });
      expect((answer.maps as unknown[]).length).toBe(1);
      expect(progress.length).toBeGreaterThan(0);
      expect(progress[0]).toMatchObject({ total: 60 });

      const predicted = await producer.result(await producer.enqueuePredict('shapes', bodies[2], { top: 1 }));
      const directTop = await served[0].model.predict(await readImage(bodies[2]), { top: 1 });
      expect((predicted.top as { index: number }[])[0].index).toBe(directTop.top[0].index);
    } finally {
      await worker.close();
      await producer.close();
    }
  });

  it('serve --redis: the HTTP front puts the work on the queue and answers with the result of a worker', async () => {
    const queue = freshQueue();
    producer = createProducer({ redis: redis.url, queue, maxQueue: 64 });
    const worker = createWorker(served, { redis: redis.url, queue });
    const front = createFront(producer);
    try {
      await worker.ready();
      const models = await front.app.inject({ method: 'GET', url: '/v1/models' });
      expect(models.json()).toMatchObject({ models: [{ name: 'shapes', labels: 4 }] });
      const r = await front.app.inject({
        method: 'POST',
        url: '/v1/models/shapes/explain?method=grad-cam&layer=features.6',
        payload: bodies[5],
        headers: { 'content-type': 'image/png' },
      });
      expect(r.statusCode).toBe(200);
      const direct = await served[0].model.explain(await readImage(bodies[5]), { method: 'grad-cam', layer: 'features.6' });
      expect((r.json() as { maps: { target: number; mean: number }[] }).maps[0]).toMatchObject({ target: direct.maps[0].target });
      expect((r.json() as { maps: { mean: number }[] }).maps[0].mean).toBeCloseTo(direct.maps[0].stats().mean, 5);
      const unknown = await front.app.inject({ method: 'POST', url: '/v1/models/other/predict', payload: bodies[5], headers: { 'content-type': 'image/png' } });
      expect(unknown.statusCode).toBe(404);
      expect(unknown.json()).toMatchObject({ error: { code: 'ERR_MODEL_NOT_FOUND' } });
      expect((await front.app.inject({ method: 'GET', url: '/ready' })).statusCode).toBe(200);
    } finally {
      await front.close();
      await worker.close();
    }
  });

  it('two worker processes share 40 jobs: all complete, none twice, equal jobs merged', async () => {
    const queue = freshQueue();
    const results = mkdtempSync(join(tmpdir(), 'ts-results-'));
    producer = createProducer({ redis: redis.url, queue });
    const workers = await Promise.all([workerProcess(queue, results, ['--max-batch', '4']), workerProcess(queue, results, ['--max-batch', '4'])]);
    try {
      const ids = await Promise.all(Array.from({ length: 40 }, (_, i) => producer.enqueueExplain('shapes', bodies[i % bodies.length], { method: 'gradient' })));
      const answers = await Promise.all(ids.map((id) => producer.result(id)));
      expect(new Set(answers.map((a) => a.job))).toEqual(new Set(ids));
      expect(answers.some((a) => (a.batch as number) > 1)).toBe(true);
      const jobs = await Promise.all(ids.map((id) => producer.queue.getJob(id)));
      for (const job of jobs) {
        expect(job!.finishedOn).toBeGreaterThan(0);
        expect(job!.attemptsStarted).toBe(1); // never started a second time
      }
      const by = new Set(jobs.map((j) => j!.processedBy));
      expect(by.size).toBe(2); // both workers took jobs
      expect(
        readdirSync(results)
          .filter((f) => f.endsWith('.json'))
          .sort(),
      ).toEqual(ids.map((id) => `${id}.json`).sort());
    } finally {
      const codes = await Promise.all(workers.map((w) => stopProcess(w.child)));
      expect(codes).toEqual([0, 0]);
      await producer.close();
      rmSync(results, { recursive: true, force: true });
    }
  }, 120_000);

  it('a job whose worker is SIGKILLed mid-run is completed once by another worker', async () => {
    const queue = freshQueue();
    const results = mkdtempSync(join(tmpdir(), 'ts-results-'));
    producer = createProducer({ redis: redis.url, queue });
    const doomed = await workerProcess(queue, results, ['--lock-duration-ms', '2000', '--stalled-interval-ms', '1000']);
    let survivor: QueueWorker | undefined;
    const completions: string[] = [];
    producer.events.on('completed', ({ jobId }) => completions.push(jobId));
    try {
      const id = await producer.enqueueExplain('shapes', bodies[3], { method: 'extremal-perturbation', maxIter: 400 });
      // Wait until the doomed worker reports progress: it is mid-run.
      const job = await producer.queue.getJob(id);
      for (let i = 0; i < 600 && !(await producer.queue.getJob(id))!.progress; i++) await sleep(100);
      expect((await job!.getState()) === 'active').toBe(true);
      doomed.child.kill('SIGKILL');
      await new Promise((r) => doomed.child.once('exit', r));
      survivor = createWorker(served, { redis: redis.url, queue, results, lockDurationMs: 2000, stalledIntervalMs: 1000 });
      const answer = await producer.result(id);
      expect(answer.job).toBe(id);
      await sleep(500);
      const done = (await producer.queue.getJob(id))!;
      expect(done.finishedOn).toBeGreaterThan(0);
      expect(done.attemptsStarted).toBe(2); // run by the killed worker, then by the survivor
      expect(done.processedBy).toBe(survivor.id);
      expect(completions.filter((c) => c === id)).toHaveLength(1);
      expect(readdirSync(results)).toEqual([`${id}.json`]);
    } finally {
      await survivor?.close();
      await producer.close();
      rmSync(results, { recursive: true, force: true });
    }
  }, 120_000);

  it('rides out a Redis restart: the worker reconnects and takes new jobs', async () => {
    const queue = freshQueue();
    producer = createProducer({ redis: redis.url, queue });
    const worker = createWorker(served, { redis: redis.url, queue });
    try {
      await worker.ready();
      expect((await producer.result(await producer.enqueuePredict('shapes', bodies[0]))).top).toBeDefined();
      await redis.stop();
      await sleep(1000);
      await redis.start(); // same port, empty (no persistence in tests)
      const id = await producer.enqueuePredict('shapes', bodies[1]);
      const answer = await producer.result(id, { timeoutMs: 60_000 });
      expect(answer.job).toBe(id);
    } finally {
      await worker.close();
      await producer.close();
    }
  }, 120_000);

  it('with a persistent Redis, jobs running and waiting across its restart complete once', async () => {
    // The operator's Redis keeps its data over a restart (append-only file): a job running when Redis goes
    // down and one waiting behind it are not lost; the worker reconnects and finishes both.
    const persistDir = mkdtempSync(join(tmpdir(), 'ts-redis-'));
    const persistent = await RedisServer.start({ persistDir });
    const queue = freshQueue();
    const own = createProducer({ redis: persistent.url, queue });
    const worker = createWorker(served, { redis: persistent.url, queue, maxBatch: 1 });
    try {
      await worker.ready();
      const running = await own.enqueueExplain('shapes', bodies[0], { method: 'extremal-perturbation', maxIter: 300 });
      const waiting = await own.enqueuePredict('shapes', bodies[1]);
      // Restart once the first job has started (its progress is on the job).
      const end = Date.now() + 60_000;
      while ((await own.queue.getJob(running))?.progress === 0 && Date.now() < end) await sleep(50);
      expect(await (await own.queue.getJob(running))!.getState()).toBe('active');
      await persistent.stop();
      await sleep(1000);
      await persistent.start();
      const [a, b] = await Promise.all([own.result(running, { timeoutMs: 90_000 }), own.result(waiting, { timeoutMs: 90_000 })]);
      expect(a.job).toBe(running);
      expect((a.maps as unknown[]).length).toBe(1);
      expect(b.job).toBe(waiting);
      const done = await own.queue.getJob(running);
      expect(done!.attemptsMade).toBeLessThanOrEqual(2);
      expect(await done!.getState()).toBe('completed');
    } finally {
      await worker.close();
      await own.close();
      await persistent.stop();
      rmSync(persistDir, { recursive: true, force: true });
    }
  }, 180_000);

  it('fails poison payloads with typed errors and keeps working', async () => {
    const queue = freshQueue();
    producer = createProducer({ redis: redis.url, queue });
    const worker = createWorker(served, { redis: redis.url, queue });
    try {
      await worker.ready();
      const image = bodies[0].toString('base64');
      const poison: [unknown, string, string?][] = [
        [{}, 'ERR_INVALID_ARG_VALUE', 'job.kind'],
        [{ kind: 'explain', model: '../../etc/passwd', image, options: { method: 'gradient' } }, 'ERR_INVALID_ARG_VALUE', 'job.model'],
        [{ kind: 'explain', model: 'nope', image, options: { method: 'gradient' } }, 'ERR_MODEL_NOT_FOUND', 'model'],
        [{ kind: 'explain', model: 'shapes', image: '@@@', options: { method: 'gradient' } }, 'ERR_INVALID_ARG_VALUE', 'job.image'],
        [
          { kind: 'explain', model: 'shapes', image: Buffer.from('not an image').toString('base64'), options: { method: 'gradient' } },
          'ERR_IMAGE_DECODE',
          'image',
        ],
        [{ kind: 'explain', model: 'shapes', image, options: { method: 'extremal-perturbation', maxIter: 1e9 } }, 'ERR_OUT_OF_RANGE', 'job.options.maxIter'],
        [{ kind: 'explain', model: 'shapes', image, options: { method: 'grad-cam', layer: 'nope' } }, 'ERR_LAYER_NOT_FOUND'],
        [{ kind: 'predict', model: 'shapes', image, options: { top: 'many' } }, 'ERR_INVALID_ARG_TYPE', 'job.options.top'],
        ['a string', 'ERR_INVALID_ARG_VALUE', 'job.kind'],
      ];
      for (const [data, code, argument] of poison) {
        const job = await producer.queue.add('poison', data as never, { attempts: 3, backoff: { type: 'fixed', delay: 100 } });
        const e = await producer.result(job.id!).then(
          () => undefined,
          (err: { code: string; argument?: string }) => err,
        );
        expect(e, JSON.stringify(data).slice(0, 80)).toMatchObject({ code, ...(argument ? { argument } : {}) });
        expect((await producer.queue.getJob(job.id!))!.attemptsMade).toBe(1); // a caller's fault is not retried
      }
      expect((await producer.result(await producer.enqueuePredict('shapes', bodies[0]))).top).toBeDefined();
    } finally {
      await worker.close();
      await producer.close();
    }
  }, 120_000);

  it('bounds the queue for producers, and a job past its deadline is cancelled', async () => {
    const queue = freshQueue();
    producer = createProducer({ redis: redis.url, queue, maxQueue: 2 });
    let worker: QueueWorker | undefined;
    try {
      // No worker yet: jobs wait.
      const waiting = [await producer.enqueuePredict('shapes', bodies[0]), await producer.enqueuePredict('shapes', bodies[1])];
      await expect(producer.enqueuePredict('shapes', bodies[2])).rejects.toMatchObject({ code: 'ERR_QUEUE_FULL' });

      worker = createWorker(served, { redis: redis.url, queue, limits: { maxIter: 1_000_000 } });
      await Promise.all(waiting.map((id) => producer.result(id)));
      const t0 = Date.now();
      const slow = await producer.enqueueExplain('shapes', bodies[3], { method: 'extremal-perturbation', maxIter: 1_000_000 }, { deadlineMs: 2000 });
      await expect(producer.result(slow)).rejects.toMatchObject({ code: 'ERR_DEADLINE' });
      expect(Date.now() - t0).toBeLessThan(30_000);
      expect(await waitFor(() => served[0].model.pending === 0, 10_000)).toBe(true);
      expect((await producer.result(await producer.enqueuePredict('shapes', bodies[4]))).top).toBeDefined();
    } finally {
      await worker?.close();
      await producer.close();
    }
  }, 120_000);
});

async function waitFor(check: () => boolean, ms: number): Promise<boolean> {
  const end = Date.now() + ms;
  while (Date.now() < end && !check()) await sleep(50);
  return check();
}

// Before the fix, close() never returned when Redis was never reached: QueueEvents.close() (and a Worker's
// close()) awaited a connection start-up that never came. A Redis gone after start-up did not hang the
// producer; kept as a guard.
describe('a producer whose Redis is not there', () => {
  const within = async <T>(ms: number, work: Promise<T>): Promise<T | 'hung'> => {
    let timer: NodeJS.Timeout | undefined;
    const late = new Promise<'hung'>((resolve) => (timer = setTimeout(() => resolve('hung'), ms)));
    try {
      return await Promise.race([work, late]);
    } finally {
      clearTimeout(timer);
    }
  };
  /** 'closed' when close() returns within 3 s, else 'hung'. */
  const closing = (what: { close(): Promise<unknown> }) =>
    within(
      3000,
      what.close().then(() => 'closed'),
    );

  it('never reached (nothing listens on the port): close() returns at once, calls fail with ERR_REDIS_UNAVAILABLE after redisWaitMs', async () => {
    const port = await freePort();
    const idle = createProducer({ redis: `redis://127.0.0.1:${port}` });
    await sleep(200);
    expect(await closing(idle)).toBe('closed');

    const lonely = createProducer({ redis: `redis://127.0.0.1:${port}`, redisWaitMs: 500 });
    const t0 = Date.now();
    const added = await within(
      5000,
      lonely.enqueuePredict('shapes', bodies[0]).catch((e: unknown) => e),
    );
    expect(added).toMatchObject({ code: 'ERR_REDIS_UNAVAILABLE', argument: 'redis', message: expect.stringContaining(`127.0.0.1:${port}`) });
    expect(Date.now() - t0).toBeGreaterThanOrEqual(450);
    await expect(
      within(
        5000,
        lonely.result('1').catch((e: unknown) => e),
      ),
    ).resolves.toMatchObject({ code: 'ERR_REDIS_UNAVAILABLE' });
    expect(await closing(lonely)).toBe('closed');
  }, 30_000);

  it('a worker whose Redis is never reached: close() returns at once (it waited without end)', async () => {
    const port = await freePort();
    const lonely = createWorker(served ?? [], { redis: `redis://127.0.0.1:${port}` });
    await sleep(300);
    expect(await closing(lonely)).toBe('closed');
  }, 30_000);

  it.skipIf(!hasRedis && !process.env.CI)(
    'gone after it was reached: close() returns at once',
    async () => {
      const own = await RedisServer.start();
      const gone = createProducer({ redis: own.url, queue: freshQueue() });
      try {
        await gone.enqueuePredict('shapes', bodies[0]);
        expect(await gone.ready()).toBe(true);
      } finally {
        await own.stop();
      }
      await sleep(300);
      expect(await closing(gone)).toBe('closed');
    },
    30_000,
  );
});
