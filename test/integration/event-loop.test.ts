// A long forward runs off the event loop: a 10 ms timer keeps firing on time while it runs.
import { describe, expect, it } from 'vitest';
import { loadModel } from '../../lib/index.js';
import { model } from './helpers.js';

describe('event loop', () => {
  it('a timer keeps firing (max lag under 50 ms) during a long forward', async () => {
    // A big batch through the benchmark's ResNet-like model (about 60 M multiply-adds per image) makes the
    // forward long while its input stays small (1.5 MB): the check is about the forward, not the copy of
    // the input, which happens on the calling thread (about 1 ms per MB on a busy machine).
    await using m = await loadModel(model('bench_resnet_traced.pt'), { device: 'cpu' });
    const [n, c, h, w] = [32, 3, 64, 64];
    const data = Float32Array.from({ length: n * c * h * w }, (_, i) => (i % 251) / 251);
    await m.predict({ data: data.subarray(0, c * h * w), shape: [1, c, h, w] }); // warm up

    const period = 10;
    let ticks = 0;
    let maxLag = 0;
    let last = performance.now();
    const timer = setInterval(() => {
      const now = performance.now();
      maxLag = Math.max(maxLag, now - last - period);
      last = now;
      ticks++;
    }, period);
    const start = performance.now();
    let out;
    try {
      out = await m.predict({ data, shape: [n, c, h, w] });
    } finally {
      clearInterval(timer);
    }
    const end = performance.now();
    maxLag = Math.max(maxLag, end - last - period); // the gap between the last tick and the end counts too
    const elapsed = end - start;
    expect(out).toHaveLength(n);
    // The forward must be long enough for the check to mean something.
    expect(elapsed).toBeGreaterThan(200);
    expect(ticks).toBeGreaterThanOrEqual(Math.floor(elapsed / (period + 50)));
    expect(maxLag).toBeLessThan(50);
  });
});
