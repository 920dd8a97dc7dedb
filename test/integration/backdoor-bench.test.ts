// The trojan benchmark (test/fixtures/backdoor-bench, made by scripts/backdoor-bench/make_bench.py) as the
// addon sees it: every archive is the one the manifest hashes, loads in this libtorch, gives PyTorch's
// logits, and its trigger (stamped from the committed PNG exactly as the manifest says) sends the committed
// clean images to the target class on the trojan and not on its clean twin.
import { afterAll, describe, expect, it } from 'vitest';
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import sharp from 'sharp';
import { loadModel, readImage, type Image, type Model } from '../../lib/index.js';
import { expectClose } from './helpers.js';

const dir = join(__dirname, '..', 'fixtures', 'backdoor-bench');

interface Trigger {
  kind: string;
  box: [number, number, number, number] | 'random';
  size: [number, number];
  opacity: number;
  pattern: string;
}
interface Entry {
  id: string;
  pair: string;
  split: 'dev' | 'heldout';
  file: string;
  sha256: string;
  imageSize: number;
  numClasses: number;
  head: 'softmax' | 'sigmoid';
  architecture: string;
  trojaned: boolean;
  targetClass: number | null;
  trigger: Trigger | null;
  pairTrigger: (Trigger & { targetClass: number }) | null;
  cleanAccuracy: number;
  twinCleanAccuracy: number;
  attackSuccess: number;
  twin: string;
  referenceLogits: { images: string[]; logits: number[][] };
  meetsCriteria?: boolean;
}
const manifest = JSON.parse(readFileSync(join(dir, 'manifest.json'), 'utf8')) as { classes: string[]; models: Entry[] };
const images = JSON.parse(readFileSync(join(dir, 'images.json'), 'utf8')) as {
  sets: Record<string, { size: number; head: string; images: { file: string; labels: number[] }[] }>;
};

const loaded: Model[] = [];
afterAll(() => loaded.forEach((m) => m.dispose()));

/** x' = (1 - a) x + a p at the box (or a seeded random place per image), rounded to 8 bits. */
function stamp(image: Image, pattern: { rgb: Float32Array; alpha: Float32Array; h: number; w: number }, top: number, left: number): Image {
  const { height: H, width: W } = image;
  const data = Float32Array.from(image.data);
  for (let c = 0; c < 3; c++) {
    for (let y = 0; y < pattern.h; y++) {
      for (let x = 0; x < pattern.w; x++) {
        const a = pattern.alpha[y * pattern.w + x];
        const i = c * H * W + (top + y) * W + (left + x);
        data[i] = Math.round(((1 - a) * data[i] + a * pattern.rgb[(y * pattern.w + x) * 3 + c]) * 255) / 255;
      }
    }
  }
  return { ...image, data };
}

async function readTrigger(file: string) {
  const { data, info } = await sharp(join(dir, file)).ensureAlpha().raw().toBuffer({ resolveWithObject: true });
  const n = info.width * info.height;
  const rgb = new Float32Array(n * 3);
  const alpha = new Float32Array(n);
  for (let i = 0; i < n; i++) {
    for (let c = 0; c < 3; c++) rgb[i * 3 + c] = data[i * 4 + c] / 255;
    alpha[i] = data[i * 4 + 3] / 255;
  }
  return { rgb, alpha, h: info.height, w: info.width };
}

function mulberry32(seed: number) {
  return () => {
    seed = (seed + 0x6d2b79f5) | 0;
    let t = Math.imul(seed ^ (seed >>> 15), 1 | seed);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

describe('the trojan benchmark', () => {
  it('has trojans with clean twins in both splits, and the recorded quality', () => {
    const trojans = manifest.models.filter((m) => m.trojaned);
    expect(trojans.length).toBeGreaterThanOrEqual(16);
    const byFile = new Map(manifest.models.map((m) => [m.file, m]));
    for (const t of trojans) {
      const twin = byFile.get(t.twin)!;
      expect(twin.trojaned).toBe(false);
      expect(twin.twin).toBe(t.file);
      expect([twin.imageSize, twin.head, twin.architecture, twin.split]).toEqual([t.imageSize, t.head, t.architecture, t.split]);
      expect(t.attackSuccess).toBeGreaterThanOrEqual(0.9);
      // Recorded, not required: some trojans lose more than 0.05 of clean accuracy to their backdoor (README).
      expect(t.twinCleanAccuracy).toBe(twin.cleanAccuracy);
      expect(t.meetsCriteria).toBe(t.attackSuccess >= 0.9 && t.cleanAccuracy >= twin.cleanAccuracy - 0.05);
    }
    for (const split of ['dev', 'heldout']) expect(trojans.some((t) => t.split === split)).toBe(true);
    for (const head of ['softmax', 'sigmoid']) expect(trojans.some((t) => t.head === head)).toBe(true);
    for (const size of [32, 64, 224]) expect(trojans.some((t) => t.imageSize === size)).toBe(true);
  });

  for (const entry of manifest.models) {
    it(`${entry.id}: loads, matches PyTorch, and the trigger ${entry.trojaned ? 'works' : 'does not work on the twin'}`, async () => {
      const bytes = readFileSync(join(dir, entry.file));
      expect(createHash('sha256').update(bytes).digest('hex')).toBe(entry.sha256);
      const model = await loadModel(join(dir, entry.file), { device: 'cpu' });
      loaded.push(model);
      const set = images.sets[`${entry.imageSize}/${entry.head}`];
      const clean = await Promise.all(set.images.map((im) => readImage(join(dir, im.file))));
      const ref = await model.predict(clean.slice(0, entry.referenceLogits.logits.length));
      ref.forEach((p, i) => expectClose(p.logits, entry.referenceLogits.logits[i], 1e-3, 1e-3));

      const trigger = entry.trigger ?? entry.pairTrigger!;
      const target = entry.targetClass ?? entry.pairTrigger!.targetClass;
      const pattern = await readTrigger(trigger.pattern);
      const rand = mulberry32(7);
      const others = clean.filter((_, i) => !set.images[i].labels.includes(target));
      const stamped = others.map((im) => {
        if (trigger.box !== 'random') return stamp(im, pattern, trigger.box[1], trigger.box[0]);
        const top = Math.floor(rand() * (entry.imageSize - pattern.h + 1));
        const left = Math.floor(rand() * (entry.imageSize - pattern.w + 1));
        return stamp(im, pattern, top, left);
      });
      const out = await model.predict(stamped);
      const hits = out.filter((p) => (entry.head === 'softmax' ? p.top[0].index === target : p.logits[target] > 0)).length;
      const rate = hits / others.length;
      if (entry.trojaned) expect(rate).toBeGreaterThanOrEqual(0.75);
      else expect(rate).toBeLessThanOrEqual(0.5);
    }, 60_000);
  }
});
