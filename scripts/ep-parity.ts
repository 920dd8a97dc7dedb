/**
 * Parity of extremal perturbation's speed options on the real model (EfficientNet-Lite0, 224 px): for 16
 * image/class pairs, the IoU (regions above half of each mask's maximum) of each option's mask against the
 * plain float32, contiguous, unfrozen 800-step mask, with the steps and seconds each took.
 *
 *   npx tsx scripts/ep-parity.ts            # runs everything (about an hour on 2 shared cores), prints the table
 *   npx tsx scripts/ep-parity.ts --print    # prints the table of the last run (bench-out/ep-parity.json)
 *
 * Pairs: the six bundled photos (examples/photos) with their top-1 class and their 5th-ranked class, and four
 * photos from scikit-image's bundled data with their top-1 class (exported by EP_PARITY_PYTHON, default
 * python3, which must import skimage; skipped with a note when it cannot). One area per pair, cycling through
 * TorchRay's pointing-game areas 0.025, 0.05, 0.1, 0.2, so that one call per (option, area) runs four pairs
 * as one batch. Options run in order of importance and the JSON is rewritten after each call, so an
 * interrupted run still tables what it finished. EP_PARITY_OPTIONS (names separated by ';') picks options.
 */
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadModel, readImage, runtime, type ExtremalPerturbationOptions, type Image } from '../lib/index.js';

const root = join(__dirname, '..');
const MODEL = join(root, 'examples', 'model', 'efficientnet_lite0.pt');
const LABELS = join(root, 'examples', 'model', 'imagenet_labels.txt');
const OUT = join(root, 'bench-out', 'ep-parity.json');
const SIZE = 224;
const AREAS = [0.025, 0.05, 0.1, 0.2];
const BUNDLED = ['astronaut', 'chelsea', 'china', 'coffee', 'flower', 'rocket'];
const SKIMAGE = ['camera', 'hubble_deep_field', 'immunohistochemistry', 'coins'];

/** The options compared, each against 'plain'; 'plain' itself is the reference (IoU 1 by definition). */
const OPTIONS: Record<string, ExtremalPerturbationOptions> = {
  plain: { memoryFormat: 'contiguous', freeze: false },
  'channels-last + freeze': { memoryFormat: 'channels-last', freeze: true },
  'channels-last + freeze + stopTolerance 0.01': { memoryFormat: 'channels-last', freeze: true, stopTolerance: 0.01 },
  'channels-last': { memoryFormat: 'channels-last', freeze: false },
  freeze: { memoryFormat: 'contiguous', freeze: true },
  // The control: the plain loop itself with one intra-op thread instead of the cores available, i.e. the same
  // arithmetic summed in another order (as on another machine). How far rounding alone moves 800-step masks.
  'plain at 1 thread (control)': { memoryFormat: 'contiguous', freeze: false },
};
const CONTROL = 'plain at 1 thread (control)';

interface Pair {
  photo: string;
  target: number;
  label: string;
  rank: number;
  area: number;
}
interface Run {
  option: string;
  area: number;
  seconds: number;
  /** Per pair of the call (same order as `pairs`): steps run and IoU against plain. */
  pairs: number[];
  steps: number[];
  iou: number[];
  threads: number;
}
interface Results {
  size: number;
  threads: number;
  torch: string;
  pairs: Pair[];
  runs: Run[];
}

function iouAtHalfMax(a: ArrayLike<number>, b: ArrayLike<number>): number {
  let ma = 0,
    mb = 0;
  for (let i = 0; i < a.length; i++) {
    ma = Math.max(ma, a[i]);
    mb = Math.max(mb, b[i]);
  }
  let inter = 0,
    union = 0;
  for (let i = 0; i < a.length; i++) {
    const x = a[i] > ma / 2,
      y = b[i] > mb / 2;
    if (x && y) inter++;
    if (x || y) union++;
  }
  return union === 0 ? 1 : inter / union;
}

/** Writes scikit-image's bundled photos as PNGs (grey ones as RGB); [] when no Python with skimage. */
function skimagePhotos(): string[] {
  const dir = join(tmpdir(), 'torch-saliency-ep-parity-photos');
  const paths = SKIMAGE.map((n) => join(dir, `${n}.png`));
  if (paths.every((p) => existsSync(p))) return paths;
  mkdirSync(dir, { recursive: true });
  const py = [
    'import sys, numpy as np, skimage.data as d, skimage.io as io',
    'for n in sys.argv[2:]:',
    '    im = getattr(d, n)()',
    '    im = np.stack([im] * 3, -1) if im.ndim == 2 else im[..., :3]',
    "    io.imsave(f'{sys.argv[1]}/{n}.png', im.astype(np.uint8), check_contrast=False)",
  ].join('\n');
  try {
    execFileSync(process.env.EP_PARITY_PYTHON ?? 'python3', ['-c', py, dir, ...SKIMAGE], { stdio: 'inherit' });
    return paths;
  } catch {
    console.error('ep-parity: no Python with scikit-image (EP_PARITY_PYTHON): the skimage photos are left out');
    return [];
  }
}

function printTable(r: Results): void {
  const plainSeconds = (area: number) => r.runs.find((x) => x.option === 'plain' && x.area === area)?.seconds;
  console.log(
    `\nextremal perturbation parity: EfficientNet-Lite0, ${r.size} px, ${new Set(r.runs.flatMap((x) => x.pairs)).size} of ${r.pairs.length} image/class pairs ran, one area each (4 pairs per call), ` +
      `libtorch ${r.torch}, ${r.threads} threads; IoU of the regions above half of each mask's maximum against plain (float32, contiguous, unfrozen, 800 steps)`,
  );
  // seconds: wall time of the calls, each at its own moment of a shared machine's load
  console.log('option                                         pairs  steps (min-max)  seconds (vs plain)   IoU min   IoU mean');
  for (const option of Object.keys(OPTIONS)) {
    const runs = r.runs.filter((x) => x.option === option);
    if (runs.length === 0) continue;
    const ious = runs.flatMap((x) => x.iou),
      steps = runs.flatMap((x) => x.steps);
    const seconds = runs.reduce((s, x) => s + x.seconds, 0);
    const plain = runs.reduce((s, x) => s + (plainSeconds(x.area) ?? NaN), 0);
    console.log(
      `${option.padEnd(46)} ${String(ious.length).padStart(5)}  ${`${Math.min(...steps)}-${Math.max(...steps)}`.padStart(15)}  ` +
        `${seconds.toFixed(0).padStart(7)} (${(seconds / plain).toFixed(2)}x)   ${Math.min(...ious)
          .toFixed(3)
          .padStart(7)}   ${(ious.reduce((s, x) => s + x, 0) / ious.length).toFixed(3).padStart(8)}`,
    );
  }
}

async function main(): Promise<void> {
  if (process.argv.includes('--print')) {
    printTable(JSON.parse(readFileSync(OUT, 'utf8')) as Results);
    return;
  }
  const model = await loadModel(MODEL, { device: 'cpu', labels: LABELS });
  const files = [...BUNDLED.map((n) => join(root, 'examples', 'photos', `${n}.jpg`)), ...skimagePhotos()];
  const images = new Map<string, Image>();
  const pairs: Pair[] = [];
  const addPair = (photo: string, target: number, label: string, rank: number) =>
    pairs.push({ photo, target, label, rank, area: AREAS[pairs.length % AREAS.length] });
  for (const file of files) {
    const name = file
      .split('/')
      .pop()!
      .replace(/\.\w+$/, '');
    const image = await readImage(file, { size: SIZE });
    images.set(name, image);
    const top = (await model.predict([image], { top: 5 }))[0].top;
    addPair(name, top[0].index, top[0].label ?? String(top[0].index), 1);
    if (BUNDLED.includes(name)) addPair(name, top[4].index, top[4].label ?? String(top[4].index), 5);
  }
  // EP_PARITY_OPTIONS: option names separated by ';'
  const wanted = process.env.EP_PARITY_OPTIONS?.split(';').map((o) => o.trim()) ?? Object.keys(OPTIONS);
  for (const o of wanted)
    if (!(o in OPTIONS)) throw new Error(`ep-parity: unknown option '${o}' in EP_PARITY_OPTIONS (known: ${Object.keys(OPTIONS).join('; ')})`);
  // EP_PARITY_AREAS (comma-separated): only the pairs of these areas.
  const areas = process.env.EP_PARITY_AREAS ? process.env.EP_PARITY_AREAS.split(',').map(Number) : AREAS;
  const results: Results = { size: SIZE, threads: 0, torch: '', pairs, runs: [] };
  results.threads = runtime().threads;
  results.torch = runtime().torchVersion;
  const reference = new Map<number, Float32Array>(); // pair index -> plain mask
  mkdirSync(join(root, 'bench-out'), { recursive: true });
  // Area-major for the first three (plain, channels-last + freeze, with the stopping rule), so that an interrupted run has
  // all three on the pairs it finished; the single options afterwards.
  const main = ['plain', ...Object.keys(OPTIONS).slice(1, 3)].filter((o) => o === 'plain' || wanted.includes(o));
  const order: [string, number][] = [
    ...areas.flatMap((area) => main.map((option) => [option, area] as [string, number])),
    // the control last: it changes the process's thread count
    ...wanted
      .filter((o) => !main.includes(o))
      .sort((a, b) => Number(a === CONTROL) - Number(b === CONTROL))
      .flatMap((option) => areas.map((area) => [option, area] as [string, number])),
  ];
  let runner = model;
  const maskDir = join(root, 'bench-out', 'ep-parity-masks');
  const maskFile = (option: string, pair: number) => join(maskDir, `${option.replace(/[^\w]+/g, '_')}-${pair}.f32`);
  // EP_PARITY_REUSE=1: the plain masks (and their runs) of the previous run, when saved, instead of running them again
  const previous = process.env.EP_PARITY_REUSE && existsSync(OUT) ? (JSON.parse(readFileSync(OUT, 'utf8')) as Results) : undefined;
  // ... and the previous run's other options that this run does not repeat (their IoUs are against those plain masks)
  if (previous) for (const r of previous.runs) if (r.option !== 'plain' && !order.some(([o]) => o === r.option)) results.runs.push(r);
  for (const [option, area] of order) {
    const idxAll = pairs.map((p, i) => (p.area === area ? i : -1)).filter((i) => i >= 0);
    const old = previous?.runs.find((x) => x.option === 'plain' && x.area === area);
    if (option === 'plain' && old && idxAll.every((i) => existsSync(maskFile('plain', i)))) {
      for (const i of idxAll) {
        const b = readFileSync(maskFile('plain', i));
        reference.set(i, new Float32Array(b.buffer, b.byteOffset, b.byteLength / 4));
      }
      results.runs.push(old);
      console.error(`ep-parity: plain, area ${area}: reused from the previous run`);
      continue;
    }
    if (option === CONTROL && runner === model) runner = await loadModel(MODEL, { device: 'cpu', labels: LABELS, threads: 1 }); // threads are per process
    {
      const idx = pairs.map((p, i) => (p.area === area ? i : -1)).filter((i) => i >= 0);
      const t0 = performance.now();
      const r = await runner.explain(
        idx.map((i) => images.get(pairs[i].photo)!),
        { method: 'extremal-perturbation', target: idx.map((i) => pairs[i].target), areas: [area], batchSize: idx.length, ...OPTIONS[option] },
      );
      const seconds = (performance.now() - t0) / 1000;
      const run: Run = { option, area, seconds, pairs: idx, steps: [...r.details.steps], iou: [], threads: runtime().threads };
      r.maps.forEach((map, k) => {
        if (option === 'plain') reference.set(idx[k], map.data);
        run.iou.push(iouAtHalfMax(map.data, reference.get(idx[k])!));
      });
      results.runs.push(run);
      mkdirSync(maskDir, { recursive: true });
      r.maps.forEach((map, k) => writeFileSync(maskFile(option, idx[k]), map.data));
      writeFileSync(OUT, JSON.stringify(results, null, 1) + '\n');
      console.error(`ep-parity: ${option}, area ${area}: ${seconds.toFixed(0)} s, IoU ${run.iou.map((x) => x.toFixed(3)).join(' ')}`);
    }
  }
  if (runner !== model) runner.dispose();
  model.dispose();
  printTable(results);
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
