/**
 * 'rise': randomized input sampling (Petsiuk et al. 2018). The map of class c is the mean of random
 * masks weighted by the model's probability for c on the masked input, divided by p. See docs/methods/rise.md.
 */
import * as v from '../validate.js';
import { registerMethod } from './registry.js';

export interface RiseOptions {
  /** Number of random masks (default 8000, as the paper and TorchRay). */
  numMasks: number;
  /** Cells per side of the low-resolution mask grid (default 7). */
  numCells: number;
  /** Probability that a cell is kept (default 0.5). */
  p: number;
  /** Seed of the masks' own random generator (default 0): the same seed gives the same maps. */
  seed: number;
  /** What weights the masks: 'softmax' probabilities (paper, default), 'sigmoid' (TorchRay) or raw 'logits'. */
  activation: 'softmax' | 'sigmoid' | 'logits';
}

registerMethod<RiseOptions>({
  name: 'rise',
  summary: 'RISE: average of random masks weighted by the class probability of the masked image.',
  optionNames: ['numMasks', 'numCells', 'p', 'seed', 'activation'],
  normalize(options) {
    const numMasks = v.optionalNumber('options.numMasks', options.numMasks, 8000, { integer: true, min: 1, max: 1e7 });
    const numCells = v.optionalNumber('options.numCells', options.numCells, 7, { integer: true, min: 1, max: 1024 });
    const p = v.optionalNumber('options.p', options.p, 0.5, { min: 1e-6, max: 1 });
    const seed = v.optionalNumber('options.seed', options.seed, 0, { integer: true, min: 0, max: 2 ** 31 - 1 });
    const activation = v.oneOf('options.activation', options.activation, ['softmax', 'sigmoid', 'logits'] as const, 'softmax');
    const opts = Object.freeze({ numMasks, numCells, p, seed, activation });
    return { options: opts, baton: { numMasks, numCells, p, seed, activation } };
  },
});
