/**
 * Benchmarks for RISE, Grad-CAM and the gradient, measured side by side in one run against the bare libtorch
 * loop (build/ts_bench_baseline) on the same model, batch and image size:
 *   - RISE: masks per second against a bare forward of the same batch of masked images (ratio);
 *   - Grad-CAM: the time of one call against a bare forward + backward of the same batch (ratio),
 *     and the plain 'gradient' method for comparison.
 * Run: npx tsx scripts/bench/methods.ts [model] [size]
 */
import { execFileSync } from 'node:child_process';
import { loadModel } from '../../lib/index.js';

const modelPath = process.argv[2] ?? 'test/fixtures/models/tiny_cnn_traced.pt';
const size = Number(process.argv[3] ?? 64);
const layer = process.argv[4] ?? 'features.4';
const riseBatch = 250;
const riseMasks = 2000;
const camBatch = 32;

let benchDevice = 'cpu'; // the addon model's device: the bare loop runs there too
function baseline(mode: 'forward' | 'fwdbwd', batch: number, iters: number): number {
  const out = execFileSync('build/ts_bench_baseline', [modelPath, mode, String(batch), String(size), String(iters), benchDevice], { encoding: 'utf8' });
  return (JSON.parse(out.trim().split('\n').pop()!) as { msPerIter: number }).msPerIter;
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)];
}

function image(seed: number) {
  return { data: Float32Array.from({ length: 3 * size * size }, (_, i) => 0.5 + 0.5 * Math.sin(0.01 * i + seed)), channels: 3, height: size, width: size };
}

async function timeit(fn: () => Promise<unknown>, repeats: number): Promise<number> {
  await fn();
  const times: number[] = [];
  for (let r = 0; r < repeats; r++) {
    const t = performance.now();
    await fn();
    times.push(performance.now() - t);
  }
  return median(times);
}

async function main(): Promise<void> {
  const model = await loadModel(modelPath);
  benchDevice = model.device;
  const one = image(0);
  const batch = Array.from({ length: camBatch }, (_, i) => image(i));
  const targets = batch.map(() => 0);

  const riseMs = await timeit(() => model.explain(one, { method: 'rise', numMasks: riseMasks, batchSize: riseBatch, target: [0, 1, 2] }), 3);
  const fwdMs = baseline('forward', riseBatch, 10);
  const riseRate = (riseMasks / riseMs) * 1000;
  const bareRate = (riseBatch / fwdMs) * 1000;

  // In-process references through the addon itself: predict() of the same batch of masked images
  // (a bare forward plus the copy in and out), and 'gradient' (a forward and backward of the model
  // itself to its input, no clone, no probe).
  const masked = Array.from({ length: riseBatch }, (_, i) => image(i));
  const predictMs = await timeit(() => model.predict(masked), 3);
  const predictRate = (riseBatch / predictMs) * 1000;

  const camMs = await timeit(() => model.explain(batch, { method: 'grad-cam', layer, target: targets, resize: false }), 5);
  const gradMs = await timeit(() => model.explain(batch, { method: 'gradient', target: targets, resize: false }), 5);
  const fbMs = baseline('fwdbwd', camBatch, 10);

  const rows = [
    {
      bench: `rise ${riseMasks} masks (batch ${riseBatch}, 3 targets)`,
      ms: riseMs,
      'masks/s': riseRate,
      'vs baseline forward': riseRate / bareRate,
      'vs predict()': riseRate / predictRate,
    },
    { bench: `baseline forward, batch ${riseBatch}`, ms: fwdMs, 'masks/s': bareRate },
    { bench: `predict(), batch ${riseBatch}`, ms: predictMs, 'masks/s': predictRate },
    { bench: `grad-cam at ${layer}, batch ${camBatch}`, ms: camMs, 'vs baseline fwd+bwd': camMs / fbMs, 'vs gradient': camMs / gradMs },
    { bench: `gradient (fwd+bwd to input), batch ${camBatch}`, ms: gradMs, 'vs baseline fwd+bwd': gradMs / fbMs },
    { bench: `baseline fwd+bwd, batch ${camBatch}`, ms: fbMs },
  ];
  console.log(`model ${modelPath}, ${size} x ${size}, device ${model.info().device}`);
  console.table(rows.map((r) => Object.fromEntries(Object.entries(r).map(([k, v]) => [k, typeof v === 'number' ? Number(v.toPrecision(4)) : v]))));
  model.dispose();
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
