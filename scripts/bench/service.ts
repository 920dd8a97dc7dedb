// service benchmark: the HTTP service and the queue against direct library calls on the same model, in one run.
//   1. direct: C concurrent callers, each decoding the PNG and calling the library (the work a request does);
//   2. HTTP: `torch-saliency serve` in a child process, autocannon with C connections on loopback: throughput
//      as a ratio of (1), p50/p99 latency, the server's event-loop lag under load, its RSS over 10k predicts;
//   3. queue: redis-server on a free loopback port, 1 then 2 `torch-saliency worker` processes, jobs/s.
// For /predict and for /explain?method=grad-cam, on the shapes fixture (64 px: the HTTP overhead's worst case)
// and on the bundled EfficientNet-Lite0 with a real photo at 224 px. The load generator shares the machine's cores with the
// server (2 here): that cost is part of the HTTP numbers. Run: npx tsx scripts/bench/service.ts
// TS_BENCH_REQUESTS (default 10000) sets the predict requests; explain uses a fifth of them.
// TS_BENCH_REAL_REQUESTS (default 400) the same for the real model.
import autocannon from 'autocannon';
import { spawn, type ChildProcess } from 'node:child_process';
import { copyFileSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
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
const CASES: Case[] = [
  { name: 'predict', path: '/predict', requests: REQUESTS, call: (m, im) => m.predict(im) },
  {
    name: 'explain grad-cam',
    path: '/explain?method=grad-cam&layer=features.6',
    requests: Math.round(REQUESTS / 5),
    call: (m, im) => m.explain(im, { method: 'grad-cam', layer: 'features.6' }),
    explain: { method: 'grad-cam', layer: 'features.6' },
  },
];

/** CPU seconds this process has used (all its threads). */
function cpuSeconds(): number {
  const u = process.cpuUsage();
  return (u.user + u.system) / 1e6;
}

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

/** As direct(), also giving this process's CPU milliseconds per call. */
async function directWithCpu(total: number, concurrency: number, work: () => Promise<unknown>): Promise<{ rps: number; cpuMs: number }> {
  const c = cpuSeconds();
  const rps = await direct(total, concurrency, work);
  return { rps, cpuMs: ((cpuSeconds() - c) * 1000) / total };
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
  return {
    rss: get('process_resident_memory_bytes'),
    lagP99: get('nodejs_eventloop_lag_p99_seconds'),
    lagMax: get('nodejs_eventloop_lag_max_seconds'),
    cpu: get('process_cpu_seconds_total'),
  };
}

function cannon(url: string, amount: number, setup: { body: Buffer; contentType: string }): Promise<autocannon.Result> {
  return autocannon({ url, method: 'POST', body: setup.body, headers: { 'content-type': setup.contentType }, connections: CONNECTIONS, amount, timeout: 60 });
}

interface Case {
  name: string;
  path: string;
  requests: number;
  call: (m: Model, im: Awaited<ReturnType<typeof readImage>>) => Promise<unknown>;
  /** The explain options of the path's query, for the queue's jobs (none: a predict). */
  explain?: Record<string, unknown> & { method: string };
}

interface Setup {
  title: string;
  /** The model's name in the queue workers' models folder. */
  name: string;
  model: string;
  size?: number;
  body: Buffer;
  contentType: string;
  serveArgs: string[];
  read: (bytes: Buffer) => ReturnType<typeof readImage>;
  cases: Case[];
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
      const start = await scrape(base); // the scrape also resets the lag statistics
      // Alternate halves so that a change of load on the shared machine hits both sides.
      const half = Math.round(c.requests / 2);
      const d1 = await directWithCpu(half, CONNECTIONS, work);
      let client = cpuSeconds();
      const h1 = await cannon(`${base}${c.path}`, half, setup);
      client = cpuSeconds() - client;
      const mid = await scrape(base);
      const d2 = await directWithCpu(half, CONNECTIONS, work);
      const before2 = cpuSeconds();
      const h2 = await cannon(`${base}${c.path}`, half, setup);
      client += cpuSeconds() - before2;
      const end = await scrape(base);
      const directRps = (d1.rps + d2.rps) / 2;
      const httpRps = (h1.requests.total / h1.duration + h2.requests.total / h2.duration) / 2;
      const errors = h1.non2xx + h2.non2xx + h1.errors + h2.errors;
      // CPU per request, to say what each side pays: the direct callers pay no HTTP and no load generator; the
      // service's requests pay the server's work and the load generator's (autocannon, in this process), both
      // on the same cores. The server's includes its scrapes of /metrics (three per case, small).
      const row = {
        directRps: +directRps.toFixed(1),
        httpRps: +httpRps.toFixed(1),
        ratio: +(httpRps / directRps).toFixed(3),
        p50ms: h2.latency.p50,
        p99ms: h2.latency.p99,
        lagP99ms: +(Math.max(mid.lagP99, end.lagP99) * 1000).toFixed(1),
        lagMaxMs: +(Math.max(mid.lagMax, end.lagMax) * 1000).toFixed(1),
        rssMB: [start.rss, mid.rss, end.rss].map((b) => +(b / 2 ** 20).toFixed(0)),
        cpuMsPerRequest: {
          direct: +((d1.cpuMs + d2.cpuMs) / 2).toFixed(2),
          server: +(((end.cpu - start.cpu) * 1000) / (2 * half)).toFixed(2),
          loadGenerator: +((client * 1000) / (2 * half)).toFixed(2),
        },
        errors,
      };
      summary[`${prefix}${c.name}`] = row;
      const cpu = row.cpuMsPerRequest;
      console.log(
        `${`${prefix}${c.name}`.padEnd(22)} ${c.requests} requests: direct ${row.directRps} req/s, HTTP ${row.httpRps} req/s, ratio ${row.ratio}; ` +
          `p50 ${row.p50ms} ms, p99 ${row.p99ms} ms; event-loop lag p99 ${row.lagP99ms} ms, max ${row.lagMaxMs} ms; ` +
          `server RSS ${row.rssMB.join(' -> ')} MB; CPU ms per request: direct ${cpu.direct}, server ${cpu.server} + load generator ${cpu.loadGenerator}; ` +
          `non-2xx/errors ${errors}`,
      );
    }
  } finally {
    await stop(server.child);
    model.dispose();
  }
}

const SHAPES: Setup = {
  title: 'shapes model (3 x 64 x 64)',
  name: 'shapes',
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
  name: 'lite0',
  model: join(root, 'examples', 'model', 'efficientnet_lite0.pt'),
  size: 224,
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
      explain: { method: 'grad-cam', layer: '_conv_head' },
    },
  ],
};

/**
 * Jobs per second through the queue with 1 and 2 `torch-saliency worker` processes (each with the model), all
 * jobs enqueued at once and awaited, against C direct callers on the same model in the same run.
 */
async function queue(setup: Setup, summary: Record<string, unknown>, prefix: string, redis: RedisServer): Promise<void> {
  const model = await loadModel(setup.model, { device: 'cpu' });
  const dir = mkdtempSync(join(tmpdir(), 'ts-bench-'));
  copyFileSync(setup.model, join(dir, `${setup.name}.pt`));
  if (setup.size) writeFileSync(join(dir, `${setup.name}.json`), JSON.stringify({ size: setup.size }));
  try {
    for (const c of setup.cases) {
      const jobs = Math.max(2 * CONNECTIONS, Math.round(c.requests / 5));
      const work = async () => c.call(model, await setup.read(setup.body));
      await direct(Math.min(32, jobs), CONNECTIONS, work); // warm-up
      const directRps = await direct(jobs, CONNECTIONS, work);
      const line: string[] = [`direct ${directRps.toFixed(1)}/s`];
      for (const n of [1, 2]) {
        const name = `bench-${setup.name}-${c.name.replace(/\W/g, '')}-${n}`;
        const workers = await Promise.all(
          Array.from({ length: n }, () => startChild(['worker', '--redis', redis.url, '--queue', name, '--models', dir, '--device', 'cpu'], /ready/)),
        );
        const producer = createProducer({ redis: redis.url, queue: name });
        const enqueue = () => (c.explain ? producer.enqueueExplain(setup.name, setup.body, c.explain) : producer.enqueuePredict(setup.name, setup.body));
        try {
          await Promise.all(Array.from({ length: Math.min(32, jobs) }, async () => producer.result(await enqueue()))); // warm-up
          const t = performance.now();
          const ids = await Promise.all(Array.from({ length: jobs }, enqueue));
          await Promise.all(ids.map((id) => producer.result(id)));
          const rps = jobs / ((performance.now() - t) / 1000);
          summary[`${prefix}queue ${c.name} ${n} worker(s)`] = { jobsPerSecond: +rps.toFixed(1), ratio: +(rps / directRps).toFixed(3) };
          line.push(`${n} worker${n > 1 ? 's' : ''} ${rps.toFixed(1)}/s (ratio ${(rps / directRps).toFixed(3)})`);
        } finally {
          await producer.close();
          await Promise.all(workers.map((w) => stop(w.child)));
        }
      }
      console.log(`${`${prefix}queue ${c.name}`.padEnd(22)} ${jobs} jobs: ${line.join(', ')}`);
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
    model.dispose();
  }
}

async function main() {
  const summary: Record<string, unknown> = { connections: CONNECTIONS };
  await http(SHAPES, summary, '');
  await http(REAL, summary, 'real ');
  const redis = await RedisServer.start();
  try {
    await queue(SHAPES, summary, '', redis);
    await queue(REAL, summary, 'real ', redis);
  } finally {
    await redis.stop();
  }
  console.log(JSON.stringify(summary));
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
