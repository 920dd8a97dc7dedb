/**
 * The whole-image test of the input-agnostic scan, for blended triggers (a faint pattern over the whole image,
 * which no region-based test can find): per class, the smallest opacity alpha of a pattern p that, blended as
 * x' = (1 - alpha) x + alpha p over inputs with Gaussian noise added, sends them to the class (the
 * 'neural-cleanse' method with mask 'whole': Neural Cleanse's optimisation with its mask reduced to one scalar).
 * A class whose opacity is a low outlier, (median log alpha - log alpha_c) / (1.4826 max(MAD, 0.1)), is flagged.
 * The noise keeps per-pixel adversarial patterns (which reach every class of a small model at alpha ~0.05) from
 * deciding the minimum; see docs/dev/backdoor-scan.md, "Whole-image blends".
 */
import type { Image } from '../image.js';
import type { Model } from '../model.js';
import type { ExplanationFor } from '../methods/index.js';
import { anomalyIndices } from './scores.js';
import type { Head } from './inputs.js';

/** The MAD floor of the log-opacity outlier test (natural-log units: opacities within ~10 % are alike). */
export const OPACITY_MAD_FLOOR = 0.1;

export interface WholeImageSettings {
  steps: number;
  noise: number;
  head: Head;
  seed: number;
  batchSize?: unknown;
  signal?: unknown;
  onProgress?: unknown;
}

export interface WholeImageResult {
  explanation: ExplanationFor<'neural-cleanse'>;
  /** Per class: the smallest opacity found (or the last one, when the class was not reached). */
  opacity: number[];
  /** Per class: whether a pattern reached the success threshold. */
  reached: boolean[];
  /** Per class: the low-side anomaly index of log opacity (a class not reached counts as opacity 1). */
  index: number[];
  ms: number;
}

export async function wholeImageTest(model: Model, inputs: Image[], classes: number[], s: WholeImageSettings): Promise<WholeImageResult> {
  const run: Record<string, unknown> = { mask: 'whole', noise: s.noise, steps: s.steps, head: s.head, seed: s.seed };
  for (const k of ['batchSize', 'signal', 'onProgress'] as const) if (s[k] !== undefined) run[k] = s[k];
  const start = performance.now();
  // Every input serves every class: the classes are the targets of the first input only.
  const explanation = await model.explain(inputs, { ...run, method: 'neural-cleanse', target: inputs.map((_, i) => (i === 0 ? classes : [])) });
  const ms = performance.now() - start;
  const d = explanation.details;
  const opacity = d.norms.map((x) => Math.min(1, Math.max(1e-6, x)));
  const logs = opacity.map((x, j) => -Math.log(d.reached[j] ? x : 1));
  return { explanation, opacity, reached: [...d.reached], index: anomalyIndices(logs, OPACITY_MAD_FLOOR), ms };
}
