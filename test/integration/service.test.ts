// The HTTP service's routes: answers equal to direct library calls (also for 20 concurrent clients on real
// sockets), merged explain calls, images as raw body, multipart or JSON, models by name from a folder,
// typed errors from the schemas, health and readiness, and /metrics read by a Prometheus text parser.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { copyFileSync, mkdtempSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { getMetricsFromStream, type PromData, type PromHistogramData } from 'prom2javascript';
import {
  createModelService,
  createService,
  loadModel,
  loadModelFolder,
  readImage,
  type Model,
  type SaliencyService,
  type ServedModel,
} from '../../lib/index.js';
import { FIXTURES, maxAbsDiff, model as modelPath } from './helpers.js';

const shapes = join(FIXTURES, 'shapes');
const files = readdirSync(shapes)
  .filter((f) => f.endsWith('.png'))
  .sort();
const bodies = files.map((f) => readFileSync(join(shapes, f)));
const labels = join(FIXTURES, 'models', 'shapes_labels.txt');

let model: Model;
let service: SaliencyService;
let base: string;

beforeAll(async () => {
  model = await loadModel(modelPath('shapes_traced.pt'), { device: 'cpu', labels });
  service = createService(model, { maxBatch: 16 });
  const address = await service.listen(0, '127.0.0.1');
  base = `http://127.0.0.1:${address.port}`;
});

afterAll(async () => {
  await service.close();
  model.dispose();
});

const post = (path: string, body: Buffer) => fetch(`${base}${path}`, { method: 'POST', body, headers: { 'content-type': 'image/png' } });
const floats = (b64: string) => {
  const buf = Buffer.from(b64, 'base64');
  return new Float32Array(buf.buffer, buf.byteOffset, buf.byteLength / 4);
};
type ExplainAnswer = { maps: { data: string; target: number; image: number }[]; targets: { target: number }[]; batch: number };

describe('service routes', () => {
  it('answers 20 concurrent clients on real sockets as direct calls do, merging their explain calls', async () => {
    const clients = Array.from({ length: 20 }, (_, i) => bodies[i % bodies.length]);
    const predicted = await Promise.all(clients.map((b) => post('/predict?top=2', b)));
    for (let i = 0; i < clients.length; i++) {
      expect(predicted[i].status).toBe(200);
      const got = (await predicted[i].json()) as { top: { index: number; probability: number }[] };
      const direct = await model.predict(await readImage(clients[i]), { top: 2 });
      expect(got.top.map((t) => t.index)).toEqual(direct.top.map((t) => t.index));
      expect(got.top[0].probability).toBeCloseTo(direct.top[0].probability, 5);
    }

    const before = service.stats();
    const explained = await Promise.all(clients.map((b) => post('/explain?method=gradient&target=top-1&data=1', b)));
    const after = service.stats();
    expect(after.explainRequests - before.explainRequests).toBe(clients.length);
    // The first request starts alone; the others arrive while it runs and share the next call(s).
    expect(after.calls - before.calls).toBeLessThan(clients.length);
    expect(after.merged - before.merged).toBeGreaterThan(0);
    for (let i = 0; i < clients.length; i++) {
      expect(explained[i].status).toBe(200);
      const got = (await explained[i].json()) as ExplainAnswer;
      expect(got.maps).toHaveLength(1);
      expect(got.maps[0].image).toBe(0);
      const direct = await model.explain(await readImage(clients[i]), { method: 'gradient' });
      expect(got.maps[0].target).toBe(direct.maps[0].target);
      const want = direct.maps[0].data;
      expect(maxAbsDiff(floats(got.maps[0].data), want)).toBeLessThanOrEqual(1e-4 * Math.max(...want.map(Math.abs)));
    }
  });

  it('returns pictures when asked', async () => {
    const r = await post('/explain?method=gradient&picture=overlay', bodies[0]);
    const got = (await r.json()) as { maps: { png: string }[] };
    expect(Buffer.from(got.maps[0].png, 'base64').subarray(1, 4).toString()).toBe('PNG');
  });

  it('takes images as multipart files with options as fields, and as base64 in a JSON body', async () => {
    const form = new FormData();
    form.append('a', new Blob([bodies[1]], { type: 'image/png' }), 'a.png');
    form.append('b', new Blob([bodies[2]], { type: 'image/png' }), 'b.png');
    form.append('method', 'grad-cam');
    form.append('layer', 'features.6');
    form.append('data', '1');
    const multi = await fetch(`${base}/explain`, { method: 'POST', body: form });
    expect(multi.status).toBe(200);
    const { results } = (await multi.json()) as { results: ExplainAnswer[] };
    expect(results).toHaveLength(2);

    const json = await service.app.inject({
      method: 'POST',
      url: '/explain',
      payload: { images: [bodies[1].toString('base64'), bodies[2].toString('base64')], options: { method: 'grad-cam', layer: 'features.6', data: true } },
    });
    expect(json.statusCode).toBe(200);
    const fromJson = (json.json() as { results: ExplainAnswer[] }).results;
    for (const [i, b] of [bodies[1], bodies[2]].entries()) {
      const direct = await model.explain(await readImage(b), { method: 'grad-cam', layer: 'features.6' });
      const want = direct.maps[0].data;
      const tol = 1e-4 * Math.max(...want.map(Math.abs));
      expect(maxAbsDiff(floats(results[i].maps[0].data), want)).toBeLessThanOrEqual(tol);
      expect(maxAbsDiff(floats(fromJson[i].maps[0].data), want)).toBeLessThanOrEqual(tol);
    }
  });

  it('takes back the options an answer reports, nulls included (grid: null, prefixTokens: null were a 400)', async () => {
    const payload = (options: Record<string, unknown>) => ({ image: bodies[3].toString('base64'), options: { ...options, data: true } });
    const first = await service.app.inject({ method: 'POST', url: '/explain', payload: payload({ method: 'grad-cam', layer: 'features.6' }) });
    expect(first.statusCode).toBe(200);
    const answer = first.json() as ExplainAnswer & { options: Record<string, unknown> };
    expect(answer.options).toMatchObject({ grid: null, prefixTokens: null });
    const again = await service.app.inject({ method: 'POST', url: '/explain', payload: payload(answer.options) });
    expect(again.statusCode, again.body).toBe(200);
    expect((again.json() as ExplainAnswer).maps[0].data).toBe(answer.maps[0].data);
    // null where the library takes no null is its typed error, as any other wrong value.
    const bad = await service.app.inject({ method: 'POST', url: '/explain', payload: payload({ method: 'grad-cam', layer: null }) });
    expect(bad.statusCode).toBe(400);
    expect(bad.json()).toMatchObject({ error: { code: 'ERR_INVALID_ARG_TYPE', argument: 'options.layer' } });
  });

  it('answers bad requests with 400 and a typed error, unknown routes with 404', async () => {
    const ask = async (url: string, payload: Buffer | object = bodies[0]) => {
      const r = await service.app.inject({ method: 'POST', url, payload, headers: Buffer.isBuffer(payload) ? { 'content-type': 'image/png' } : {} });
      return { status: r.statusCode, error: (r.json() as { error: { code: string; argument?: string; message: string } }).error };
    };
    expect(await ask('/predict', Buffer.from('not an image'))).toMatchObject({ status: 400, error: { code: 'ERR_IMAGE_DECODE' } });
    expect(await ask('/explain?method=nope')).toMatchObject({ status: 400, error: { code: 'ERR_INVALID_ARG_VALUE', argument: 'options.method' } });
    expect(await ask('/explain?layer=features.6')).toMatchObject({ status: 400, error: { code: 'ERR_INVALID_ARG_TYPE', argument: 'options.method' } });
    // A repeated parameter is an error, not "the last one wins".
    const repeated = await ask('/explain?method=gradient&method=rise');
    expect(repeated).toMatchObject({ status: 400, error: { code: 'ERR_INVALID_ARG_VALUE', argument: 'options.method' } });
    expect(repeated.error.message).toMatch(/appears 2 times/);
    // Options the library checks give its own typed errors.
    expect(await ask('/explain?method=grad-cam&layer=nope')).toMatchObject({ status: 400, error: { code: 'ERR_LAYER_NOT_FOUND' } });
    expect(await ask('/explain?method=gradient&target=elephant')).toMatchObject({
      status: 400,
      error: { code: 'ERR_INVALID_ARG_VALUE', argument: 'options.target' },
    });
    expect(await ask('/explain', { image: bodies[0].toString('base64'), options: { method: 'gradient', smooth: 'x' } })).toMatchObject({
      status: 400,
      error: { code: 'ERR_INVALID_ARG_TYPE', argument: 'options.smooth' },
    });
    expect(await ask('/explain?method=gradient', { image: 'aGk=', extra: 1 })).toMatchObject({
      status: 400,
      error: { code: 'ERR_INVALID_ARG_VALUE', argument: 'extra' },
    });
    expect(await ask('/explain?method=gradient', { image: bodies[0].toString('base64'), options: { method: 'gradient' } })).toMatchObject({
      status: 400,
      error: { argument: 'options.method' },
    });
    expect(await ask('/predict?top=3&extra=1')).toMatchObject({ status: 400, error: { argument: 'options.extra' } });
    const missing = await service.app.inject({ method: 'GET', url: '/nothing' });
    expect(missing.statusCode).toBe(404);
    expect(missing.json()).toMatchObject({ error: { code: 'ERR_NOT_FOUND' } });
  });

  it('answers GET and HEAD /health, and /ready', async () => {
    expect((await fetch(`${base}/health`)).status).toBe(200);
    const head = await fetch(`${base}/health`, { method: 'HEAD' });
    expect(head.status).toBe(200);
    expect(await head.text()).toBe('');
    const ready = await service.app.inject({ method: 'GET', url: '/ready' });
    expect(ready.json()).toEqual({ ready: true });
  });

  it('serves /metrics in the Prometheus text format', async () => {
    await post('/predict', bodies[0]);
    await service.app.inject({ method: 'POST', url: '/explain?method=nope', payload: bodies[0], headers: { 'content-type': 'image/png' } });
    const r = await fetch(`${base}/metrics`);
    expect(r.headers.get('content-type')).toMatch(/^text\/plain/);
    const families = await getMetricsFromStream(Readable.from([await r.text()]));
    const family = (name: string, type: string) => {
      expect(families[name], name).toBeDefined();
      expect(families[name].type).toBe(type);
      return families[name].data;
    };
    const requests = family('torch_saliency_http_requests_total', 'counter') as PromData[];
    const count = (labels: Record<string, string>) =>
      requests.filter((m) => Object.entries(labels).every(([k, val]) => m.labels[k] === val)).reduce((a, m) => a + m.value, 0);
    expect(count({ route: '/predict', method: 'POST', status: '200' })).toBeGreaterThanOrEqual(21);
    expect(count({ route: '/explain', status: '400' })).toBeGreaterThanOrEqual(1);
    const duration = family('torch_saliency_http_request_duration_seconds', 'histogram') as PromHistogramData[];
    expect(duration.find((m) => m.labels.route === '/predict')!.count).toBeGreaterThanOrEqual(21);
    const batches = family('torch_saliency_batch_jobs', 'histogram') as PromHistogramData[];
    const gradient = batches.find((m) => m.labels.kind === 'explain' && m.labels.method === 'gradient')!;
    expect(gradient.count).toBeGreaterThan(0);
    expect(gradient.sum).toBeGreaterThan(gradient.count); // merged: more jobs than calls
    expect((family('torch_saliency_batch_merged_jobs_total', 'counter') as PromData[])[0].value).toBeGreaterThan(0);
    const native = family('torch_saliency_native_call_seconds', 'histogram') as PromHistogramData[];
    expect(native.some((m) => m.labels.method === 'gradient' && m.labels.outcome === 'ok')).toBe(true);
    expect((family('torch_saliency_queue_depth', 'gauge') as PromData[])[0]).toMatchObject({ labels: { model: 'default' }, value: 0 });
    expect((family('torch_saliency_cpu_cache_bytes', 'gauge') as PromData[])[0].value).toBeGreaterThanOrEqual(0);
    expect((family('nodejs_eventloop_lag_seconds', 'gauge') as PromData[])[0].value).toBeGreaterThanOrEqual(0);
    expect((family('process_resident_memory_bytes', 'gauge') as PromData[])[0].value).toBeGreaterThan(0);
  });
});

describe('models from a folder', () => {
  let dir: string;
  let served: ServedModel[];
  let folder: SaliencyService;

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'ts-models-'));
    copyFileSync(modelPath('shapes_traced.pt'), join(dir, 'shapes.pt'));
    copyFileSync(labels, join(dir, 'shapes.labels.txt'));
    copyFileSync(modelPath('shapes_scripted.pt'), join(dir, 'shapes-scripted.pt'));
    served = await loadModelFolder(dir, { device: 'cpu' });
    folder = createModelService(served);
  });

  afterAll(async () => {
    await folder.close();
    for (const s of served) s.model.dispose();
    rmSync(dir, { recursive: true, force: true });
  });

  it('lists the models and serves each by name, never by path', async () => {
    const list = await folder.app.inject({ method: 'GET', url: '/v1/models' });
    expect((list.json() as { models: { name: string; labels?: number }[] }).models).toMatchObject([{ name: 'shapes', labels: 4 }, { name: 'shapes-scripted' }]);
    const r = await folder.app.inject({ method: 'POST', url: '/v1/models/shapes/predict?top=1', payload: bodies[3], headers: { 'content-type': 'image/png' } });
    expect(r.statusCode).toBe(200);
    const direct = await model.predict(await readImage(bodies[3]), { top: 1 });
    expect((r.json() as { top: { label: string }[] }).top[0].label).toBe(direct.top[0].label);
    const scripted = await folder.app.inject({
      method: 'POST',
      url: '/v1/models/shapes-scripted/explain?method=gradient',
      payload: bodies[3],
      headers: { 'content-type': 'image/png' },
    });
    expect(scripted.statusCode).toBe(200);

    const unknown = await folder.app.inject({ method: 'POST', url: '/v1/models/other/predict', payload: bodies[3], headers: { 'content-type': 'image/png' } });
    expect(unknown.statusCode).toBe(404);
    expect(unknown.json()).toMatchObject({ error: { code: 'ERR_MODEL_NOT_FOUND', argument: 'model' } });
    for (const name of ['..%2Fshapes', '%2Fetc%2Fpasswd', '.shapes']) {
      const bad = await folder.app.inject({ method: 'POST', url: `/v1/models/${name}/predict`, payload: bodies[3], headers: { 'content-type': 'image/png' } });
      expect([400, 404]).toContain(bad.statusCode);
    }
    // With several models the unnamed routes have no model to use.
    const unnamed = await folder.app.inject({ method: 'POST', url: '/predict', payload: bodies[3], headers: { 'content-type': 'image/png' } });
    expect(unnamed.statusCode).toBe(404);
    expect(unnamed.json()).toMatchObject({ error: { code: 'ERR_MODEL_NOT_FOUND' } });
  });
});
