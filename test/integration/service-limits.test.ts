// The service's limits, each as a hostile or careless client meets it: abandoned work is cancelled, the
// queue is bounded (429 + Retry-After), a deadline gives 504 and stops the native loop, a small image of
// huge dimensions is refused before decoding, over-long bodies get 413 without being read, slow clients
// get 408, connections are capped, the idle CPU cache is given back, and SIGTERM exits cleanly.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { connect, type Socket } from 'node:net';
import { join } from 'node:path';
import sharp from 'sharp';
import { createService, loadModel, runtime, type Model, type SaliencyService } from '../../lib/index.js';
import { FIXTURES, ROOT, model as modelPath } from './helpers.js';

const png = readFileSync(join(FIXTURES, 'shapes', 'shape_00.png'));
const png2 = readFileSync(join(FIXTURES, 'shapes', 'shape_05.png'));
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Polls `check` until it holds or `ms` pass; returns whether it held. */
async function eventually(check: () => boolean, ms: number): Promise<boolean> {
  const end = Date.now() + ms;
  while (Date.now() < end) {
    if (check()) return true;
    await sleep(50);
  }
  return check();
}

let model: Model;
beforeAll(async () => {
  model = await loadModel(modelPath('shapes_traced.pt'), { device: 'cpu' });
});
afterAll(() => model.dispose());

async function start(options: Parameters<typeof createService>[1]): Promise<{ service: SaliencyService; base: string; port: number }> {
  const service = createService(model, options);
  const { port } = await service.listen(0, '127.0.0.1');
  return { service, base: `http://127.0.0.1:${port}`, port };
}

// A run of extremal perturbation far longer than any test: only cancellation ends it.
const endless = '/explain?method=extremal-perturbation&maxIter=1000000';
const explain = (base: string, path: string, body: Buffer, signal?: AbortSignal) =>
  fetch(`${base}${path}`, { method: 'POST', body, headers: { 'content-type': 'image/png' }, signal });

/** Raw HTTP on a socket: what a misbehaving client sends. Resolves with what came back and when the socket closed. */
function rawClient(port: number): { socket: Socket; received: () => string; closed: Promise<number> } {
  const socket = connect(port, '127.0.0.1');
  let data = '';
  const t0 = Date.now();
  socket.on('data', (d) => (data += d.toString('latin1')));
  socket.on('error', () => {});
  const closed = new Promise<number>((resolve) => socket.on('close', () => resolve(Date.now() - t0)));
  return { socket, received: () => data, closed };
}

describe('cancellation and backpressure', () => {
  it('cancels the native work of clients that give up, so a later request is answered at once', async () => {
    const { service, base } = await start({ limits: { maxIter: 1_000_000 } });
    try {
      const clients = [png, png2, png, png2, png].map((b) => explain(base, endless, b, AbortSignal.timeout(1500)).catch((e: Error) => e));
      expect(await eventually(() => service.stats().running === 1, 5000)).toBe(true);
      const outcomes = await Promise.all(clients);
      expect(outcomes.every((o) => o instanceof Error)).toBe(true);
      // Every client left: nothing waits and the native loop was stopped.
      expect(await eventually(() => service.stats().running === 0 && service.stats().queued === 0 && model.pending === 0, 10_000)).toBe(true);
      const t0 = Date.now();
      const r = await explain(base, '/explain?method=gradient', png);
      expect(r.status).toBe(200);
      expect(Date.now() - t0).toBeLessThan(5000);
      const metrics = await (await fetch(`${base}/metrics`)).text();
      expect(metrics).toMatch(/torch_saliency_cancelled_total\{reason="client"\} 5/);
    } finally {
      await service.close();
    }
  });

  it('bounds the queue: past it, 429 with Retry-After', async () => {
    const { service, base } = await start({ limits: { maxIter: 1_000_000, maxQueue: 2 } });
    const controller = new AbortController();
    try {
      const running = explain(base, endless, png, controller.signal).catch(() => undefined);
      expect(await eventually(() => service.stats().running === 1, 5000)).toBe(true);
      const waiting = [explain(base, `${endless}&seed=1`, png, controller.signal), explain(base, `${endless}&seed=2`, png, controller.signal)].map((p) =>
        p.catch(() => undefined),
      );
      expect(await eventually(() => service.stats().queued === 2, 5000)).toBe(true);
      const refused = await explain(base, '/explain?method=gradient', png);
      expect(refused.status).toBe(429);
      expect(Number(refused.headers.get('retry-after'))).toBeGreaterThanOrEqual(1);
      expect(((await refused.json()) as { error: { code: string } }).error.code).toBe('ERR_QUEUE_FULL');
      controller.abort();
      await Promise.all([running, ...waiting]);
      expect(await eventually(() => model.pending === 0 && service.stats().queued === 0, 10_000)).toBe(true);
    } finally {
      controller.abort();
      await service.close();
    }
  });

  it('answers 504 when the deadline passes and stops the native loop', async () => {
    const { service, base } = await start({ limits: { maxIter: 1_000_000, timeoutMs: 1500 } });
    try {
      const t0 = Date.now();
      const r = await explain(base, endless, png);
      expect(r.status).toBe(504);
      expect(((await r.json()) as { error: { code: string } }).error.code).toBe('ERR_DEADLINE');
      expect(Date.now() - t0).toBeLessThan(15_000);
      expect(await eventually(() => model.pending === 0, 10_000)).toBe(true);
    } finally {
      await service.close();
    }
  });
});

describe('input limits', () => {
  let service: SaliencyService;
  let port: number;
  beforeAll(async () => {
    ({ service, port } = await start({ limits: { maxBodyBytes: 1 << 20, headersTimeoutMs: 1000, requestTimeoutMs: 2000, maxConnections: 4 } }));
  });
  afterAll(() => service.close());

  it('refuses a small image that declares huge dimensions before decoding it, and maps resized past the limit', async () => {
    const huge = await sharp({ create: { width: 4000, height: 4000, channels: 3, background: { r: 0, g: 0, b: 0 } } })
      .png({ compressionLevel: 9 })
      .toBuffer();
    expect(huge.length).toBeLessThan(100_000);
    for (const url of ['/predict', '/explain?method=gradient']) {
      const t0 = Date.now();
      const r = await service.app.inject({ method: 'POST', url, payload: huge, headers: { 'content-type': 'image/png' } });
      expect(r.statusCode).toBe(413);
      expect(r.json()).toMatchObject({ error: { code: 'ERR_IMAGE_TOO_LARGE', argument: 'image' } });
      expect(r.json().error.message).toMatch(/4000 x 4000/);
      expect(Date.now() - t0).toBeLessThan(2000); // a decode (and a model run) of 16 MP would take far longer
    }
    const resized = await service.app.inject({
      method: 'POST',
      url: '/explain?method=gradient&resize=16384,16384&data=1',
      payload: png,
      headers: { 'content-type': 'image/png' },
    });
    expect(resized.statusCode).toBe(400);
    expect(resized.json()).toMatchObject({ error: { code: 'ERR_OUT_OF_RANGE', argument: 'options.resize' } });
  });

  it('caps the options that scale the work, naming the limit', async () => {
    for (const [query, argument] of [
      ['method=extremal-perturbation&maxIter=1000000', 'options.maxIter'],
      ['method=rise&numMasks=100000', 'options.numMasks'],
      ['method=extremal-perturbation&areas=0.1,0.2,0.3,0.4,0.5,0.6,0.7,0.8,0.9', 'options.areas'],
      ['method=gradient&target=top-50', 'options.target'],
      ['method=input-agnostic&samples=100000', 'options.samples'],
    ]) {
      const r = await service.app.inject({ method: 'POST', url: `/explain?${query}`, payload: png, headers: { 'content-type': 'image/png' } });
      expect(r.statusCode, query).toBe(400);
      expect(r.json()).toMatchObject({ error: { code: 'ERR_OUT_OF_RANGE', argument } });
      expect(r.json().error.message).toMatch(/--cap-/);
    }
    const form = new FormData();
    for (let i = 0; i < 17; i++) form.append(`f${i}`, new Blob([png], { type: 'image/png' }), `${i}.png`);
    const many = await fetch(`http://127.0.0.1:${port}/predict`, { method: 'POST', body: form });
    expect(many.status).toBe(400);
    expect(await many.json()).toMatchObject({ error: { code: 'ERR_OUT_OF_RANGE', argument: 'images' } });
  });

  it('refuses a declared Content-Length over the limit before reading the body', async () => {
    const c = rawClient(port);
    c.socket.write('POST /predict HTTP/1.1\r\nHost: x\r\nContent-Type: image/png\r\nContent-Length: 100000000\r\n\r\n');
    await c.closed;
    expect(c.received()).toMatch(/^HTTP\/1\.1 413/);
    expect(c.received()).toMatch(/ERR_BODY_TOO_LARGE/);
  });

  it('answers 413 to a body that grows past the limit while read, and stops reading it', async () => {
    const c = rawClient(port);
    c.socket.write('POST /predict HTTP/1.1\r\nHost: x\r\nContent-Type: image/png\r\nTransfer-Encoding: chunked\r\n\r\n');
    const chunk = Buffer.alloc(64 * 1024, 1);
    let sent = 0;
    let closed = false;
    c.closed.then(() => (closed = true));
    // Up to 100 MB, as fast as the server takes it; the server answers and closes long before.
    while (!closed && sent < 100 * 1024 * 1024 && !/\r\n\r\n/.test(c.received())) {
      c.socket.write(`${chunk.length.toString(16)}\r\n`);
      c.socket.write(chunk);
      const ok = c.socket.write('\r\n');
      sent += chunk.length;
      if (!ok) await Promise.race([new Promise((r) => c.socket.once('drain', r)), sleep(200)]);
    }
    await Promise.race([c.closed, sleep(10_000)]);
    expect(c.received()).toMatch(/^HTTP\/1\.1 413/);
    expect(c.received()).toMatch(/ERR_BODY_TOO_LARGE/);
    expect(sent).toBeLessThan(50 * 1024 * 1024);
    c.socket.destroy();
  });

  it('gives slow clients 408: unfinished headers and unfinished bodies', async () => {
    const headers = rawClient(port);
    headers.socket.write('POST /predict HTTP/1.1\r\nHost: x\r\n');
    const body = rawClient(port);
    body.socket.write('POST /predict HTTP/1.1\r\nHost: x\r\nContent-Type: image/png\r\nContent-Length: 1000\r\n\r\n0123456789');
    const [headersMs, bodyMs] = await Promise.all([headers.closed, body.closed]);
    expect(headers.received()).toMatch(/^HTTP\/1\.1 408/);
    expect(body.received()).toMatch(/^HTTP\/1\.1 408/);
    // headersTimeout 1 s and requestTimeout 2 s, checked every second: far from Node's 60 s and 300 s.
    expect(headersMs).toBeLessThan(10_000);
    expect(bodyMs).toBeLessThan(10_000);
  });

  it('caps open connections', async () => {
    const open = Array.from({ length: 4 }, () => rawClient(port));
    await Promise.all(open.map((c) => new Promise((r) => c.socket.once('connect', r))));
    await sleep(100);
    const extra = rawClient(port);
    const closedMs = await Promise.race([extra.closed, sleep(5000).then(() => -1)]);
    expect(closedMs).toBeGreaterThanOrEqual(0); // dropped by the server
    expect(extra.received()).toBe('');
    open.forEach((c) => c.socket.destroy());
    await Promise.all(open.map((c) => c.closed));
    const r = await fetch(`http://127.0.0.1:${port}/health`);
    expect(r.status).toBe(200);
  });
});

describe('memory and shutdown', () => {
  it('gives the CPU block cache back when idle, and says so in /metrics', async () => {
    const { service, base } = await start({ size: 256, limits: { releaseCacheAfterMs: 300 } });
    try {
      await Promise.all(Array.from({ length: 16 }, (_, i) => explain(base, '/predict', i % 2 ? png : png2)));
      const held = runtime().cpuCache.cachedBytes;
      expect(held).toBeGreaterThan(0);
      expect(await eventually(() => runtime().cpuCache.cachedBytes === 0, 5000)).toBe(true);
      const metrics = await (await fetch(`${base}/metrics`)).text();
      expect(metrics).toMatch(/^torch_saliency_cpu_cache_bytes 0$/m);
      expect(Number(/^torch_saliency_cpu_cache_released_bytes_total (\d+)/m.exec(metrics)?.[1])).toBeGreaterThan(0);
    } finally {
      await service.close();
    }
  });

  it('on SIGTERM stops accepting, cancels the running work after the grace period and exits 0', async () => {
    const child = spawn(
      process.execPath,
      [
        '--import',
        'tsx',
        join(ROOT, 'lib', 'cli', 'index.ts'),
        'serve',
        '--model',
        modelPath('shapes_traced.pt'),
        '--device',
        'cpu',
        '--port',
        '0',
        '--cap-max-iter',
        '1000000',
        '--grace-ms',
        '1000',
      ],
      { cwd: ROOT, stdio: ['ignore', 'ignore', 'pipe'] },
    );
    let stderr = '';
    child.stderr!.on('data', (d) => (stderr += d.toString()));
    const exited = new Promise<{ code: number | null; ms: number }>((resolve) => {
      let t0 = 0;
      child.on('spawn', () => (t0 = Date.now()));
      child.on('exit', (code) => resolve({ code, ms: Date.now() - t0 }));
    });
    try {
      expect(await eventually(() => /serving .* on http:\/\/127\.0\.0\.1:(\d+)/.test(stderr), 60_000)).toBe(true);
      const base = `http://127.0.0.1:${/on http:\/\/127\.0\.0\.1:(\d+)/.exec(stderr)![1]}`;
      const pending = explain(base, endless, png);
      let running = false;
      for (let i = 0; i < 100 && !running; i++) {
        running = ((await (await fetch(`${base}/health`)).json()) as { running: number }).running === 1;
        if (!running) await sleep(100);
      }
      expect(running).toBe(true);
      const t0 = Date.now();
      child.kill('SIGTERM');
      const r = await pending;
      expect(r.status).toBe(503);
      expect(((await r.json()) as { error: { code: string } }).error.code).toBe('ERR_SHUTTING_DOWN');
      const { code } = await exited;
      expect(code).toBe(0);
      expect(Date.now() - t0).toBeLessThan(20_000);
      expect(stderr).toMatch(/stopped/);
    } finally {
      if (child.exitCode === null) child.kill('SIGKILL');
    }
  }, 120_000);
});
