// Shared by the integration tests: fixture paths, the golden input, and a rejection helper.
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { expect } from 'vitest';
import { TorchSaliencyError } from '../../lib/index.js';

export const ROOT = join(__dirname, '..', '..');
export const FIXTURES = join(ROOT, 'test', 'fixtures');
export const model = (name: string) => join(FIXTURES, 'models', name);

export interface Golden {
  inputShape: [number, number, number, number];
  numClasses: number;
  layers: string[];
  mean: number[];
  std: number[];
  logits: number[][];
  logitsNormalized: number[][];
  fixedMlp: { inputShape: number[]; logits: number[][] };
  tolerance: { atol: number; rtol: number };
}

/** The trojaned and clean classifiers of scripts/fixtures/make_backdoor.py, and what is known of them. */
export const BACKDOOR = join(FIXTURES, 'backdoor');
export const backdoorFixture = JSON.parse(readFileSync(join(BACKDOOR, 'backdoor.json'), 'utf8')) as {
  classes: string[];
  targetClass: number;
  trigger: { top: number; left: number; height: number; width: number };
  clean: { accuracy: number; attackSuccess: number };
  trojan: { accuracy: number; attackSuccess: number };
};
export const BACKDOOR_SIZE = 32;
/** Fewer input-agnostic steps than the defaults keep the tests fast; the detection holds with the defaults too (docs). */
export const BACKDOOR_FAST = { samples: 8, iterations: 32, refineSteps: 10 } as const;

export const golden: Golden = JSON.parse(readFileSync(join(FIXTURES, 'golden', 'tiny_cnn.json'), 'utf8'));

/** The golden input image b (see inputFormula in golden/tiny_cnn.json): 0.5 + 0.5 sin(0.1 i + b) over the flat CHW index. */
export function goldenImage(b: number, channels = 3, height = 32, width = 32) {
  const data = Float32Array.from({ length: channels * height * width }, (_, i) => 0.5 + 0.5 * Math.sin(0.1 * i + b));
  return { data, channels, height, width };
}

export function expectClose(actual: ArrayLike<number>, expected: ArrayLike<number>, atol = golden.tolerance.atol, rtol = golden.tolerance.rtol) {
  expect(actual.length).toBe(expected.length);
  for (let i = 0; i < expected.length; i++) {
    const tol = atol + rtol * Math.abs(expected[i]);
    if (!(Math.abs(actual[i] - expected[i]) <= tol)) {
      throw new Error(`value ${i}: ${actual[i]} differs from ${expected[i]} by more than ${tol}`);
    }
  }
}

export async function rejection(p: Promise<unknown>): Promise<TorchSaliencyError> {
  const e = await p.then(
    () => new Error('expected a rejection, got a result'),
    (err: unknown) => err,
  );
  expect(e).toBeInstanceOf(TorchSaliencyError);
  return e as TorchSaliencyError;
}

/** Splits a flat N x C x H x W array (golden JSON) into images. */
export function imagesOf(flat: number[], shape: number[]) {
  const [n, c, h, w] = shape;
  const plane = c * h * w;
  return Array.from({ length: n }, (_, b) => ({ data: Float32Array.from(flat.slice(b * plane, (b + 1) * plane)), channels: c, height: h, width: w }));
}

/** Runs `script` in a child Node process (through tsx, from the repository root, with `env` added to this
 * process's environment) and parses the JSON its last output line holds. For what a process settles once
 * at start-up (environment variables read when the addon loads). */
export function runScript<T>(script: string, env: Record<string, string> = {}): T {
  const stdout = execFileSync(process.execPath, ['--import', 'tsx', '-e', script], { cwd: ROOT, encoding: 'utf8', env: { ...process.env, ...env } });
  return JSON.parse(stdout.trim().split('\n').pop()!) as T;
}

export function maxAbsDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  expect(a.length).toBe(b.length);
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i] - b[i]));
  return m;
}

/** Pearson correlation of two equal-length arrays. */
export function pearson(a: ArrayLike<number>, b: ArrayLike<number>): number {
  const n = a.length;
  let ma = 0;
  let mb = 0;
  for (let i = 0; i < n; i++) {
    ma += a[i];
    mb += b[i];
  }
  ma /= n;
  mb /= n;
  let sab = 0;
  let saa = 0;
  let sbb = 0;
  for (let i = 0; i < n; i++) {
    const x = a[i] - ma;
    const y = b[i] - mb;
    sab += x * y;
    saa += x * x;
    sbb += y * y;
  }
  return sab / Math.sqrt(saa * sbb);
}

/** IoU of the regions above half of each map's own maximum. */
export function iouAtHalfMax(a: ArrayLike<number>, b: ArrayLike<number>): number {
  let ma = 0;
  let mb = 0;
  for (let i = 0; i < a.length; i++) {
    ma = Math.max(ma, a[i]);
    mb = Math.max(mb, b[i]);
  }
  let inter = 0;
  let union = 0;
  for (let i = 0; i < a.length; i++) {
    const x = a[i] > ma / 2;
    const y = b[i] > mb / 2;
    if (x && y) inter++;
    if (x || y) union++;
  }
  return union === 0 ? 1 : inter / union;
}
