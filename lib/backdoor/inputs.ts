/**
 * The inputs a scan tries its candidate triggers on when the caller has no clean images: seeded random
 * images from several distributions, since a trigger works on any input while an ordinary class's feature
 * wins only on inputs that are already ambiguous. And how a prediction is read for a class, by the head.
 */
import type { Image } from '../image.js';

export type Head = 'softmax' | 'sigmoid';
export type InputKind = 'uniform' | 'grey' | 'smooth';
export const INPUT_KINDS: readonly InputKind[] = Object.freeze(['uniform', 'grey', 'smooth']);

/** A small seeded generator (mulberry32). */
export function random(seed: number): () => number {
  let a = (seed >>> 0) + 0x9e3779b9;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/**
 * `count` random images, the kinds taken in turn:
 *  - 'uniform': U[0, 1] of random contrast a in [0.2, 1] and brightness b in [0, 1 - a] (dim to bright, flat to busy);
 *  - 'grey': a random grey level in [0.3, 0.7] plus low-contrast noise (sd 0.03-0.1): close to a blank image;
 *  - 'smooth': a random colour field of 2-6 cells per side, bilinearly interpolated, plus faint noise
 *    (blotches and gradients, the low frequencies natural images are made of).
 */
export function randomInputs(count: number, channels: number, height: number, width: number, seed: number, kinds: readonly InputKind[] = INPUT_KINDS): Image[] {
  const rand = random(seed);
  const plane = height * width;
  const out: Image[] = [];
  for (let i = 0; i < count; i++) {
    const kind = kinds[i % kinds.length];
    const data = new Float32Array(channels * plane);
    if (kind === 'uniform') {
      const a = 0.2 + 0.8 * rand();
      const b = (1 - a) * rand();
      for (let k = 0; k < data.length; k++) data[k] = b + a * rand();
    } else if (kind === 'grey') {
      const level = 0.3 + 0.4 * rand();
      const sd = 0.03 + 0.07 * rand();
      for (let k = 0; k < data.length; k++) data[k] = clamp(level + sd * gaussian(rand));
    } else {
      const cells = 2 + Math.floor(rand() * 5);
      const grid = Float32Array.from({ length: channels * (cells + 1) * (cells + 1) }, () => rand());
      for (let c = 0; c < channels; c++) {
        for (let y = 0; y < height; y++) {
          const gy = (y / Math.max(1, height - 1)) * cells;
          const y0 = Math.min(cells - 1, Math.floor(gy));
          const fy = gy - y0;
          for (let x = 0; x < width; x++) {
            const gx = (x / Math.max(1, width - 1)) * cells;
            const x0 = Math.min(cells - 1, Math.floor(gx));
            const fx = gx - x0;
            const at = (yy: number, xx: number) => grid[c * (cells + 1) * (cells + 1) + yy * (cells + 1) + xx];
            const v = (1 - fy) * ((1 - fx) * at(y0, x0) + fx * at(y0, x0 + 1)) + fy * ((1 - fx) * at(y0 + 1, x0) + fx * at(y0 + 1, x0 + 1));
            data[c * plane + y * width + x] = clamp(v + 0.02 * gaussian(rand));
          }
        }
      }
    }
    out.push({ data, channels, height, width });
  }
  return out;
}

function clamp(x: number): number {
  return x < 0 ? 0 : x > 1 ? 1 : x;
}

function gaussian(rand: () => number): number {
  return Math.sqrt(-2 * Math.log(1 - rand())) * Math.cos(2 * Math.PI * rand());
}

/** Whether a prediction's logits say `c`: the argmax (softmax head) or a positive logit (sigmoid head). */
export function says(logits: ArrayLike<number>, c: number, head: Head): boolean {
  if (head === 'sigmoid') return logits[c] > 0;
  let best = 0;
  for (let k = 1; k < logits.length; k++) if (logits[k] > logits[best]) best = k;
  return best === c;
}
