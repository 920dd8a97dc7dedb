// service benchmark: the HTTP service and the queue against direct library calls on the same model, in one run.
//   1. direct: C concurrent callers, each decoding the PNG and calling the library (the work a request does);
//   2. HTTP: `torch-saliency serve` in a child process, autocannon with C connections on loopback: throughput
//      as a ratio of (1), p50/p99 latency, the server's event-loop lag under load, its RSS over 10k predicts;
//   3. queue: redis-server on a free loopback port, 1 then 2 `torch-saliency worker` processes, jobs/s.
// For /predict and for /explain?method=grad-cam, on the shapes fixture (64 px: the HTTP overhead's worst case)
// and, for (1) and (2), on the bundled EfficientNet-Lite0 with a real photo at 224 px. The load generator shares the machine's cores with the
// server (2 here): that cost is part of the HTTP numbers. Run: npx tsx scripts/bench/service.ts
// TS_BENCH_REQUESTS (default 10000) sets the predict requests; explain uses a fifth of them.
// TS_BENCH_REAL_REQUESTS (default 400) the same for the real model.
import autocannon from 'autocannon';
import { spawn, type ChildProcess } from 'node:child_process';
import { copyFileSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadModel, readImage, type Model } from '../../lib/index.js';
import { createProducer } from '../../lib/queue/producer.js';
import { RedisServer } from '../../test/integration/redis.js';

process.env.OMP_WAIT_POLICY ??= 'PASSIVE';
const root = join(__dirname, '..', '..');
const MODEL = join(root, 'test', 'fixtures', 'models', 'shapes_traced.pt');
const png = readFileSync(join(root, 'test', 'fixtures', 'shapes', 'shape_00.png'));
const REQUESTS = Number(process.env.TS_BENCH_REQUESTS ?? 10_000);
const CONNECTIONS = 16;
const CASES = [
  { name: 'predict', path: '/predict', requests: REQUESTS, call: (m: Model, im: Awaited<ReturnType<typeof readImage>>) => m.predict(im) },
  {
    name: 'explain grad-cam',
    path: '/explain?method=grad-cam&layer=features.6',
    requests: Math.round(REQUESTS / 5),
    call: (m: Model, im: Awaited<ReturnType<typeof readImage>>) => m.explain(im, { method: 'grad-cam', layer: 'features.6' }),
  },
];

/** Requests per second of `concurrency` callers each running `work` until `total` calls are done. */
async function direct(total: number, concurrency: number, work: () => Promise<unknown>): Promise<number> {
  let left = total;
  const t = performance.now();
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      while (left-- > 0) await work();
    }),
  );
  return total / ((performance.now() - t) / 1000);
}

function startChild(args: string[], ready: RegExp): Promise<{ child: ChildProcess; out: () => string }> {
  const child = spawn(process.execPath, ['--import', 'tsx', join(root, 'lib', 'cli', 'index.ts'), ...args], { cwd: root, stdio: ['ignore', 'ignore', 'pipe'] });
  let out = '';
  child.stderr!.on('data', (d) => (out += d.toString()));
  return new Promise((resolve, reject) => {
    const timer = setInterval(() => {
      if (ready.test(out)) {
        clearInterval(timer);
        resolve({ child, out: () => out });
      } else if (child.exitCode !== null) {
        clearInterval(timer);
        reject(new Error(out));
      }
    }, 50);
  });
}

const stop = (child: ChildProcess) => new Promise<void>((r) => (child.exitCode !== null ? r() : (child.once('exit', () => r()), child.kill('SIGTERM'))));

async function scrape(base: string): Promise<Record<string, number>> {
  const text = await (await fetch(`${base}/metrics`)).text();
  const get = (name: string) => Number(new RegExp(`^${name} ([0-9.e+-]+)`, 'm').exec(text)?.[1] ?? NaN);
  return { rss: get('process_resident_memory_bytes'), lagP99: get('nodejs_eventloop_lag_p99_seconds'), lagMax: get('nodejs_eventloop_lag_max_seconds') };
}

function cannon(url: string, amount: number, setup: { body: Buffer; contentType: string }): Promise<autocannon.Result> {
  return autocannon({ url, method: 'POST', body: setup.body, headers: { 'content-type': setup.contentType }, connections: CONNECTIONS, amount, timeout: 60 });
}

interface Setup {
  title: string;
  model: string;
  body: Buffer;
  contentType: string;
  serveArgs: string[];
  read: (bytes: Buffer) => ReturnType<typeof readImage>;
  cases: { name: string; path: string; requests: number; call: (m: Model, im: Awaited<ReturnType<typeof readImage>>) => Promise<unknown> }[];
}

/** Direct calls against the HTTP service, alternating, for each case of `setup`, rows added to `summary`. */
async function http(setup: Setup, summary: Record<string, unknown>, prefix: string): Promise<void> {
  const model = await loadModel(setup.model, { device: 'cpu' });
  const server = await startChild(
    ['serve', '--model', setup.model, '--device', 'cpu', '--port', '0', '--max-queue', '1000', ...setup.serveArgs],
    /on http:\/\/127\.0\.0\.1:(\d+)/,
  );
  const base = `http://127.0.0.1:${/on http:\/\/127\.0\.0\.1:(\d+)/.exec(server.out())![1]}`;
  console.log(`${setup.title}, ${CONNECTIONS} concurrent clients, loopback; the server in its own process`);
  try {
    for (const c of setup.cases) {
      const work = async () => c.call(model, await setup.read(setup.body));
      await direct(Math.min(64, c.requests), CONNECTIONS, work); // warm-up
      await cannon(`${base}${c.path}`, Math.max(CONNECTIONS, Math.min(200, c.requests)), setup);
      const rssBefore = (await scrape(base)).rss; // the scrape also resets the lag statistics
      // Alternate halves so that a change of load on the shared machine hits both sides.
      const half = Math.round(c.requests / 2);
      const d1 = await direct(half, CONNECTIONS, work);
      const h1 = await cannon(`${base}${c.path}`, half, setup);
      const mid = await scrape(base);
      const d2 = await direct(half, CONNECTIONS, work);
      const h2 = await cannon(`${base}${c.path}`, half, setup);
      const end = await scrape(base);
      const directRps = (d1 + d2) / 2;
      const httpRps = (h1.requests.total / h1.duration + h2.requests.total / h2.duration) / 2;
      const errors = h1.non2xx + h2.non2xx + h1.errors + h2.errors;
      const row = {
        directRps: +directRps.toFixed(1),
        httpRps: +httpRps.toFixed(1),
        ratio: +(httpRps / directRps).toFixed(3),
        p50ms: h2.latency.p50,
        p99ms: h2.latency.p99,
        lagP99ms: +(Math.max(mid.lagP99, end.lagP99) * 1000).toFixed(1),
        lagMaxMs: +(Math.max(mid.lagMax, end.lagMax) * 1000).toFixed(1),
        rssMB: [rssBefore, mid.rss, end.rss].map((b) => +(b / 2 ** 20).toFixed(0)),
        errors,
      };
      summary[`${prefix}${c.name}`] = row;
      console.log(
        `${`${prefix}${c.name}`.padEnd(22)} ${c.requests} requests: direct ${row.directRps} req/s, HTTP ${row.httpRps} req/s, ratio ${row.ratio}; ` +
          `p50 ${row.p50ms} ms, p99 ${row.p99ms} ms; event-loop lag p99 ${row.lagP99ms} ms, max ${row.lagMaxMs} ms; ` +
          `server RSS ${row.rssMB.join(' -> ')} MB; non-2xx/errors ${errors}`,
      );
    }
  } finally {
    await stop(server.child);
    model.dispose();
  }
}

const SHAPES: Setup = {
  title: 'shapes model (3 x 64 x 64)',
  model: MODEL,
  body: png,
  contentType: 'image/png',
  serveArgs: [],
  read: (bytes) => readImage(bytes),
  cases: CASES,
};

// The bundled EfficientNet-Lite0 on a real photo (JPEG, resized to 224 x 224 by the service and by the direct
// caller alike): where a request's work is a real network's, not the HTTP overhead of a 64-px toy.
const REAL_REQUESTS = Number(process.env.TS_BENCH_REAL_REQUESTS ?? 400);
const REAL: Setup = {
  title: 'EfficientNet-Lite0 (examples/model) on examples/photos/chelsea.jpg at 224 x 224',
  model: join(root, 'examples', 'model', 'efficientnet_lite0.pt'),
  body: readFileSync(join(root, 'examples', 'photos', 'chelsea.jpg')),
  contentType: 'image/jpeg',
  serveArgs: ['--size', '224'],
  read: (bytes) => readImage(bytes, { size: 224 }),
  cases: [
    { name: 'predict', path: '/predict', requests: REAL_REQUESTS, call: (m, im) => m.predict(im) },
    {
      name: 'explain grad-cam',
      path: '/explain?method=grad-cam&layer=_conv_head',
      requests: Math.max(2 * CONNECTIONS, Math.round(REAL_REQUESTS / 5)),
      call: (m, im) => m.explain(im, { method: 'grad-cam', layer: '_conv_head' }),
    },
  ],
};

async function main() {
  const summary: Record<string, unknown> = { connections: CONNECTIONS };
  await http(SHAPES, summary, '');
  await http(REAL, summary, 'real ');

  // The queue: jobs/s with 1 and 2 workers (each worker a process with the model), against direct calls.
  const model = await loadModel(MODEL, { device: 'cpu' });
  const redis = await RedisServer.start();
  const dir = mkdtempSync(join(tmpdir(), 'ts-bench-'));
  copyFileSync(MODEL, join(dir, 'shapes.pt'));
  try {
    for (const c of CASES) {
      const jobs = Math.round(c.requests / 5);
      const work = async () => c.call(model, await readImage(png));
      const directRps = await direct(jobs, CONNECTIONS, work);
      const line: string[] = [`direct ${directRps.toFixed(1)}/s`];
      for (const n of [1, 2]) {
        const queue = `bench-${c.name.replace(/\W/g, '')}-${n}`;
        const workers = await Promise.all(
          Array.from({ length: n }, () => startChild(['worker', '--redis', redis.url, '--queue', queue, '--models', dir, '--device', 'cpu'], /ready/)),
        );
        const producer = createProducer({ redis: redis.url, queue });
        try {
          const t = performance.now();
          const ids = await Promise.all(
            Array.from({ length: jobs }, () =>
              c.name === 'predict'
                ? producer.enqueuePredict('shapes', png)
                : producer.enqueueExplain('shapes', png, { method: 'grad-cam', layer: 'features.6' }),
            ),
          );
          await Promise.all(ids.map((id) => producer.result(id)));
          const rps = jobs / ((performance.now() - t) / 1000);
          summary[`queue ${c.name} ${n} worker(s)`] = { jobsPerSecond: +rps.toFixed(1), ratio: +(rps / directRps).toFixed(3) };
          line.push(`${n} worker${n > 1 ? 's' : ''} ${rps.toFixed(1)}/s (ratio ${(rps / directRps).toFixed(3)})`);
        } finally {
          await producer.close();
          await Promise.all(workers.map((w) => stop(w.child)));
        }
      }
      console.log(`queue ${c.name.padEnd(17)} ${jobs} jobs: ${line.join(', ')}`);
    }
  } finally {
    await redis.stop();
    rmSync(dir, { recursive: true, force: true });
    model.dispose();
  }
  console.log(JSON.stringify(summary));
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
