// soak benchmark: 1000 calls on one model, mixed methods and bad inputs, several at once; RSS sampled after
// every 100 calls. After warm-up (the first 200 calls) RSS must stay flat: the run fails (exit 1) when it
// grows by more than TS_SOAK_MAX_GROWTH_MB (default 64) from call 200 to the end.
// Measured here: 1000 calls in 15 s, RSS 408 -> 432 MB from call 200; 4000 calls level off at 447-452 MB
// from call 1900 (allocator and JS heap settling, not a per-call leak).
// Run: npx tsx scripts/bench/soak.ts   (TS_SOAK_CALLS sets the calls, default 1000)
import { join } from 'node:path';
import { loadModel, readImage, TorchSaliencyError, type Model } from '../../lib/index.js';

const root = join(__dirname, '..', '..');
const CALLS = Number(process.env.TS_SOAK_CALLS ?? 1000);
const MAX_GROWTH_MB = Number(process.env.TS_SOAK_MAX_GROWTH_MB ?? 64);
const CONCURRENCY = 4;

async function main() {
  const model: Model = await loadModel(join(root, 'test', 'fixtures', 'models', 'shapes_traced.pt'), { device: 'cpu' });
  const image = await readImage(join(root, 'examples', 'images', 'disc.png'), { size: 32 });
  const nan = { ...image, data: image.data.slice() };
  nan.data[5] = NaN;
  const calls: (() => Promise<unknown>)[] = [
    () => model.explain(image, { method: 'grad-cam', layer: 'features.6' }),
    () => model.explain(image, { method: 'guided-backprop' }),
    () => model.explain(image, { method: 'gradient' }),
    () => model.explain(image, { method: 'rise', numMasks: 200 }),
    () => model.explain(image, { method: 'extremal-perturbation', maxIter: 20, areas: [0.1, 0.2] }),
    () => model.layerShapes([32, 32]),
    () => model.predict(image),
    () => model.explain(nan, { method: 'gradient' }), // ERR_NON_FINITE_INPUT
    () => model.explain(image, { method: 'grad-cam', layer: 'nope' }), // ERR_LAYER_NOT_FOUND
    () => readImage(Buffer.from('not an image')), // ERR_IMAGE_DECODE
    () => model.explain(image, { method: 'rise', numMasks: 0 }), // ERR_OUT_OF_RANGE
  ];
  const errors: Record<string, number> = {};
  const samples: { calls: number; rssMB: number }[] = [];
  let next = 0;
  let done = 0;
  const start = performance.now();
  await Promise.all(
    Array.from({ length: CONCURRENCY }, async () => {
      while (next < CALLS) {
        const i = next++;
        try {
          await calls[i % calls.length]();
        } catch (e) {
          if (!(e instanceof TorchSaliencyError)) throw e;
          errors[e.code] = (errors[e.code] ?? 0) + 1;
        }
        done++;
        if (done % 100 === 0) samples.push({ calls: done, rssMB: Math.round(process.memoryUsage().rss / 2 ** 20) });
      }
    }),
  );
  model.dispose();
  const seconds = (performance.now() - start) / 1000;
  console.log(`soak: ${CALLS} calls (${calls.length} kinds, ${CONCURRENCY} at once) in ${seconds.toFixed(1)} s; typed errors ${JSON.stringify(errors)}`);
  console.log(`RSS MB by calls: ${samples.map((s) => `${s.calls}:${s.rssMB}`).join(' ')}`);
  const base = samples.find((s) => s.calls >= Math.min(200, CALLS)) ?? samples[0];
  const growth = Math.max(...samples.filter((s) => s.calls >= base.calls).map((s) => s.rssMB)) - base.rssMB;
  console.log(`RSS growth after warm-up (from ${base.calls} calls): ${growth} MB (limit ${MAX_GROWTH_MB} MB)`);
  if (growth > MAX_GROWTH_MB) process.exit(1);
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
