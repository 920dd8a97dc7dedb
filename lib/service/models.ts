/**
 * The models a service or a queue worker serves, by name. A folder holds `<name>.pt` (TorchScript), and
 * beside it optionally `<name>.labels.txt` (one class name per line) and `<name>.json` (`size`, `fit`,
 * `mean`, `std` for that model). Requests and jobs name a model; a path never comes from them.
 */
import { readFile, readdir } from 'node:fs/promises';
import { join } from 'node:path';
import { TorchSaliencyError } from '../errors.js';
import type { Fit } from '../image.js';
import { loadModel, type Device, type Model } from '../model.js';
import * as v from '../validate.js';
import { modelNotFound } from './errors.js';

export interface ServedModel {
  name: string;
  model: Model;
  /** Size its images are resized to (none: their own size). */
  size?: [number, number];
  fit: Fit;
}

export const MODEL_NAME = /^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$/;

export interface ModelFolderOptions {
  device?: Device;
  threads?: number;
  /** loadModel's scoreMaps for every model of the folder. */
  scoreMaps?: 'refuse' | 'mean';
  /** Defaults for models whose `<name>.json` does not say. */
  size?: number | [number, number];
  fit?: Fit;
}

/** Loads every `<name>.pt` of `dir` (names sorted); a model that fails to load fails the whole call. */
export async function loadModelFolder(dir: string, options: ModelFolderOptions = {}): Promise<ServedModel[]> {
  let entries: string[];
  try {
    entries = await readdir(dir);
  } catch (e) {
    throw new TorchSaliencyError('ERR_INVALID_ARG_VALUE', `Cannot read the models folder '${dir}': ${(e as Error).message}`, { argument: 'models', cause: e });
  }
  const names = entries
    .filter((f) => f.endsWith('.pt'))
    .map((f) => f.slice(0, -3))
    .filter((n) => MODEL_NAME.test(n))
    .sort();
  if (names.length === 0)
    throw new TorchSaliencyError('ERR_INVALID_ARG_VALUE', `Expected <name>.pt files in the models folder '${dir}' but found none`, { argument: 'models' });
  const served: ServedModel[] = [];
  try {
    for (const name of names) {
      let config: Record<string, unknown> = {};
      if (entries.includes(`${name}.json`)) {
        try {
          config = v.plainObject(`${name}.json`, JSON.parse(await readFile(join(dir, `${name}.json`), 'utf8')));
        } catch (e) {
          if (e instanceof TorchSaliencyError) throw e;
          throw new TorchSaliencyError('ERR_INVALID_ARG_VALUE', `Cannot read '${join(dir, `${name}.json`)}': ${(e as Error).message}`, {
            argument: 'models',
            cause: e,
          });
        }
        v.knownKeys(`${name}.json`, config, ['size', 'fit', 'mean', 'std']);
      }
      const labels = entries.includes(`${name}.labels.txt`) ? join(dir, `${name}.labels.txt`) : undefined;
      const model = await loadModel(join(dir, `${name}.pt`), {
        device: options.device,
        threads: options.threads,
        scoreMaps: options.scoreMaps,
        labels,
        mean: config.mean as number[] | undefined,
        std: config.std as number[] | undefined,
      });
      const size = config.size ?? options.size;
      served.push({
        name,
        model,
        size: size === undefined ? undefined : v.size(`${name}.json size`, size),
        fit: v.oneOf<Fit>(`${name}.json fit`, config.fit ?? options.fit, ['cover', 'contain', 'fill'], 'cover'),
      });
    }
  } catch (e) {
    for (const s of served) s.model.dispose();
    throw e;
  }
  return served;
}

/** Looks a model up by the name a request or job gives. */
export function findModel(models: ReadonlyMap<string, ServedModel>, name: unknown): ServedModel {
  const found = typeof name === 'string' ? models.get(name) : undefined;
  if (!found) throw modelNotFound(typeof name === 'string' ? name : String(name), [...models.keys()]);
  return found;
}
