// The HTTP service: concurrent requests get the same answers as direct calls, and explain requests that
// arrive together are merged into fewer native calls.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { createService, loadModel, readImage, type Model, type SaliencyService } from '../../lib/index.js';
import { FIXTURES, model as modelPath } from './helpers.js';

const shapes = join(FIXTURES, 'shapes');
const files = readdirSync(shapes)
  .filter((f) => f.endsWith('.png'))
  .sort()
  .slice(0, 8);

let model: Model;
let service: SaliencyService;
let base: string;

beforeAll(async () => {
  model = await loadModel(modelPath('shapes_traced.pt'), { device: 'cpu', labels: join(FIXTURES, 'models', 'shapes_labels.txt') });
  service = createService(model, { maxBatch: 16 });
  const address = await service.listen(0, '127.0.0.1');
  base = `http://127.0.0.1:${address.port}`;
});

afterAll(async () => {
  await service.close();
  model.dispose();
});

const post = (path: string, body: Buffer) => fetch(`${base}${path}`, { method: 'POST', body, headers: { 'content-type': 'image/png' } });

describe('service', () => {
  it('answers concurrent predictions as direct calls do', async () => {
    const bodies = files.map((f) => readFileSync(join(shapes, f)));
    const responses = await Promise.all(bodies.map((b) => post('/predict?top=2', b)));
    for (let i = 0; i < files.length; i++) {
      expect(responses[i].status).toBe(200);
      const got = (await responses[i].json()) as { top: { index: number; probability: number }[] };
      const direct = await model.predict(await readImage(bodies[i]), { top: 2 });
      expect(got.top.map((t) => t.index)).toEqual(direct.top.map((t) => t.index));
      expect(got.top[0].probability).toBeCloseTo(direct.top[0].probability, 5);
    }
  });

  it('merges concurrent explain requests with the same options and returns each its own maps', async () => {
    const before = service.stats();
    const bodies = files.map((f) => readFileSync(join(shapes, f)));
    const responses = await Promise.all(bodies.map((b) => post('/explain?method=gradient&target=top-1&data=1', b)));
    const after = service.stats();
    expect(after.explainRequests - before.explainRequests).toBe(files.length);
    // The first request starts alone; the others arrive while it runs and share the next call(s).
    expect(after.explainCalls - before.explainCalls).toBeLessThan(files.length);
    expect(after.largestMerge).toBeGreaterThan(1);
    for (let i = 0; i < files.length; i++) {
      expect(responses[i].status).toBe(200);
      const got = (await responses[i].json()) as { maps: { data: string; height: number; width: number; target: number }[]; batch: number };
      expect(got.maps).toHaveLength(1);
      const image = await readImage(bodies[i]);
      const direct = await model.explain(image, { method: 'gradient' });
      expect(got.maps[0].target).toBe(direct.maps[0].target);
      const buf = Buffer.from(got.maps[0].data, 'base64');
      const data = new Float32Array(buf.buffer, buf.byteOffset, buf.byteLength / 4);
      const want = direct.maps[0].data;
      let maxDiff = 0;
      let maxVal = 0;
      for (let k = 0; k < want.length; k++) {
        maxDiff = Math.max(maxDiff, Math.abs(data[k] - want[k]));
        maxVal = Math.max(maxVal, Math.abs(want[k]));
      }
      expect(maxDiff).toBeLessThanOrEqual(1e-4 * maxVal);
    }
  });

  it('returns pictures when asked', async () => {
    const r = await post('/explain?method=gradient&picture=overlay', readFileSync(join(shapes, files[0])));
    const got = (await r.json()) as { maps: { png: string }[] };
    const png = Buffer.from(got.maps[0].png, 'base64');
    expect(png.subarray(1, 4).toString()).toBe('PNG');
  });

  it('answers bad requests with 400 and a typed error, and unknown routes with 404', async () => {
    const notImage = await post('/predict', Buffer.from('not an image'));
    expect(notImage.status).toBe(400);
    expect(((await notImage.json()) as { error: { code: string } }).error.code).toBe('ERR_IMAGE_DECODE');
    const badMethod = await post('/explain?method=nope', readFileSync(join(shapes, files[0])));
    expect(badMethod.status).toBe(400);
    expect(((await badMethod.json()) as { error: { code: string; argument: string } }).error).toMatchObject({
      code: 'ERR_INVALID_ARG_VALUE',
      argument: 'options.method',
    });
    const missing = await fetch(`${base}/nothing`);
    expect(missing.status).toBe(404);
    const health = (await (await fetch(`${base}/health`)).json()) as { ok: boolean };
    expect(health.ok).toBe(true);
  });
});
