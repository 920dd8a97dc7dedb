/**
 * Shared by the serve, worker and submit commands: the limit flags, model loading for services, logging.
 * Parsing and exit codes are the ones of every command (args.ts: parseFlags, reportError).
 */
import { loadModel, type Device } from '../model.js';
import { LIMIT_FLAGS, type Limits } from '../service/limits.js';
import { loadModelFolder, type ServedModel } from '../service/models.js';
import * as v from '../validate.js';
import { UsageError, parseFlags, reportError, type FlagSpecs } from './args.js';

export { UsageError };

export const log = (msg: string) => process.stderr.write(`torch-saliency: ${msg}\n`);

type Options = Record<string, { type: 'string' | 'boolean'; short?: string }>;

export const MODEL_FLAGS: Options = {
  model: { type: 'string' },
  models: { type: 'string' },
  labels: { type: 'string' },
  device: { type: 'string' },
  threads: { type: 'string' },
  'score-maps': { type: 'string' },
  size: { type: 'string' },
  fit: { type: 'string' },
  'max-batch': { type: 'string' },
  help: { type: 'boolean', short: 'h' },
};

export const LIMIT_OPTIONS: Options = Object.fromEntries(Object.values(LIMIT_FLAGS).map((flag) => [flag.slice(2), { type: 'string' }]));

export function parse(argv: string[], options: Options, positionals = false): { values: Record<string, string | boolean | undefined>; positionals: string[] } {
  const r = parseFlags(argv, options as FlagSpecs, { positionals });
  return { values: r.values as Record<string, string | boolean | undefined>, positionals: r.positionals };
}

export function integer(values: Record<string, unknown>, flag: string, max = Number.MAX_SAFE_INTEGER): number | undefined {
  const text = values[flag];
  if (text === undefined) return undefined;
  if (typeof text !== 'string' || !/^\d+$/.test(text) || Number(text) > max) {
    throw new UsageError(
      `Expected a whole number${max < Number.MAX_SAFE_INTEGER ? ` from 0 to ${max}` : ''} for --${flag} but received ${JSON.stringify(text)}`,
      `--${flag}`,
    );
  }
  return Number(text);
}

export function size(text: unknown): [number, number] | undefined {
  if (text === undefined) return undefined;
  const m = /^(\d+)(?:x(\d+))?$/.exec(String(text));
  if (!m) throw new UsageError(`Expected N or HxW for --size but received ${JSON.stringify(text)}`, '--size');
  return [Number(m[1]), Number(m[2] ?? m[1])];
}

/** The limits given as flags (--max-queue 32, --cap-max-iter 500, ...). */
export function limitsFrom(values: Record<string, unknown>): Partial<Limits> {
  const out: Partial<Limits> = {};
  for (const [key, flag] of Object.entries(LIMIT_FLAGS) as [keyof Limits, string][]) {
    const n = integer(values, flag.slice(2));
    if (n !== undefined) out[key] = n;
  }
  return out;
}

/** --score-maps refuse|mean: loadModel's scoreMaps (default 'refuse'). */
export function scoreMapsOf(values: Record<string, unknown>): 'refuse' | 'mean' {
  return v.oneOf('--score-maps', values['score-maps'], ['refuse', 'mean'] as const, 'refuse');
}

/** --model PATH (one model, named 'default') or --models DIR (each <name>.pt). */
export async function openModels(values: Record<string, unknown>): Promise<{ served: ServedModel[]; single: boolean }> {
  const device = (values.device as Device | undefined) ?? 'auto';
  const threads = integer(values, 'threads');
  const fit = values.fit as 'cover' | undefined;
  const scoreMaps = scoreMapsOf(values);
  if (typeof values.models === 'string') {
    if (values.model !== undefined) throw new UsageError('Give --model or --models, not both');
    return { served: await loadModelFolder(values.models, { device, threads, scoreMaps, size: size(values.size), fit }), single: false };
  }
  if (typeof values.model !== 'string') throw new UsageError('Expected --model PATH or --models DIR (see --help)');
  const model = await loadModel(values.model, { device, threads, scoreMaps, labels: values.labels as string | undefined });
  return { served: [{ name: 'default', model, size: size(values.size), fit: v.oneOf('--fit', fit, ['cover', 'contain', 'fill'], 'cover') }], single: true };
}

/** Runs a command, turning its errors into exit codes by the one rule (args.ts reportError). */
export async function exitCode(work: () => Promise<number>): Promise<number> {
  try {
    return await work();
  } catch (e) {
    return reportError(e);
  }
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
