// The bundled real model (EfficientNet-Lite0, ImageNet, 224 x 224; examples/model/) against the bare libtorch
// loop (build/ts_bench_baseline) on the same model and batch, side by side in one run:
//   - predict throughput at batch 1, 8 and 32 against a bare forward;
//   - each method's time against the model's own cost: Grad-CAM and the gradient against one bare
//     forward + backward, an extremal-perturbation step (3 areas: a batch of 3) against a bare forward +
//     backward of batch 3, RISE per mask and the deletion/insertion curves per point against a bare forward
//     per image at batch 32.
// A ratio near 1 means the method costs what the model costs. TS_BENCH_ROUNDS (default 2) rounds alternate the
// addon and the bare loop; medians. Run: npm run bench -- real
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fidelity, loadModel, readImage, runtime, type Image, type Model } from '../../lib/index.js';

process.env.OMP_WAIT_POLICY ??= 'PASSIVE';

const root = join(__dirname, '..', '..');
const baselineBin = join(root, 'build', 'ts_bench_baseline');
const MODEL = join(root, 'examples', 'model', 'efficientnet_lite0.pt');
const LABELS = join(root, 'examples', 'model', 'imagenet_labels.txt');
const PHOTO = join(root, 'examples', 'photos', 'chelsea.jpg');
const SIZE = 224;
const ROUNDS = Math.max(1, Number(process.env.TS_BENCH_ROUNDS ?? 2));
const EP_ITER = 20;
const RISE_MASKS = 128;
const CURVE_STEPS = 16;

const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
};

/** ms per iteration of the bare loop: 'forward' (inference) or 'fwdbwd' (forward, backward to the input). */
function bare(mode: 'forward' | 'fwdbwd', batch: number, iters: number): number {
  const out = execFileSync(baselineBin, [MODEL, mode, String(batch), String(SIZE), String(iters)], { encoding: 'utf8' });
  return JSON.parse(out.trim().split('\n').pop()!).msPerIter;
}

async function time(fn: () => Promise<unknown>): Promise<number> {
  const t = performance.now();
  await fn();
  return performance.now() - t;
}

interface Row {
  what: string;
  addonMs: number;
  bareMs: number;
  /** What the bare time is: the model's own cost of the same work. */
  bare: string;
}

async function round(model: Model, photo: Image, rows: Map<string, { a: number[]; b: number[]; bare: string }>) {
  const add = (what: string, a: number, b: number, bareWhat: string) => {
    const r = rows.get(what) ?? { a: [], b: [], bare: bareWhat };
    r.a.push(a);
    r.b.push(b);
    rows.set(what, r);
  };
  for (const batch of [1, 8, 32]) {
    const images = Array.from({ length: batch }, () => photo);
    const iters = batch === 32 ? 1 : 2;
    await model.predict(images);
    const a =
      (await time(async () => {
        for (let i = 0; i < iters; i++) await model.predict(images);
      })) / iters;
    add(`predict, batch ${batch} (ms per batch)`, a, bare('forward', batch, iters), `forward, batch ${batch}`);
  }
  const fb1 = bare('fwdbwd', 1, 3);
  add('grad-cam at _conv_head', await time(() => model.explain(photo, { method: 'grad-cam', layer: '_conv_head' })), fb1, 'forward + backward, batch 1');
  add('gradient', await time(() => model.explain(photo, { method: 'gradient' })), fb1, 'forward + backward, batch 1');
  const ep = await time(() => model.explain(photo, { method: 'extremal-perturbation', areas: [0.05, 0.1, 0.2], maxIter: EP_ITER }));
  add(`extremal perturbation, 3 areas (ms per step, ${EP_ITER} steps)`, ep / EP_ITER, bare('fwdbwd', 3, 3), 'forward + backward, batch 3');
  const fwd32PerImage = bare('forward', 32, 1) / 32;
  const rise = await time(() => model.explain(photo, { method: 'rise', numMasks: RISE_MASKS }));
  add(`rise (ms per mask, ${RISE_MASKS} masks)`, rise / RISE_MASKS, fwd32PerImage, 'forward per image at batch 32');
  const map = (await model.explain(photo, { method: 'grad-cam', layer: '_conv_head' })).maps[0];
  const top = (await model.predict([photo], { top: 1 }))[0].top[0].index;
  const curves = await time(() => fidelity(model, photo, map, top, { steps: CURVE_STEPS }));
  add(
    `deletion + insertion curves (ms per point, ${2 * (CURVE_STEPS + 1)} points)`,
    curves / (2 * (CURVE_STEPS + 1)),
    fwd32PerImage,
    'forward per image at batch 32',
  );
}

async function main() {
  if (!existsSync(baselineBin)) throw new Error(`${baselineBin} is missing: build with npm run build:native`);
  const rt = runtime();
  console.log(
    `EfficientNet-Lite0 at ${SIZE} x ${SIZE}; libtorch ${rt.torchVersion}, ${rt.threads} threads, ${rt.availableCores} cores; ${ROUNDS} rounds, medians`,
  );
  const model = await loadModel(MODEL, { device: 'cpu', labels: LABELS });
  const photo = await readImage(PHOTO, { size: SIZE });
  const acc = new Map<string, { a: number[]; b: number[]; bare: string }>();
  for (let r = 0; r < ROUNDS; r++) await round(model, photo, acc);
  model.dispose();
  const rows: Row[] = [...acc].map(([what, r]) => ({ what, addonMs: median(r.a), bareMs: median(r.b), bare: r.bare }));
  console.log('\nwhat                                                       addon ms    bare ms   addon/bare   bare loop');
  for (const r of rows) {
    console.log(
      `${r.what.padEnd(58)} ${r.addonMs.toFixed(1).padStart(9)} ${r.bareMs.toFixed(1).padStart(10)} ${(r.addonMs / r.bareMs).toFixed(2).padStart(12)}   ${r.bare}`,
    );
  }
  mkdirSync(join(root, 'bench-out'), { recursive: true });
  writeFileSync(join(root, 'bench-out', 'real.json'), JSON.stringify({ torch: rt.torchVersion, threads: rt.threads, rounds: ROUNDS, rows }, null, 2) + '\n');
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
