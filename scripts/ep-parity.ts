/**
 * Parity of extremal perturbation's speed options on the real model (EfficientNet-Lite0, 224 px, TorchRay's
 * four pointing-game areas in one call per image): for 16 photos with their top-1 class, the IoU (regions above
 * half of each mask's maximum) of each variant's 800-step masks against the plain float32, contiguous,
 * unfrozen loop's, next to a CONTROL: the plain loop on the same photo with every input value moved by one
 * float32 ulp. The control is the noise floor: how far float rounding alone (any computation that is not bit
 * for bit the plain one) moves the masks. An option can only be judged against it.
 *
 *   npx tsx scripts/ep-parity.ts run       # works through the (variant, photo) tasks not done yet
 *   npx tsx scripts/ep-parity.ts --print   # the tables of what finished; writes docs/dev/ep-parity.json
 *                                          # (--markdown: also the table of the method's doc page)
 *
 * Resumable and parallel: each (variant, photo) task is one call (4 areas, one batch of 4 masks) whose masks
 * and record are saved under bench-out/ep-parity/torch-<version>/<variant>/ as soon as it ends; `run` skips
 * what is saved and claims a task with a lock file, so several `run` processes (one intra-op thread each,
 * EP_PARITY_THREADS) share the work and an interrupted run loses only the calls under way. Tasks run
 * photo-major (every variant of a photo before the next photo), so a cut-off run has whole rows.
 * EP_PARITY_VARIANTS (names separated by ';') picks variants; the plain loop on another libtorch (the addon
 * built against it, TORCH_SALIENCY_ADDON) saves under its own torch-<version>/plain and is tabled as a second
 * control by --print (EP_PARITY_REFERENCE: the torch version whose plain masks are the reference; default the
 * one with the most). The photos: the six bundled ones (examples/photos) and ten of scikit-image's bundled
 * data (exported by EP_PARITY_PYTHON, default python3, which must import skimage; left out with a note when
 * it cannot).
 */
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, readFileSync, renameSync, unlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadModel, readImage, runtime, type ExtremalPerturbationOptions, type Image } from '../lib/index.js';
import { parityMarkdown, printParity, type ParitySummary } from './bench/_ep-parity-table.js';

const root = join(__dirname, '..');
const MODEL = join(root, 'examples', 'model', 'efficientnet_lite0.pt');
const LABELS = join(root, 'examples', 'model', 'imagenet_labels.txt');
// EP_PARITY_MAXITER (a smoke test of the script): fewer steps, saved apart and not summarised in docs/dev
const MAXITER = Number(process.env.EP_PARITY_MAXITER ?? 800);
const OUT = join(root, 'bench-out', MAXITER === 800 ? 'ep-parity' : `ep-parity-${MAXITER}-steps`);
const SUMMARY = MAXITER === 800 ? join(root, 'docs', 'dev', 'ep-parity.json') : join(OUT, 'summary.json');
const SIZE = 224;
const AREAS = [0.025, 0.05, 0.1, 0.2];
const PIXELS = SIZE * SIZE;
// China and flower first: at area 0.025 their masks moved to another place with the options in the first run.
const BUNDLED = ['china', 'flower', 'astronaut', 'chelsea', 'coffee', 'rocket'];
const SKIMAGE = ['camera', 'coins', 'hubble_deep_field', 'immunohistochemistry', 'retina', 'moon', 'clock', 'brick', 'gravel', 'colorwheel'];
const THREADS = Number(process.env.EP_PARITY_THREADS ?? 1);

interface Variant {
  options: ExtremalPerturbationOptions;
  /** The input moved by one float32 ulp (the control). */
  ulp?: boolean;
}
/** In order of importance; 'plain' is the reference. */
const VARIANTS: Record<string, Variant> = {
  plain: { options: { memoryFormat: 'contiguous', freeze: false } },
  // every input value one float32 ulp up (zeros stay): the same loop on an input no model would tell apart
  'plain, input +1 ulp (control)': { options: { memoryFormat: 'contiguous', freeze: false }, ulp: true },
  'channels-last + freeze': { options: { memoryFormat: 'channels-last', freeze: true } },
  'channels-last + freeze + stopTolerance 0.01': { options: { memoryFormat: 'channels-last', freeze: true, stopTolerance: 0.01 } },
  'plain + stopTolerance 0.01': { options: { memoryFormat: 'contiguous', freeze: false, stopTolerance: 0.01 } },
  'channels-last': { options: { memoryFormat: 'channels-last', freeze: false } },
  freeze: { options: { memoryFormat: 'contiguous', freeze: true } },
};
const DEFAULT_VARIANTS = ['plain', 'plain, input +1 ulp (control)', 'channels-last + freeze'];

interface Pair {
  photo: string;
  target: number;
  label: string;
}
/** What one (variant, photo) call saved beside its masks. */
interface Record_ {
  variant: string;
  photo: string;
  target: number;
  areas: number[];
  steps: number[];
  seconds: number;
  threads: number;
  torch: string;
  loop: { channelsLast: boolean; frozen: boolean; precision: string };
  /** Per map, the reward (the target's score on the perturbed input) at every step: when two runs part. */
  rewardHistory: number[][];
}

const dirName = (s: string) => s.replace(/[^\w.]+/g, '_').replace(/^_|_$/g, '');
const torchDir = (torch: string) => join(OUT, `torch-${torch}`);
const maskFile = (torch: string, variant: string, photo: string) => join(torchDir(torch), dirName(variant), `${photo}.f32`);

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

/** Every value one float32 ulp up (zeros stay): bit patterns of positive floats order as the floats. */
function ulpUp(image: Image): Image {
  const data = new Float32Array(image.data);
  const bits = new Uint32Array(data.buffer);
  for (let i = 0; i < data.length; i++) if (data[i] > 0 && Number.isFinite(data[i])) bits[i] += 1;
  return { ...image, data };
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

/** A lock file naming a process that is gone is stale. */
function claim(lock: string): boolean {
  try {
    writeFileSync(lock, String(process.pid), { flag: 'wx' });
    return true;
  } catch {
    const pid = Number(readFileSync(lock, 'utf8'));
    try {
      process.kill(pid, 0);
      return false;
    } catch {
      unlinkSync(lock);
      return claim(lock);
    }
  }
}

async function run(): Promise<void> {
  const wanted = process.env.EP_PARITY_VARIANTS?.split(';').map((o) => o.trim()) ?? DEFAULT_VARIANTS;
  for (const o of wanted)
    if (!(o in VARIANTS)) throw new Error(`ep-parity: unknown variant '${o}' in EP_PARITY_VARIANTS (known: ${Object.keys(VARIANTS).join('; ')})`);
  const model = await loadModel(MODEL, { device: 'cpu', labels: LABELS, threads: THREADS });
  const torch = runtime().torchVersion;
  const files = [...BUNDLED.map((n) => join(root, 'examples', 'photos', `${n}.jpg`)), ...skimagePhotos()];
  const only = process.env.EP_PARITY_PHOTOS?.split(',');
  for (const file of files) {
    const photo = file
      .split('/')
      .pop()!
      .replace(/\.\w+$/, '');
    if (only && !only.includes(photo)) continue;
    let image: Image | undefined;
    for (const variant of wanted) {
      const masks = maskFile(torch, variant, photo);
      if (existsSync(masks)) continue;
      mkdirSync(join(torchDir(torch), dirName(variant)), { recursive: true });
      const lock = `${masks}.lock`;
      if (!claim(lock)) continue;
      try {
        image ??= await readImage(file, { size: SIZE });
        const top = (await model.predict([image], { top: 1 }))[0].top[0];
        const v = VARIANTS[variant];
        const t0 = performance.now();
        const r = await model.explain(v.ulp ? ulpUp(image) : image, {
          method: 'extremal-perturbation',
          target: top.index,
          areas: AREAS,
          maxIter: MAXITER,
          ...v.options,
        });
        const seconds = (performance.now() - t0) / 1000;
        const all = new Float32Array(AREAS.length * PIXELS);
        r.maps.forEach((map, k) => all.set(map.data, k * PIXELS));
        const record: Record_ = {
          variant,
          photo,
          target: top.index,
          areas: AREAS,
          steps: [...r.details.steps],
          seconds,
          threads: runtime().threads,
          torch,
          loop: r.details.loop,
          rewardHistory: r.details.rewardHistory.map((h) => [...h]),
        };
        writeFileSync(`${masks}.json`, JSON.stringify(record) + '\n');
        writeFileSync(`${masks}.tmp`, all);
        renameSync(`${masks}.tmp`, masks); // the masks last: a task counts as done once they are there
        console.error(`ep-parity: torch ${torch}, ${variant}, ${photo} (${top.label}): ${seconds.toFixed(0)} s`);
        const pairs = join(OUT, 'pairs.json');
        const known: Pair[] = existsSync(pairs) ? JSON.parse(readFileSync(pairs, 'utf8')) : [];
        if (!known.some((p) => p.photo === photo)) {
          known.push({ photo, target: top.index, label: top.label ?? String(top.index) });
          writeFileSync(pairs, JSON.stringify(known, null, 1) + '\n');
        }
      } finally {
        unlinkSync(lock);
      }
    }
  }
  model.dispose();
}

function readMasks(file: string): Float32Array {
  const b = readFileSync(file);
  return new Float32Array(b.buffer, b.byteOffset, b.byteLength / 4);
}

function print(): void {
  const torches = existsSync(OUT)
    ? readdirSync(OUT)
        .filter((d) => d.startsWith('torch-'))
        .map((d) => d.slice(6))
    : [];
  const photosOf = (torch: string, variant: string) => {
    const dir = join(torchDir(torch), dirName(variant));
    return existsSync(dir)
      ? readdirSync(dir)
          .filter((f) => f.endsWith('.f32'))
          .map((f) => f.slice(0, -4))
      : [];
  };
  const reference = process.env.EP_PARITY_REFERENCE ?? [...torches].sort((a, b) => photosOf(b, 'plain').length - photosOf(a, 'plain').length)[0];
  if (!reference) throw new Error(`ep-parity: nothing saved under ${OUT}: run 'npx tsx scripts/ep-parity.ts run' first`);
  const pairs: Pair[] = JSON.parse(readFileSync(join(OUT, 'pairs.json'), 'utf8'));
  const order = [...BUNDLED, ...SKIMAGE].filter((p) => photosOf(reference, 'plain').includes(p));
  const record = (torch: string, variant: string, photo: string) => JSON.parse(readFileSync(`${maskFile(torch, variant, photo)}.json`, 'utf8')) as Record_;
  // rows: every variant on the reference libtorch, then the plain loop on each other libtorch
  const rows = [
    ...Object.keys(VARIANTS)
      .filter((v) => v !== 'plain')
      .map((v) => ({ name: v, torch: reference, variant: v })),
    ...torches.filter((t) => t !== reference).map((t) => ({ name: 'plain on another libtorch (control)', torch: t, variant: 'plain' })),
  ];
  const summary: ParitySummary = {
    model: 'EfficientNet-Lite0',
    size: SIZE,
    reference,
    threads: THREADS,
    areas: AREAS,
    pairs: order.map((p) => pairs.find((x) => x.photo === p)!),
    rows: [],
  };
  const perPhoto: string[] = [];
  for (const row of rows) {
    const photos = order.filter((p) => existsSync(maskFile(row.torch, row.variant, p)));
    if (photos.length === 0) continue;
    const r: ParitySummary['rows'][number] = {
      name: row.name,
      torch: row.torch,
      photos,
      iou: [],
      steps: [],
      seconds: [],
      plainSeconds: [],
      partStep: [],
    };
    for (const p of photos) {
      const ref = readMasks(maskFile(reference, 'plain', p)),
        m = readMasks(maskFile(row.torch, row.variant, p));
      const at = (x: Float32Array, k: number) => x.subarray(k * PIXELS, (k + 1) * PIXELS);
      r.iou.push(AREAS.map((_, k) => Number(iouAtHalfMax(at(m, k), at(ref, k)).toFixed(4))));
      r.steps.push(record(row.torch, row.variant, p).steps);
      r.seconds.push(Math.round(record(row.torch, row.variant, p).seconds));
      r.plainSeconds.push(Math.round(record(reference, 'plain', p).seconds));
      // the first step whose reward is 1% (of plain's) away from plain's: where the two optimisations part
      const mine = record(row.torch, row.variant, p).rewardHistory,
        plain = record(reference, 'plain', p).rewardHistory;
      r.partStep.push(
        mine && plain // [] where a record has no history
          ? AREAS.map((_, k) => {
              const t = mine[k].findIndex((x, i) => i < plain[k].length && Math.abs(x - plain[k][i]) > 0.01 * Math.abs(plain[k][i]));
              return t < 0 ? null : t;
            })
          : [],
      );
    }
    summary.rows.push(r);
    perPhoto.push(`\n${row.name} (libtorch ${row.torch}): IoU per photo at areas ${AREAS.join(', ')}`);
    photos.forEach((p, i) =>
      perPhoto.push(
        `  ${p.padEnd(22)}${r.iou[i].map((x) => x.toFixed(2).padStart(6)).join('')}` +
          (r.partStep[i].length ? `   reward 1% off plain's from step ${r.partStep[i].map((t) => t ?? 'never').join(', ')}` : ''),
      ),
    );
  }
  console.log(perPhoto.join('\n') + '\n');
  printParity(summary);
  if (process.argv.includes('--markdown')) console.log(`\n${parityMarkdown(summary)}`);
  writeFileSync(SUMMARY, JSON.stringify(summary) + '\n');
  execFileSync(join(root, 'node_modules', '.bin', 'prettier'), ['--write', SUMMARY], { stdio: 'ignore' }); // as format:check wants it
  console.error(`\nep-parity: summary written to ${SUMMARY}`);
}

async function main(): Promise<void> {
  if (process.argv.includes('--print')) print();
  else if (process.argv.includes('run')) await run();
  else throw new Error("ep-parity: say 'run' (compute what is missing) or '--print' (table what finished)");
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
