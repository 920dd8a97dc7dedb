/**
 * One unit of work as the HTTP service and the queue worker both do it: an encoded image and its
 * options in, a JSON answer out. The image is checked against the limits before it is decoded, the
 * options against the caps, then it joins the model's batcher (where equal jobs share a native call)
 * with the caller's AbortSignal, and the answer carries only this image's maps.
 */
import { jsonValue, type Explanation, type PictureKind } from '../explanation.js';
import { readImage, type Image } from '../image.js';
import type { Prediction } from '../model.js';
import type { ExplainJobOptions, ModelBatcher } from '../batching/batcher.js';
import type { Limits } from './limits.js';
import type { ServedModel } from './models.js';
import { checkExplainCaps } from './schemas.js';
import { queueFull } from './errors.js';

export type WorkKind = 'predict' | 'explain';

export interface WorkTarget {
  served: ServedModel;
  batcher: ModelBatcher;
}

export interface WorkOptions {
  signal?: AbortSignal;
  onProgress?: (p: { iteration: number; total: number; fraction: number }) => void;
}

/** Predicts or explains one encoded image (options already checked against the schema). */
export async function perform(
  target: WorkTarget,
  kind: WorkKind,
  bytes: Buffer,
  options: Record<string, unknown>,
  limits: Limits,
  work: WorkOptions = {},
): Promise<Record<string, unknown>> {
  const { served, batcher } = target;
  if (kind === 'explain') checkExplainCaps(options, limits);
  // Refuse before decoding: a full queue should cost the caller nothing but the answer.
  if (batcher.full) throw queueFull(batcher.queued, batcher.retryAfterSeconds());
  // The batcher waits a moment for images being decoded, so that requests that came together share a call.
  const arrived = batcher.incoming(kind);
  let image: Image;
  try {
    image = await readImage(bytes, { size: served.size, fit: served.fit, limitInputPixels: limits.maxPixels });
  } finally {
    arrived();
  }
  if (kind === 'predict') {
    const { result, batch } = await batcher.predict(image, { top: (options.top as number | undefined) ?? 5, signal: work.signal });
    return predictAnswer(result, batch);
  }
  const { picture, data, ...explainOptions } = options;
  const { result, batch } = await batcher.explain(image, {
    ...(explainOptions as ExplainJobOptions), // untrusted: explain() validates every option
    signal: work.signal,
    onProgress: work.onProgress,
  });
  return explainAnswer(result, image, { picture: picture as PictureKind | 'none' | undefined, data: data === true || data === 1 }, batch);
}

export function predictAnswer(prediction: Prediction, batch: number): Record<string, unknown> {
  return { top: prediction.top, batch };
}

/** An explanation of one image as JSON: maps with their statistics, and optionally a PNG and the raw floats of each. */
export async function explainAnswer(
  explanation: Explanation,
  image: Image,
  want: { picture?: PictureKind | 'none'; data?: boolean },
  batch: number,
): Promise<Record<string, unknown>> {
  const maps = await Promise.all(
    explanation.maps.map(async (m) => {
      const out: Record<string, unknown> = m.toJSON();
      if (want.picture && want.picture !== 'none') out.png = (await m.png(want.picture, image)).toString('base64');
      if (want.data) out.data = Buffer.from(m.data.buffer, m.data.byteOffset, m.data.byteLength).toString('base64');
      return out;
    }),
  );
  const details: Record<string, unknown> = {};
  for (const [k, val] of Object.entries(explanation.details)) details[k] = Array.isArray(val) ? val.map(jsonValue) : jsonValue(val);
  return { method: explanation.method, options: explanation.options, targets: explanation.targets, maps, details, batch, timings: explanation.timings };
}
