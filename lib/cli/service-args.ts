/**
 * Shared by the serve and worker commands: the model flags of a service (one model or a folder of them), the
 * limit flags, model loading for services and stopping on a signal. Parsing and exit codes are the
 * ones of every command (args.ts: parseFlags, exitCode).
 */
import { loadModel, type Device } from '../model.js';
import { LIMIT_FLAGS, type Limits } from '../service/limits.js';
import { loadModelFolder, type ServedModel } from '../service/models.js';
import { IMAGE_FLAGS, MODEL_FLAGS, UsageError, type FlagSpecs, type ParsedArgs } from './args.js';

/** Every command's model flags, plus --models DIR, the size and fit the service resizes to, and --max-batch. */
export const SERVICE_MODEL_FLAGS: FlagSpecs = {
  ...MODEL_FLAGS,
  models: { type: 'string' },
  size: IMAGE_FLAGS.size,
  fit: IMAGE_FLAGS.fit,
  'max-batch': { type: 'integer', min: 1 },
};

/** The limits as flags (--max-queue 32, --cap-max-iter 500, ...): whole numbers. */
export const LIMIT_FLAG_SPECS: FlagSpecs = Object.fromEntries(Object.values(LIMIT_FLAGS).map((flag) => [flag.slice(2), { type: 'integer', min: 0 }]));

/** The limits given as flags. */
export function limitsFrom(values: ParsedArgs['values']): Partial<Limits> {
  const out: Partial<Limits> = {};
  for (const [key, flag] of Object.entries(LIMIT_FLAGS) as [keyof Limits, string][]) {
    const n = values[flag.slice(2)];
    if (n !== undefined) out[key] = n as number;
  }
  return out;
}

/** --model PATH (one model, named 'default') or --models DIR (each <name>.pt). */
export async function openModels(values: ParsedArgs['values']): Promise<{ served: ServedModel[]; single: boolean }> {
  const device = (values.device as Device | undefined) ?? 'auto';
  const threads = values.threads as number | undefined;
  const size = values.size as [number, number] | undefined;
  const fit = values.fit as 'cover' | 'contain' | 'fill' | undefined;
  const scoreMaps = (values['score-maps'] as 'refuse' | 'mean' | undefined) ?? 'refuse';
  if (typeof values.models === 'string') {
    if (values.model !== undefined) throw new UsageError('Give --model or --models, not both');
    return { served: await loadModelFolder(values.models, { device, threads, scoreMaps, size, fit }), single: false };
  }
  if (typeof values.model !== 'string') throw new UsageError('Expected --model PATH or --models DIR (see --help)');
  const model = await loadModel(values.model, { device, threads, scoreMaps, labels: values.labels as string | undefined });
  return { served: [{ name: 'default', model, size, fit: fit ?? 'cover' }], single: true };
}

/** Resolves on the first SIGTERM or SIGINT. */
export function stopSignal(): Promise<string> {
  return new Promise((resolve) => {
    const on = (signal: string) => {
      process.off('SIGTERM', on);
      process.off('SIGINT', on);
      resolve(signal);
    };
    process.once('SIGTERM', on);
    process.once('SIGINT', on);
  });
}
