// Shared by the integration tests: fixture paths, the golden input, and a rejection helper.
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
