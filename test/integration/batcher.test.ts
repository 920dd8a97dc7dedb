// The model batcher's grouping: jobs announced as incoming (their images still being decoded) wait for each
// other, so that callers who came together split into two equal calls instead of a lone call and the rest;
// a lone job with nothing announced still starts at once, and the wait is bounded. Answers equal direct calls.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { createBatcher, loadModel, readImage, type Image, type Model } from '../../lib/index.js';
import type { BatchCall } from '../../lib/batching/batcher.js';
import { FIXTURES, model as modelPath } from './helpers.js';

const shapes = join(FIXTURES, 'shapes');
let model: Model;
let images: Image[];
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

beforeAll(async () => {
  model = await loadModel(modelPath('shapes_traced.pt'), { device: 'cpu' });
  const files = readdirSync(shapes)
    .filter((f) => f.endsWith('.png'))
    .sort()
    .slice(0, 8);
  images = await Promise.all(files.map((f) => readImage(readFileSync(join(shapes, f)))));
});

afterAll(() => model.dispose());

describe('ModelBatcher', () => {
  it('jobs announced as incoming go in two calls of equal size (without the announcement: a lone call, then the rest)', async () => {
    const calls: BatchCall[] = [];
    const batcher = createBatcher(model, { onCall: (c) => calls.push(c) });
    const arrivals = images.map(() => batcher.incoming('predict'));
    // The "decodes" end one after another over ~14 ms, as a burst of requests' images do.
    const answers = await Promise.all(
      images.map(async (image, i) => {
        await sleep(2 * i);
        arrivals[i]();
        return batcher.predict(image, { top: 3 });
      }),
    );
    expect(calls.map((c) => c.jobs)).toEqual([images.length / 2, images.length / 2]);
    const direct = await model.predict(images, { top: 3 });
    answers.forEach((a, i) => {
      expect(a.batch).toBe(images.length / 2);
      expect(a.result.top.map((t) => t.index)).toEqual(direct[i].top.map((t) => t.index));
      for (let k = 0; k < direct[i].logits.length; k++) expect(a.result.logits[k]).toBeCloseTo(direct[i].logits[k], 5);
    });
  });

  it('a lone job with nothing announced starts at once; announced jobs that never come hold a call at most ~50 ms', async () => {
    const calls: BatchCall[] = [];
    const batcher = createBatcher(model, { onCall: (c) => calls.push(c) });
    await batcher.predict(images[0]); // warm
    // Idle, nothing announced: the call starts in the same turn of the event loop.
    const started = batcher.predict(images[1]);
    expect(batcher.running).toBe(1);
    await started;
    await sleep(30); // past the moment after a call when its callers may come back

    // Three announced, one submitted: it waits for the two others (more are decoding than wait), not for ever.
    const never = [batcher.incoming('predict'), batcher.incoming('predict')];
    batcher.incoming('predict')();
    const t0 = performance.now();
    const held = batcher.predict(images[2]);
    expect(batcher.running).toBe(0);
    await held;
    const waited = performance.now() - t0;
    expect(waited).toBeGreaterThanOrEqual(45);
    expect(waited).toBeLessThan(1000);
    never.forEach((gone) => gone());
    expect(calls.map((c) => c.jobs)).toEqual([1, 1, 1]);
  });
});
