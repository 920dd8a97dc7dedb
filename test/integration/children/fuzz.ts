// Run by fuzz.test.ts in its own process: random and damaged inputs over the public API, from a seed. Every
// call must settle within its deadline with a TorchSaliencyError whose code is not a raw ERR_TORCH /
// ERR_NATIVE, or with a result whose maps are finite. Prints one JSON line {"cases","codes","failures"}.
// Arguments: seed, seconds to spend (the cases stop starting after that).
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { loadModel, methods, readImage, TorchSaliencyError, type Model } from '../../../lib/index.js';
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
    else codes.ok = (codes.ok ?? 0) + 1;
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
  }
  console.log(JSON.stringify({ cases, codes, failures }));
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
