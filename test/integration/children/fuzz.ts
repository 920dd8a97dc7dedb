// Run by fuzz.test.ts in its own process: random and damaged inputs over the public API (images, models, every
// method's options, and the applications on top: evaluate() with random items and options, scanBackdoor() with
// random options, parseAnnotations() with random JSON), from a seed. Every
// call must settle within its deadline with a TorchSaliencyError whose code is not a raw ERR_TORCH /
// ERR_NATIVE, or with a result whose maps are finite. Prints one JSON line {"cases","codes","okBy","failures"}.
// Arguments: seed, seconds to spend (the cases stop starting after that).
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { evaluate, loadModel, methods, parseAnnotations, readImage, scanBackdoor, TorchSaliencyError, type Model } from '../../../lib/index.js';
import { SCAN_DEFAULTS } from '../../../lib/backdoor/scan.js';
import { INPUT_AGNOSTIC_SCAN_DEFAULTS } from '../../../lib/backdoor/scan-input-agnostic.js';
import { NEURAL_CLEANSE_SCAN_DEFAULTS } from '../../../lib/backdoor/scan-neural-cleanse.js';
import { EVALUATE_DEFAULTS } from '../../../lib/evaluate/evaluate.js';
import { FIDELITY_DEFAULTS } from '../../../lib/evaluate/fidelity.js';
import { SANITY_DEFAULTS } from '../../../lib/evaluate/sanity.js';
import { COMMON_DEFAULTS } from '../../../lib/methods/common.js';
import { METHODS } from '../../../lib/methods/index.js';

const ROOT = join(__dirname, '..', '..', '..');
const SEED = Number(process.argv[2] ?? 1);
const SECONDS = Number(process.argv[3] ?? 30);
const DEADLINE_MS = 15_000;

let state = SEED >>> 0 || 1;
function rand(): number {
  // xorshift32
  state ^= state << 13;
  state >>>= 0;
  state ^= state >>> 17;
  state ^= state << 5;
  state >>>= 0;
  return state / 2 ** 32;
}
const pick = <T>(xs: readonly T[]): T => xs[Math.floor(rand() * xs.length)];
const int = (n: number) => Math.floor(rand() * n);

const codes: Record<string, number> = {};
const failures: string[] = [];
/** Calls that succeeded, by function: the fuzz must reach the success paths too, not only the errors. */
const okBy: Record<string, number> = {};
let cases = 0;

async function check(what: string, work: (signal: AbortSignal) => Promise<unknown>) {
  cases++;
  const signal = AbortSignal.timeout(DEADLINE_MS / 3);
  let timer: NodeJS.Timeout | undefined;
  const hang = new Promise<'hang'>((resolve) => (timer = setTimeout(() => resolve('hang'), DEADLINE_MS)));
  try {
    const r = await Promise.race([work(signal), hang]);
    if (r === 'hang') failures.push(`${what}: no answer within ${DEADLINE_MS} ms`);
    else if (!finite(r)) failures.push(`${what}: a result with non-finite values`);
    else {
      codes.ok = (codes.ok ?? 0) + 1;
      const kind = what.slice(0, what.indexOf('('));
      okBy[kind] = (okBy[kind] ?? 0) + 1;
    }
  } catch (e) {
    const code = (e as { code?: string }).code ?? 'none';
    codes[code] = (codes[code] ?? 0) + 1;
    if (!(e instanceof TorchSaliencyError)) failures.push(`${what}: not a TorchSaliencyError: ${String(e).slice(0, 200)}`);
    else if (code === 'ERR_TORCH' || code === 'ERR_NATIVE') failures.push(`${what}: raw ${code}: ${e.message.slice(0, 200)}`);
  } finally {
    clearTimeout(timer);
  }
}

function finite(r: unknown): boolean {
  const maps = (r as { maps?: { data: Float32Array }[] })?.maps;
  if (maps) return maps.every((m) => m.data.every(Number.isFinite));
  const data = (r as { data?: Float32Array })?.data;
  if (data instanceof Float32Array) return data.every(Number.isFinite);
  // An evaluation: every score it reports is a number (NaN only where no pair was asked), every curve finite.
  const methods = (r as { methods?: { pointingGame?: { hits: unknown[] }; deletion?: { probabilities: Float32Array } }[] })?.methods;
  if (Array.isArray(methods))
    return methods.every((m) => (m.pointingGame?.hits ?? []).every((h) => typeof h === 'boolean') && (m.deletion?.probabilities ?? []).every(Number.isFinite));
  // A scan: finite anomaly indices or null, boxes of whole numbers.
  const classes = (r as { classes?: { anomalyIndex: number | null; box: Record<string, number> }[] })?.classes;
  if (Array.isArray(classes))
    return classes.every((c) => (c.anomalyIndex === null || Number.isFinite(c.anomalyIndex)) && Object.values(c.box).every(Number.isInteger));
  return true;
}

const VALUES: unknown[] = [-1, 0, 1, 2, 0.5, 0.999, 1e-9, 7, 64, 1e30, -1e30, NaN, Infinity, 'x', 'top-2', '', null, true, [], [0.1, 0.5], [3, 3], {}, 1e7];

function randomOptions(method: string): Record<string, unknown> {
  const keys = [...Object.keys(METHODS[method as keyof typeof METHODS].defaults), ...Object.keys(COMMON_DEFAULTS)].filter(
    (k) => k !== 'signal' && k !== 'onProgress',
  );
  const o: Record<string, unknown> = { method };
  for (const k of keys) if (rand() < 0.3) o[k] = pick(VALUES);
  if (rand() < 0.1) o[`bogus${int(3)}`] = 1;
  // Keep the long ones short enough that a valid call finishes: they are not what is fuzzed.
  for (const k of ['maxIter', 'iterations', 'numMasks', 'samples', 'refineSteps'])
    if (k in METHODS[method as keyof typeof METHODS].defaults && !(k in o)) o[k] = 3;
  return o;
}

/** evaluate()'s options: its own keys, the fidelity and sanity sub-objects, random methods (short ones kept short). */
function randomEvaluateOptions(): Record<string, unknown> {
  // A third of the calls are sound, so that the success path is fuzzed too (with sound items most of the time).
  if (rand() < 0.33)
    return {
      methods: [pick(['gradient', 'grad-cam', 'guided-backprop'])],
      scores: [pick(['pointing-game', 'deletion', 'insertion', 'sanity'])],
      fidelity: { steps: 2 },
      sanity: { points: 1, images: 1 },
      tolerance: pick([0, 1, 15, 1e9]),
    };
  const o: Record<string, unknown> = {};
  const method = () =>
    rand() < 0.5 ? pick(['gradient', 'grad-cam', 'rise', 'bogus']) : randomOptions(pick(['gradient', 'grad-cam', 'rise', 'extremal-perturbation']));
  o.methods = rand() < 0.1 ? pick(VALUES) : Array.from({ length: int(3) }, method);
  for (const k of Object.keys(EVALUATE_DEFAULTS)) if (k !== 'methods' && rand() < 0.3) o[k] = pick(VALUES);
  if (rand() < 0.3) o.scores = Array.from({ length: int(3) }, () => pick(['pointing-game', 'deletion', 'insertion', 'sanity', 'bogus']));
  if (rand() < 0.4)
    o.fidelity = Object.fromEntries(
      Object.keys(FIDELITY_DEFAULTS)
        .filter(() => rand() < 0.4)
        .map((k) => [k, pick(VALUES)]),
    );
  else o.fidelity = { steps: 2 };
  if (rand() < 0.4) o.sanity = Object.fromEntries([...Object.keys(SANITY_DEFAULTS), 'layers'].filter(() => rand() < 0.4).map((k) => [k, pick(VALUES)]));
  else o.sanity = { points: 1, images: 1 };
  if (rand() < 0.1) o[`bogus${int(3)}`] = 1;
  return o;
}

/** Annotated images for evaluate(): mostly sound, with random damage to a box, a class index or the list. */
function randomItems(): unknown {
  if (rand() < 0.05) return pick(VALUES);
  return Array.from({ length: 1 + int(3) }, (_, i) => {
    const image = rand() < 0.8 ? { data: new Float32Array(3 * 32 * 32).map(() => rand()), channels: 3, height: 32, width: 32 } : randomImage();
    const box = () =>
      rand() < 0.8
        ? [int(20), int(20), 20 + int(12), 20 + int(12)]
        : pick<unknown>([[NaN, 0, 1, 1], [5, 5, 1, 1], [0, 0, Infinity, 4], 'box', [1, 2, 3], null]);
    const objects = Array.from({ length: 1 + int(2) }, () => ({
      classIndex: rand() < 0.8 ? int(5) : pick(VALUES),
      boxes: rand() < 0.9 ? [box()] : pick(VALUES),
    }));
    return rand() < 0.05 ? pick(VALUES) : { name: rand() < 0.95 ? `image-${i}` : pick(VALUES), image, objects };
  });
}

/** scanBackdoor()'s options: the common ones, the method's own, its explain options; long ones kept short. */
function randomScanOptions(): Record<string, unknown> {
  const method = pick(['input-agnostic', 'neural-cleanse', 'input-agnostic', 'bogus']);
  const own = method === 'neural-cleanse' ? NEURAL_CLEANSE_SCAN_DEFAULTS : INPUT_AGNOSTIC_SCAN_DEFAULTS;
  const explainKeys = method === 'bogus' ? [] : Object.keys(METHODS[method as 'input-agnostic'].defaults);
  const o: Record<string, unknown> = { method, size: rand() < 0.9 ? pick([8, 16, 32, [16, 32]]) : pick(VALUES) };
  for (const k of [...Object.keys(SCAN_DEFAULTS), ...Object.keys(own), ...explainKeys])
    if (k !== 'method' && k !== 'size' && rand() < 0.15) o[k] = pick(VALUES);
  if (rand() < 0.2)
    o.classes = pick<unknown>([
      [0, 1, 2],
      [0, 0, 1],
      [0, 1, 9],
      [0, 1],
      [2, 1, 0, 3, 4],
      [-1, 0, 1],
    ]);
  // Short runs unless the option itself is fuzzed.
  const short: Record<string, number> = {
    samples: 2,
    iterations: 2,
    refineSteps: 1,
    trials: 2,
    seeds: 1,
    steps: 2,
    inputs: 2,
    maxIter: 2,
    wholeImageSteps: 2,
    wholeImageInputs: 2,
  };
  for (const [k, n] of Object.entries(short)) if ((k in own || explainKeys.includes(k)) && !(k in o)) o[k] = n;
  return o;
}

function randomImage() {
  const c = pick([1, 3, 3, 3, 4]);
  const h = pick([1, 2, 8, 16, 16]);
  const w = pick([1, 8, 16, 16]);
  const data = new Float32Array(c * h * w).map(() => rand());
  if (rand() < 0.1) data[int(data.length)] = pick([NaN, Infinity, -Infinity]);
  return rand() < 0.05 ? { data, channels: c, height: h, width: w + 1 } : { data, channels: c, height: h, width: w };
}

function mutate(bytes: Buffer): Buffer {
  const b = Buffer.from(bytes);
  switch (int(3)) {
    case 0:
      return b.subarray(0, int(b.length));
    case 1:
      for (let i = 0, n = 1 + int(16); i < n; i++) b[int(b.length)] ^= 1 << int(8);
      return b;
    default: {
      const at = int(b.length);
      b.fill(int(256), at, Math.min(b.length, at + int(4096)));
      return b;
    }
  }
}

async function main() {
  const end = Date.now() + SECONDS * 1000;
  const pngs = ['cross', 'disc', 'square', 'triangle'].map((n) => readFileSync(join(ROOT, 'examples', 'images', `${n}.png`)));
  const jpg = readFileSync(join(ROOT, 'examples', 'photos', 'chelsea.jpg'));
  const archive = readFileSync(join(ROOT, 'test', 'fixtures', 'models', 'tiny_cnn_traced.pt'));
  await using model: Model = await loadModel(join(ROOT, 'test', 'fixtures', 'models', 'tiny_cnn_traced.pt'), { device: 'cpu' });
  const names = methods();
  let round = 0;
  while (Date.now() < end) {
    round++;
    // Images: random bytes, damaged PNGs and JPEGs, with random decode options.
    const bytes = pick([() => Buffer.from(Array.from({ length: int(2000) }, () => int(256))), () => mutate(pick(pngs)), () => mutate(jpg)])();
    const readOpts = pick<Record<string, unknown>>([{}, { size: 16 }, { size: pick(VALUES) }, { channels: pick(VALUES) }, { limitInputPixels: pick(VALUES) }]);
    await check(`readImage(${bytes.length} bytes, ${JSON.stringify(readOpts)})`, async () => readImage(bytes, readOpts as never));
    // Models: truncated or damaged archives, and random bytes.
    if (round % 3 === 0) {
      const m = rand() < 0.2 ? Buffer.from(Array.from({ length: int(5000) }, () => int(256))) : mutate(archive);
      await check(`loadModel(${m.length} bytes)`, async () => {
        const loaded = await loadModel(m, { device: 'cpu' });
        try {
          return await loaded.predict(randomImage());
        } finally {
          loaded.dispose();
        }
      });
    }
    // Explanations with random options and images.
    const method = pick(names);
    const opts = randomOptions(method);
    const image = rand() < 0.2 ? [randomImage(), randomImage()] : randomImage();
    await check(`explain(${method}, ${JSON.stringify(opts)})`, (signal) => model.explain(image as never, { ...opts, signal } as never));
    await check('predict(random image)', () => model.predict(randomImage() as never, pick([{}, { top: pick(VALUES) }]) as never));
    // The applications on the public API: evaluate() and scanBackdoor() with random options, annotations as JSON.
    if (round % 2 === 0) {
      const eopts = randomEvaluateOptions();
      await check(`evaluate(${JSON.stringify(eopts)})`, (signal) => evaluate(model, randomItems() as never, { ...eopts, signal } as never));
    } else {
      const sopts = randomScanOptions();
      await check(`scanBackdoor(${JSON.stringify(sopts)})`, (signal) => scanBackdoor(model, { ...sopts, signal } as never));
    }
    const json = pick<unknown>([
      null,
      [null],
      { images: [null], annotations: [], categories: [] },
      {
        images: [{ id: 1, file_name: 'a.png', width: pick(VALUES), height: pick(VALUES) }],
        annotations: [{ image_id: 1, category_id: 1, bbox: pick(VALUES) }],
        categories: [{ id: 1, name: 'x' }],
      },
      [
        {
          file: pick(VALUES),
          label: pick(VALUES),
          box: pick(VALUES),
          boxes: rand() < 0.5 ? undefined : pick(VALUES),
          width: pick(VALUES),
          height: pick(VALUES),
        },
      ],
      { 'a.png': [pick(VALUES)] },
    ]);
    await check(`parseAnnotations(${JSON.stringify(json)})`, async () => parseAnnotations(json));
  }
  console.log(JSON.stringify({ cases, codes, okBy, failures }));
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
