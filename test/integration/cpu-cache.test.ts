// The caching CPU allocator (native/core/cpu_cache.cc): libtorch's blocks of 1 MB and more are reused
// across calls, its free memory stays under its limit, it changes no result, and
// TORCH_SALIENCY_CPU_CACHE_MB sets the limit (0: libtorch's own allocator).
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { loadModel, releaseCpuCache, runtime } from '../../lib/index.js';
import { ROOT, goldenImage, model, runScript } from './helpers.js';

// 48 images of 64 x 64: the input alone is 2.4 MB, the activations more.
const images = Array.from({ length: 48 }, (_, i) => goldenImage(i % 7, 3, 64, 64));

// Runs the same predictions in a child process with the given environment; returns its scores and cache state.
function child(env: Record<string, string>): { scores: number[]; cache: ReturnType<typeof runtime>['cpuCache'] } {
  const script = `
    const { loadModel, runtime } = require(${JSON.stringify(join(ROOT, 'lib', 'index.ts'))});
    const golden = (b) => ({ data: Float32Array.from({ length: 3 * 64 * 64 }, (_, i) => 0.5 + 0.5 * Math.sin(0.1 * i + b)), channels: 3, height: 64, width: 64 });
    const images = Array.from({ length: 48 }, (_, i) => golden(i % 7)); // as goldenImage in helpers.ts
    (async () => {
      const m = await loadModel(${JSON.stringify(model('tiny_cnn_traced.pt'))}, { device: 'cpu' });
      let out;
      for (let i = 0; i < 3; i++) out = await m.predict(images);
      console.log(JSON.stringify({ scores: out.flatMap((p) => Array.from(p.logits)), cache: runtime().cpuCache }));
    })();
  `;
  return runScript<{ scores: number[]; cache: ReturnType<typeof runtime>['cpuCache'] }>(script, env);
}

describe('caching CPU allocator', () => {
  it('reuses blocks across calls and keeps its free memory under the limit', async () => {
    const cache0 = runtime().cpuCache;
    expect(cache0.enabled).toBe(true);
    expect(cache0.limitBytes).toBeGreaterThan(0);
    expect(cache0.limitBytes).toBeLessThanOrEqual(2 ** 31);
    await using m = await loadModel(model('tiny_cnn_traced.pt'), { device: 'cpu' });
    await m.predict(images);
    const first = runtime().cpuCache;
    for (let i = 0; i < 5; i++) await m.predict(images);
    const later = runtime().cpuCache;
    // the later calls found their blocks in the cache: hits grew by several per call, misses hardly
    expect(later.hits - first.hits).toBeGreaterThanOrEqual(5);
    expect(later.misses - first.misses).toBeLessThan(later.hits - first.hits);
    expect(later.cachedBytes).toBeGreaterThan(0);
    expect(later.cachedBytes).toBeLessThanOrEqual(later.limitBytes);
    // releaseCpuCache gives the free blocks back and says how much it held
    expect(releaseCpuCache()).toBe(later.cachedBytes);
    expect(runtime().cpuCache.cachedBytes).toBe(0);
    expect((await m.predict(images)).length).toBe(images.length); // and the allocator still serves
  });

  it('gives the same scores with the cache off, and honours a small limit', () => {
    const on = child({});
    const off = child({ TORCH_SALIENCY_CPU_CACHE_MB: '0' });
    const small = child({ TORCH_SALIENCY_CPU_CACHE_MB: '1' });
    expect(on.cache.enabled).toBe(true);
    expect(off.cache.enabled).toBe(false);
    expect(off.cache.hits).toBe(0);
    expect(off.scores).toEqual(on.scores);
    expect(small.cache.limitBytes).toBe(2 ** 20);
    expect(small.cache.cachedBytes).toBeLessThanOrEqual(2 ** 20);
    expect(small.scores).toEqual(on.scores);
  }, 60_000);
});
