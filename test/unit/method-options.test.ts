/** Option normalisation of every method (no addon needed); extremal perturbation's many options have a file of their own. */
import { describe, expect, it } from 'vitest';
import { METHODS, getMethod, methodNames } from '../../lib/methods/index.js';

const context = { images: [], height: 32, width: 32, channels: 3, device: 'cpu', batchSize: undefined };

describe('every method', () => {
  it('is registered under its own name', () => {
    for (const [name, spec] of Object.entries(METHODS)) expect(spec.name).toBe(name);
    expect(methodNames()).toEqual(Object.keys(METHODS).sort());
    expect(methodNames()).toEqual(
      expect.arrayContaining([
        'gradient',
        'deconvnet',
        'guided-backprop',
        'grad-cam',
        'linear-approx',
        'excitation-backprop',
        'contrastive-excitation-backprop',
        'rise',
        'channel-perturbation',
        'input-agnostic',
        'extremal-perturbation',
      ]),
    );
  });

  it('fills in the defaults it declares, into a frozen object', () => {
    const required = { layer: 'features.4', contrastLayer: 'features.1' };
    for (const name of methodNames()) {
      const spec = getMethod(name);
      const given = Object.fromEntries(Object.entries(required).filter(([k]) => (spec.defaults as Record<string, unknown>)[k] !== undefined));
      const options = spec.normalize(given, context) as Record<string, unknown>;
      expect(Object.isFrozen(options), name).toBe(true);
      for (const [key, value] of Object.entries(spec.defaults)) {
        if (key in given) continue;
        if (value !== null && typeof value === 'object' && 'derived' in value) continue; // depends on the call: below
        // A default per case of another option (input-agnostic's epsilon, by norm): the case in use.
        const expected =
          value !== null && typeof value === 'object' && !Array.isArray(value) ? (value as Record<string, number>)[options.norm as string] : value;
        expect(options[key], `${name}: ${key}`).toEqual(expected);
      }
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
    // batchSize: 128 masks per forward pass, fewer where that makes over 2^25 values of masked input, at most numMasks.
    expect(options).toEqual({ numMasks: 8000, numCells: 7, p: 0.5, seed: 0, activation: 'softmax', batchSize: 128 });
    expect(getMethod('rise').normalize({}, { ...context, height: 224, width: 224 })).toMatchObject({ batchSize: 128 });
    expect(getMethod('rise').normalize({}, { ...context, height: 512, width: 512 })).toMatchObject({ batchSize: 42 }); // floor(2^25 / (3 x 512^2))
    expect(getMethod('rise').normalize({ numMasks: 20 }, context)).toMatchObject({ batchSize: 20 });
    expect(getMethod('rise').normalize({}, { ...context, batchSize: 0 })).toMatchObject({ batchSize: 128 });
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
    expect(options).toMatchObject({ layer: 'features.4', area: 0.1, mode: 'image', maxIter: 300 });
    expect(() => getMethod('channel-perturbation').normalize({ layer: 'x', area: 0 }, context)).toThrow(expect.objectContaining({ argument: 'options.area' }));
    expect(() => getMethod('channel-perturbation').normalize({ layer: 'x', mode: 'all' }, context)).toThrow(
      expect.objectContaining({ argument: 'options.mode' }),
    );
  });
});
