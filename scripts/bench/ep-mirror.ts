/**
 * The extremal-perturbation step with and without the generator's mirrored vectors (issue 18, item 4: the
 * small-model case), side by side in one run: 224 px, the 4 areas in one batch, one thread, default options.
 * The mirrored kernels (native/core/methods/extremal_perturbation/smooth_max_kernels.cc, mirror_plan) take a
 * support row's terms at -dx from those at dx; TORCH_SALIENCY_EP_MIRROR=0, read when each call starts, turns
 * them off, so one process runs both. Each round runs the bare libtorch forward+backward of the batch
 * (build/ts_bench_baseline, warm allocator), then both steps in an order that alternates between rounds.
 * Printed per model: medians (and bests) over the rounds of the step, of the generator's forward (phases.maskMs) and of
 * the step's backward (phases.backwardMs: the model's and the mask ops', the generator's backward among
 * them), the mask work (step less the bare forward+backward) and its share of the bare step, and the median
 * of the rounds' own ratios. Every call's masks must be bit-identical between the two (checked: exit 1).
 *
 * Models: the bench CNN (~1.0 M parameters) and its quarter-width copy, made by `ts_bench_baseline make-cnn`
 * as the extremal-perturbation bench makes them, and EfficientNet-Lite0 (examples/model) on chelsea.jpg.
 * EP_MIRROR_ROUNDS (default 9), EP_MIRROR_ONLY ('cnn' | 'real'), EP_BENCH_THREADS (default 1).
 */
import { execFileSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadModel, readImage, runtime, type Image, type Model } from '../../lib/index.js';
import { noiseImage } from './_noise.js';

const root = join(__dirname, '..', '..');
const baselineBin = join(root, 'build', 'ts_bench_baseline');
const SIZE = 224;
const AREAS = [0.025, 0.05, 0.1, 0.2];
const ROUNDS = Number(process.env.EP_MIRROR_ROUNDS ?? 9);
const ONLY = process.env.EP_MIRROR_ONLY;
const THREADS = Number(process.env.EP_BENCH_THREADS ?? 1);
const WARM = 'glibc.malloc.mmap_threshold=4294967295:glibc.malloc.trim_threshold=4294967295';

const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
};

function bare(model: string, iters: number): number {
  const args = [model, 'fwdbwd', String(AREAS.length), String(SIZE), String(iters)];
  const env = { ...process.env, GLIBC_TUNABLES: WARM };
  const out = execFileSync('taskset', ['-c', `0-${THREADS - 1}`, baselineBin, ...args], { encoding: 'utf8', env });
  return (JSON.parse(out.trim().split('\n').pop()!) as { msPerIter: number }).msPerIter;
}

const noise = (seed: number): Image => noiseImage(seed, SIZE);

interface Side {
  stepMs: number[];
  maskMs: number[];
  backwardMs: number[];
}
const side = (): Side => ({ stepMs: [], maskMs: [], backwardMs: [] });

async function measure(name: string, path: string, model: Model, image: Image, target: number, iters: number): Promise<Record<string, unknown>> {
  const run = async (mirror: boolean) => {
    process.env.TORCH_SALIENCY_EP_MIRROR = mirror ? '1' : '0';
    const r = await model.explain(image, { method: 'extremal-perturbation', target, areas: AREAS, maxIter: iters, batchSize: AREAS.length });
    return { timings: r.details.timings, maps: r.maps.map((m) => m.data) };
  };
  await run(true); // warm-up (the loop copy's graph executor, the allocator)
  await run(false);
  const on = side(),
    off = side();
  const bares: number[] = [],
    ratios: number[] = [];
  let identical = true;
  for (let r = 0; r < ROUNDS; r++) {
    bares.push(bare(path, iters));
    const order = r % 2 === 0 ? [true, false] : [false, true];
    const got: Record<string, Awaited<ReturnType<typeof run>>> = {};
    for (const mirror of order) got[String(mirror)] = await run(mirror);
    const a = got['true'],
      b = got['false'];
    identical &&= a.maps.every((m, i) =>
      Buffer.from(m.buffer, m.byteOffset, m.byteLength).equals(Buffer.from(b.maps[i].buffer, b.maps[i].byteOffset, b.maps[i].byteLength)),
    );
    for (const [s, t] of [
      [on, a.timings],
      [off, b.timings],
    ] as const) {
      s.stepMs.push(t.msPerIteration);
      s.maskMs.push(t.phases?.maskMs ?? NaN);
      s.backwardMs.push(t.phases?.backwardMs ?? NaN);
    }
    ratios.push(a.timings.msPerIteration / b.timings.msPerIteration);
  }
  delete process.env.TORCH_SALIENCY_EP_MIRROR;
  const bareMs = median(bares);
  const f = (x: number, d = 2) => x.toFixed(d);
  console.log(
    `${name}: ${ROUNDS} interleaved rounds of ${iters} steps, bare forward+backward ${f(bareMs, 1)} ms (median; rounds ${bares.map((x) => f(x, 1)).join(' ')})`,
  );
  const rows: Record<string, unknown>[] = [];
  for (const [label, s] of [
    ['without mirroring', off],
    ['mirrored (default)', on],
  ] as const) {
    const step = median(s.stepMs),
      work = median(s.stepMs.map((x, i) => x - bares[i]));
    const best = Math.min(...s.stepMs),
      bestWork = best - Math.min(...bares);
    console.log(
      `  ${label.padEnd(20)} step ${f(step, 1).padStart(7)} ms (best ${f(best, 1)}), generator forward ${f(median(s.maskMs))} ms (best ${f(Math.min(...s.maskMs))}), ` +
        `step backward ${f(median(s.backwardMs), 1)} ms (best ${f(Math.min(...s.backwardMs), 1)}), mask work (step - bare) ${f(work)} ms = ${f(work / bareMs, 3)} of the bare step ` +
        `(best - best: ${f(bestWork)} ms = ${f(bestWork / Math.min(...bares), 3)})`,
    );
    rows.push({
      variant: label,
      stepMs: step,
      bestStepMs: best,
      maskMs: median(s.maskMs),
      bestMaskMs: Math.min(...s.maskMs),
      backwardMs: median(s.backwardMs),
      bestBackwardMs: Math.min(...s.backwardMs),
      maskWorkMs: work,
      share: work / bareMs,
      bestMaskWorkMs: bestWork,
    });
  }
  const dMask = median(off.maskMs.map((x, i) => x - on.maskMs[i])),
    dBack = median(off.backwardMs.map((x, i) => x - on.backwardMs[i])),
    dStep = median(off.stepMs.map((x, i) => x - on.stepMs[i]));
  console.log(
    `  saved per step (median of the rounds' differences): generator forward ${f(dMask)} ms, backward ${f(dBack)} ms, step ${f(dStep)} ms; ` +
      `step ratio mirrored / without ${f(median(ratios), 3)} (rounds ${ratios.map((x) => f(x, 3)).join(' ')}); masks bit-identical: ${identical}`,
  );
  if (!identical) process.exitCode = 1;
  return { model: name, iters, bareMs, rows, savedMaskMs: dMask, savedBackwardMs: dBack, savedStepMs: dStep, ratio: median(ratios), identical };
}

async function main(): Promise<void> {
  if (!existsSync(baselineBin)) throw new Error(`${baselineBin} is missing: build with npm run build:native`);
  const rt = runtime();
  console.log(`ep-mirror: libtorch ${rt.torchVersion}, cpu kernels ${rt.cpuKernels}, ${THREADS} thread(s) of ${rt.availableCores} cores`);
  const results: Record<string, unknown>[] = [];
  if (ONLY !== 'real') {
    for (const [name, file, width, iters] of [
      ['quarter-width bench CNN', 'torch-saliency-ep-bench-cnn-small.pt', '0.25', 60],
      ['bench CNN (~1.0 M parameters)', 'torch-saliency-ep-bench-cnn.pt', '1', 30],
    ] as const) {
      const path = join(tmpdir(), file);
      if (!existsSync(path)) execFileSync(baselineBin, ['make-cnn', path, width], { stdio: 'inherit' });
      const model = await loadModel(path, { device: 'cpu', threads: THREADS });
      results.push(await measure(name, path, model, noise(1), 0, iters));
      model.dispose();
    }
  }
  if (ONLY !== 'cnn') {
    const path = join(root, 'examples', 'model', 'efficientnet_lite0.pt');
    const model = await loadModel(path, { device: 'cpu', threads: THREADS });
    const photo = await readImage(join(root, 'examples', 'photos', 'chelsea.jpg'), { size: SIZE });
    const top = (await model.predict([photo], { top: 1 }))[0].top[0].index;
    results.push(await measure('EfficientNet-Lite0, chelsea.jpg', path, model, photo, top, Number(process.env.EP_MIRROR_REAL_ITERS ?? 6)));
    model.dispose();
  }
  console.log(JSON.stringify({ bench: 'ep-mirror', torch: rt.torchVersion, threads: THREADS, rounds: ROUNDS, results }));
}

void main().catch((e: unknown) => {
  console.error(e);
  process.exit(1);
});
