/**
 * Extremal perturbation on the real model (EfficientNet-Lite0, 224 px, one photo, TorchRay's 4 pointing-game
 * areas in one batch) and on the small bench CNN (~1.0 M parameters, 224 px), side by side in one run:
 *   - ms per step of the plain loop (float32, contiguous, unfrozen) and of each speed option
 *     (memoryFormat 'channels-last', freeze, both), in interleaved rounds (every round runs every variant,
 *     in a rotated order): medians, and the median of the rounds' ratios to plain;
 *   - the bare libtorch forward+backward of the same batch (build/ts_bench_baseline, warm allocator), plain
 *     and on the same channels-last / frozen copy: the limit of each variant;
 *   - where a step goes (details.timings.phases): the mask work (generator, perturbation, objective, update)
 *     apart from the model's forward and backward;
 *   - TorchRay 1.0's extremal_perturbation per step on the same model, photo and areas, when a Python with
 *     torch and torchray is found (EP_BENCH_PYTHON, default python3; it runs PyTorch's own libtorch, named
 *     in the output);
 *   - seconds per image of a default 800-step run, EXTRAPOLATED from the measured steps (ms per step x 800,
 *     plus the measured setup), for each.
 * bfloat16 (precision 'bf16') is measured too when the addon runs on libtorch 2.x (TORCH_SALIENCY_ADDON pointing
 * at a build against PyPI torch, as scripts/check-pytorch-libtorch.sh makes).
 * Run: npm run bench -- ep-real. EP_REAL_ITERS (default 10) steps per call (EP_REAL_SMALL_ITERS, default 40, on
 * the small CNN; EP_REAL_ONLY=real|small runs one model), EP_REAL_ROUNDS (default 3)
 * rounds, EP_BENCH_THREADS (default 1) intra-op threads on both sides, EP_REAL_TORCHRAY_ITERS (default 3).
 */
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { loadModel, readImage, runtime, type ExtremalPerturbationOptions, type Image, type Model } from '../../lib/index.js';
import { printParity, type ParitySummary } from './_ep-parity-table.js';

process.env.OMP_WAIT_POLICY ??= 'PASSIVE';

const root = join(__dirname, '..', '..');
// beside the addon under test (TORCH_SALIENCY_ADDON, e.g. a build against PyPI torch in build-pytorch/)
const addonPath = process.env.TORCH_SALIENCY_ADDON;
const baselineBin = join(addonPath ? dirname(dirname(addonPath)) : join(root, 'build'), 'ts_bench_baseline');
const REAL = join(root, 'examples', 'model', 'efficientnet_lite0.pt');
const PHOTO = join(root, 'examples', 'photos', 'chelsea.jpg');
const SMALL = join(tmpdir(), 'torch-saliency-ep-bench-cnn.pt'); // the extremal-perturbation bench's CNN
const SIZE = 224;
const AREAS = [0.025, 0.05, 0.1, 0.2];
const DEFAULT_STEPS = 800;
const ITERS = Number(process.env.EP_REAL_ITERS ?? 10);
// The small CNN's steps are ~20x cheaper: more of them per call, so that each call's first steps (a new
// copy of the model: its graph executor profiles and optimises on the first runs) weigh as little as in
// the real model's calls.
const SMALL_ITERS = Number(process.env.EP_REAL_SMALL_ITERS ?? 40);
const ONLY = process.env.EP_REAL_ONLY; // 'real' | 'small': one model only
const ROUNDS = Number(process.env.EP_REAL_ROUNDS ?? 3);
const THREADS = Number(process.env.EP_BENCH_THREADS ?? 1);
const WARM = 'glibc.malloc.mmap_threshold=4294967295:glibc.malloc.trim_threshold=4294967295';

interface Variant {
  name: string;
  options: ExtremalPerturbationOptions;
  bareMode: string;
}
const torchMajor = Number(runtime().torchVersion.split('.')[0]);
const VARIANTS: Variant[] = [
  { name: 'plain', options: { memoryFormat: 'contiguous', freeze: false }, bareMode: 'fwdbwd' },
  { name: 'channels-last', options: { memoryFormat: 'channels-last', freeze: false }, bareMode: 'fwdbwd-cl' },
  { name: 'freeze', options: { memoryFormat: 'contiguous', freeze: true }, bareMode: 'fwdbwd-frozen' },
  { name: 'channels-last + freeze', options: { memoryFormat: 'channels-last', freeze: true }, bareMode: 'fwdbwd-frozen-cl' },
  // bfloat16 needs libtorch 2.x (ERR_UNSUPPORTED on 1.13): measured only there
  ...(torchMajor >= 2
    ? [
        {
          name: 'cl + freeze + bf16',
          options: { memoryFormat: 'channels-last', freeze: true, precision: 'bf16' },
          bareMode: 'fwdbwd-frozen-cl-bf16',
        } as Variant,
      ]
    : []),
];

const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
};

function bare(model: string, mode: string, iters: number): number {
  const args = [model, mode, String(AREAS.length), String(SIZE), String(iters)];
  const env = { ...process.env, GLIBC_TUNABLES: WARM };
  const out = execFileSync('taskset', ['-c', `0-${THREADS - 1}`, baselineBin, ...args], { encoding: 'utf8', env });
  return (JSON.parse(out.trim().split('\n').pop()!) as { msPerIter: number }).msPerIter;
}

/** TorchRay's ms per step on the same model, image and areas, or why it could not run. */
function torchray(model: string, image: Image, target: number): { msPerStep: number; torch: string } | string {
  const python = process.env.EP_BENCH_PYTHON ?? 'python3';
  const file = join(tmpdir(), `torch-saliency-ep-real-${process.pid}.f32`);
  writeFileSync(file, Buffer.from(image.data.buffer, image.data.byteOffset, image.data.byteLength));
  const iters = process.env.EP_REAL_TORCHRAY_ITERS ?? '3';
  try {
    const out = execFileSync(
      'taskset',
      [
        '-c',
        `0-${THREADS - 1}`,
        python,
        join(__dirname, 'torchray_ep_step.py'),
        model,
        file,
        String(SIZE),
        String(target),
        iters,
        String(THREADS),
        ...AREAS.map(String),
      ],
      { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] },
    );
    return JSON.parse(out.trim().split('\n').pop()!) as { msPerStep: number; torch: string };
  } catch (e) {
    const msg = String((e as { stderr?: string }).stderr ?? e)
      .trim()
      .split('\n')
      .pop();
    return `not run (${python}: ${msg}; set EP_BENCH_PYTHON to a Python with torch and torchray)`;
  }
}

interface Measured {
  name: string;
  stepMs: number[];
  bareMs: number[];
  ratioToPlain: number[];
  setupMs: number[];
  maskMs: number[]; // generator + perturbation + objective + update, per step
  forwardMs: number[];
  backwardMs: number[];
  channelsLast: boolean;
  frozen: boolean;
}

async function measure(
  label: string,
  path: string,
  model: Model,
  image: Image,
  target: number,
  iters: number,
  perRound?: () => number | undefined,
): Promise<{ rows: Measured[]; extra: number[] }> {
  const extra: number[] = [];
  const m: Measured[] = VARIANTS.map((v) => ({
    name: v.name,
    stepMs: [],
    bareMs: [],
    ratioToPlain: [],
    setupMs: [],
    maskMs: [],
    forwardMs: [],
    backwardMs: [],
    channelsLast: false,
    frozen: false,
  }));
  const run = (v: Variant, iters: number) =>
    model.explain(image, { method: 'extremal-perturbation', target, areas: AREAS, maxIter: iters, batchSize: AREAS.length, ...v.options });
  for (const v of VARIANTS) await run(v, 2); // warm-up: allocator, the frozen graph's profiling runs
  for (let r = 0; r < ROUNDS; r++) {
    const order = VARIANTS.map((_, i) => (i + r) % VARIANTS.length);
    const step: number[] = [];
    for (const i of order) {
      const res = await run(VARIANTS[i], iters);
      const t = res.details.timings,
        p = t.phases!;
      step[i] = t.msPerIteration;
      m[i].stepMs.push(t.msPerIteration);
      m[i].setupMs.push(t.setupMs);
      m[i].maskMs.push(p.maskMs + p.perturbMs + p.objectiveMs + p.updateMs);
      m[i].forwardMs.push(p.forwardMs);
      m[i].backwardMs.push(p.backwardMs);
      m[i].channelsLast = res.details.loop.channelsLast;
      m[i].frozen = res.details.loop.frozen;
      m[i].bareMs.push(bare(path, VARIANTS[i].bareMode, iters));
    }
    VARIANTS.forEach((_, i) => m[i].ratioToPlain.push(step[i] / step[0]));
    const e = perRound?.();
    if (e !== undefined) extra.push(e);
    console.error(
      `  ${label}, round ${r + 1}: ${VARIANTS.map((v, i) => `${v.name} ${step[i].toFixed(1)} ms`).join(', ')}${e !== undefined ? `, TorchRay ${e.toFixed(0)} ms` : ''}`,
    );
  }
  return { rows: m, extra };
}

function print(label: string, rows: Measured[], iters: number, torchrayMs?: number): void {
  console.log(`\n${label}: ${AREAS.length} areas in one batch, ${SIZE} px, ${THREADS} thread(s); medians of ${ROUNDS} interleaved rounds of ${iters} steps`);
  console.log(
    'variant                   step ms  vs plain (rounds)        bare f+b ms  step/bare  mask work ms  model fwd+bwd ms   s/image, 800 steps (extrapolated)',
  );
  const plainBare = median(rows[0].bareMs);
  for (const r of rows) {
    const step = median(r.stepMs);
    const seconds = (step * DEFAULT_STEPS + median(r.setupMs)) / 1000;
    const flags = r.name === 'plain' ? '' : !r.channelsLast && r.name.includes('channels') ? ' (not applied)' : '';
    console.log(
      `${(r.name + flags).padEnd(24)} ${step.toFixed(1).padStart(8)}  ${median(r.ratioToPlain).toFixed(3)} (${r.ratioToPlain.map((x) => x.toFixed(2)).join(' ')})`.padEnd(
        58,
      ) +
        `${median(r.bareMs).toFixed(1).padStart(8)}  ${(step / median(r.bareMs)).toFixed(3).padStart(9)}  ${median(r.maskMs).toFixed(2).padStart(12)}  ` +
        `${(median(r.forwardMs) + median(r.backwardMs)).toFixed(1).padStart(16)}   ${seconds.toFixed(0).padStart(6)}`,
    );
  }
  console.log(
    `  bare plain forward+backward (the plain limit): ${plainBare.toFixed(1)} ms per step, ${((plainBare * DEFAULT_STEPS) / 1000).toFixed(0)} s per 800 steps`,
  );
  if (torchrayMs !== undefined) {
    console.log(
      `  TorchRay: ${torchrayMs.toFixed(0)} ms per step, ${((torchrayMs * DEFAULT_STEPS) / 1000).toFixed(0)} s per image (extrapolated); ` +
        rows.map((r) => `${r.name} ${(torchrayMs / median(r.stepMs)).toFixed(2)}x faster`).join(', ') +
        ' (TorchRay: median of one run per round)',
    );
  }
}

async function main(): Promise<void> {
  if (!existsSync(baselineBin)) throw new Error(`${baselineBin} is missing: build with npm run build:native`);
  if (!existsSync(SMALL)) execFileSync(baselineBin, ['make-cnn', SMALL, '1'], { stdio: 'inherit' });
  const rt = runtime();
  console.log(`ep-real: libtorch ${rt.torchVersion}, cpu kernels ${rt.cpuKernels}, ${THREADS} thread(s) of ${rt.availableCores} cores`);
  const summary: Record<string, unknown> = { torch: rt.torchVersion, threads: THREADS, iters: ITERS, smallIters: SMALL_ITERS, rounds: ROUNDS };

  if (ONLY !== 'small') {
    const real = await loadModel(REAL, { device: 'cpu', threads: THREADS });
    const photo = await readImage(PHOTO, { size: SIZE });
    const top = (await real.predict([photo], { top: 1 }))[0].top[0].index;
    // TorchRay in every round too (its steps are as exposed to the machine's load as ours)
    let tr: { msPerStep: number; torch: string } | string = torchray(REAL, photo, top);
    const { rows: realRows, extra: trSteps } = await measure('EfficientNet-Lite0', REAL, real, photo, top, ITERS, () => {
      if (typeof tr === 'string') return undefined;
      const again = torchray(REAL, photo, top);
      return typeof again === 'string' ? undefined : again.msPerStep;
    });
    if (typeof tr !== 'string' && trSteps.length) tr = { ...tr, msPerStep: median(trSteps) };
    real.dispose();
    print('EfficientNet-Lite0 (examples/model), chelsea.jpg, its top-1 class', realRows, ITERS, typeof tr === 'string' ? undefined : tr.msPerStep);
    if (typeof tr === 'string') console.log(`  TorchRay: ${tr}`);
    else console.log(`  (TorchRay ran on PyTorch ${tr.torch}'s own libtorch; the addon on libtorch ${rt.torchVersion})`);
    summary.real = realRows;
    summary.torchray = tr;
  }
  if (ONLY !== 'real') {
    const small = await loadModel(SMALL, { device: 'cpu', threads: THREADS });
    const noise: Image = { data: new Float32Array(3 * SIZE * SIZE).map((_, i) => ((i * 2654435761) >>> 8) / 2 ** 24), channels: 3, height: SIZE, width: SIZE };
    const { rows: smallRows } = await measure('bench CNN', SMALL, small, noise, 0, SMALL_ITERS);
    small.dispose();
    print('bench CNN (5 convolutions, ~1.0 M parameters, no BatchNorm), a noise image, class 0', smallRows, SMALL_ITERS);
    summary.small = smallRows;
  }
  mkdirSync(join(root, 'bench-out'), { recursive: true });
  writeFileSync(join(root, 'bench-out', 'ep-real.json'), JSON.stringify(summary, null, 1) + '\n');
  // What the options do to the 800-step masks: measured apart (hours of CPU), by scripts/ep-parity.ts
  const parity = join(root, 'docs', 'dev', 'ep-parity.json');
  if (existsSync(parity)) {
    console.log('\nparity of the 800-step masks (the last run of scripts/ep-parity.ts, docs/dev/ep-parity.json; not measured by this bench):');
    printParity(JSON.parse(readFileSync(parity, 'utf8')) as ParitySummary);
  }
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
