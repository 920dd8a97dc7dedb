/**
 * 'rise': randomized input sampling (Petsiuk et al. 2018). The map of class c is the mean of random
 * masks weighted by the model's probability for c on the masked input, divided by p. See docs/methods/rise.md.
 */
import * as v from '../validate.js';
import { derived, type MethodSpec, type NoDetails } from './types.js';

export interface RiseOptions {
  /** Number of random masks (as the paper and TorchRay). */
  numMasks?: number;
  /** Cells per side of the low-resolution mask grid. */
  numCells?: number;
  /** Probability that a cell is kept. */
  p?: number;
  /** Seed of the masks' own random generator: the same seed gives the same maps. */
  seed?: number;
  /** What weights the masks: 'softmax' probabilities (paper), 'sigmoid' (TorchRay) or raw 'logits'. */
  activation?: 'softmax' | 'sigmoid' | 'logits';
}

export type NormalizedRise = Required<RiseOptions> & { batchSize: number };

/**
 * Masks per forward pass when batchSize is not given (or 0): at most AUTO_BATCH_MASKS, and at most
 * AUTO_BATCH_VALUES of masked input (128 MiB of floats). The model's activations for the batch, not the
 * masked input, are what grows: 2730 masks at once at 64 px took 3.7 GB, 128 at a time 0.44 GB and less time.
 */
const AUTO_BATCH_MASKS = 128;
const AUTO_BATCH_VALUES = 2 ** 25;

const DEFAULTS = Object.freeze({
  numMasks: 8000,
  numCells: 7,
  p: 0.5,
  seed: 0,
  activation: 'softmax',
  batchSize: derived('auto'),
} as const);

export const rise: MethodSpec<'rise', RiseOptions, NormalizedRise, NoDetails> = {
  name: 'rise',
  summary: 'RISE: average of random masks weighted by the class probability of the masked image.',
  defaults: DEFAULTS,
  normalize(options, context) {
    const d = DEFAULTS;
    const numMasks = v.optionalNumber('options.numMasks', options.numMasks, d.numMasks, { integer: true, min: 1, max: 1e7 });
    const values = context.channels * context.height * context.width;
    const auto = Math.max(1, Math.min(numMasks, AUTO_BATCH_MASKS, Math.floor(AUTO_BATCH_VALUES / Math.max(1, values))));
    return Object.freeze({
      numMasks,
      numCells: v.optionalNumber('options.numCells', options.numCells, d.numCells, { integer: true, min: 1, max: 1024 }),
      p: v.optionalNumber('options.p', options.p, d.p, { min: 1e-6, max: 1 }),
      seed: v.optionalNumber('options.seed', options.seed, d.seed, { integer: true, min: 0, max: 2 ** 31 - 1 }),
      activation: v.oneOf('options.activation', options.activation, ['softmax', 'sigmoid', 'logits'] as const, d.activation),
      batchSize: context.batchSize || auto,
    });
  },
};
