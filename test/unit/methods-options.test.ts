/** Option normalisation of the backpropagation family, RISE and channel perturbation (no addon needed). */
import { describe, expect, it } from 'vitest';
import { getMethod, methodNames } from '../../lib/methods/index.js';

const context = { images: [], height: 32, width: 32, channels: 3, device: 'cpu', batchSize: undefined };

describe('methods of the backpropagation family, RISE and channel perturbation', () => {
  it('are registered', () => {
    for (const name of [
      'gradient',
      'deconvnet',
      'guided-backprop',
      'grad-cam',
      'linear-approx',
      'excitation-backprop',
      'contrastive-excitation-backprop',
      'rise',
      'channel-perturbation',
    ]) {
      expect(methodNames()).toContain(name);
    }
  });

  it('layer: optional for gradient methods, required for grad-cam / linear-approx / channel-perturbation', () => {
    expect(getMethod('gradient').normalize({}, context)).toEqual({ layer: null });
    expect(getMethod('guided-backprop').normalize({ layer: 'features.2' }, context)).toEqual({ layer: 'features.2' });
    for (const name of ['grad-cam', 'linear-approx', 'channel-perturbation']) {
      expect(() => getMethod(name).normalize({}, context)).toThrow(expect.objectContaining({ code: 'ERR_INVALID_ARG_TYPE', argument: 'options.layer' }));
    }
    expect(() => getMethod('grad-cam').normalize({ layer: 3 }, context)).toThrow(expect.objectContaining({ argument: 'options.layer' }));
    expect(() => getMethod('contrastive-excitation-backprop').normalize({ layer: 'a' }, context)).toThrow(
      expect.objectContaining({ argument: 'options.contrastLayer' }),
    );
  });

  it("rise: the paper's defaults, typed errors", () => {
    const options = getMethod('rise').normalize({}, context);
    // batchSize: the masks per forward pass that make 2^25 values of masked input (3 x 32 x 32 each), at most numMasks.
    expect(options).toEqual({ numMasks: 8000, numCells: 7, p: 0.5, seed: 0, activation: 'softmax', batchSize: 8000 });
    expect(getMethod('rise').normalize({}, { ...context, height: 224, width: 224 })).toMatchObject({ batchSize: 222 });
    expect(getMethod('rise').normalize({}, { ...context, batchSize: 0 })).toMatchObject({ batchSize: 8000 });
    expect(getMethod('rise').normalize({}, { ...context, batchSize: 50 })).toMatchObject({ batchSize: 50 });
    expect(Object.isFrozen(options)).toBe(true);
    expect(() => getMethod('rise').normalize({ numMasks: 1.5 }, context)).toThrow(
      expect.objectContaining({ code: 'ERR_OUT_OF_RANGE', argument: 'options.numMasks' }),
    );
    expect(() => getMethod('rise').normalize({ p: 0 }, context)).toThrow(expect.objectContaining({ argument: 'options.p' }));
    expect(() => getMethod('rise').normalize({ seed: -1 }, context)).toThrow(expect.objectContaining({ argument: 'options.seed' }));
  });

  it('channel-perturbation: defaults and ranges', () => {
    const options = getMethod('channel-perturbation').normalize({ layer: 'features.4' }, context);
    expect(options).toEqual({
      layer: 'features.4',
      area: 0.1,
      mode: 'image',
      perturbation: 'fade',
      maxIter: 300,
      learningRate: 0.05,
      lambda: 1,
      lambdaGrowth: 100,
    });
    expect(() => getMethod('channel-perturbation').normalize({ layer: 'x', area: 0 }, context)).toThrow(expect.objectContaining({ argument: 'options.area' }));
    expect(() => getMethod('channel-perturbation').normalize({ layer: 'x', mode: 'all' }, context)).toThrow(
      expect.objectContaining({ argument: 'options.mode' }),
    );
  });
});
