import { describe, expect, it } from 'vitest';
import { EP_DEFAULTS, extremalPerturbation } from '../../lib/methods/extremal-perturbation.js';
import type { MethodContext } from '../../lib/methods/types.js';

const context: MethodContext = { images: [], height: 64, width: 64, channels: 3 };
const normalize = (o: Record<string, unknown>) => extremalPerturbation.normalize(o, context);

function code(o: Record<string, unknown>): { code?: string; argument?: string } {
  try {
    normalize(o);
  } catch (e) {
    return e as { code?: string; argument?: string };
  }
  return {};
}

describe('extremal-perturbation options', () => {
  it('fills in TorchRay defaults', () => {
    const { options, baton } = normalize({});
    expect(options).toMatchObject({
      areas: [0.1],
      perturbation: 'blur',
      maxBlur: 20,
      numLevels: 8,
      step: 7,
      sigma: 21,
      maxIter: 800,
      jitter: true,
      variant: 'preserve',
      reward: 'simple',
      learningRate: 0.01,
      momentum: 0.9,
      areaWeight: 300,
      areaWeightGrowth: 1.0035,
      seed: 0,
    });
    expect(Object.isFrozen(options)).toBe(true);
    expect(baton).toMatchObject({ areas: [0.1], jitter: 1, maxIter: 800, variant: 'preserve', autoBatch: 1 });
    expect(extremalPerturbation.optionNames).toEqual(expect.arrayContaining(Object.keys(EP_DEFAULTS)));
  });

  it('accepts one area or a list, and every option', () => {
    expect(normalize({ areas: 0.2 }).options.areas).toEqual([0.2]);
    const { baton } = normalize({ areas: [0.05, 0.1], perturbation: 'fade', variant: 'dual', reward: 'contrastive', jitter: false, maxIter: 5, batchSize: 4 });
    expect(baton).toMatchObject({ areas: [0.05, 0.1], perturbation: 'fade', variant: 'dual', reward: 'contrastive', jitter: 0, maxIter: 5, autoBatch: 0 });
  });

  const typeErrors: [string, unknown][] = [
    ['areas', 'big'],
    ['areas', []],
    ['areas', [0.1, 'x']],
    ['maxBlur', '20'],
    ['numLevels', null],
    ['step', true],
    ['sigma', 'x'],
    ['maxIter', '800'],
    ['jitter', 1],
    ['learningRate', '0.1'],
    ['momentum', {}],
    ['areaWeight', []],
    ['areaWeightGrowth', 'x'],
    ['seed', '1'],
    ['perturbation', 3],
    ['variant', 1],
    ['reward', false],
    ['kernel', 0],
  ];
  for (const [name, value] of typeErrors) {
    it(`rejects ${name} = ${JSON.stringify(value)} with ERR_INVALID_ARG_TYPE`, () => {
      const e = code({ [name]: value });
      expect(e.code).toBe('ERR_INVALID_ARG_TYPE');
      expect(e.argument).toMatch(new RegExp(`^options\\.${name}`));
    });
  }

  const rangeErrors: [string, unknown][] = [
    ['areas', 0],
    ['areas', 1],
    ['areas', [0.1, -0.2]],
    ['maxBlur', 0],
    ['numLevels', 1],
    ['numLevels', 2.5],
    ['step', 0],
    ['sigma', 0],
    ['sigma', 1000],
    ['maxIter', 0],
    ['maxIter', 1.5],
    ['learningRate', 0],
    ['momentum', 1.5],
    ['areaWeight', -1],
    ['areaWeightGrowth', 0],
    ['seed', -1],
    ['seed', 0.5],
    ['maxBlur', Infinity],
  ];
  for (const [name, value] of rangeErrors) {
    it(`rejects ${name} = ${JSON.stringify(value)} with ERR_OUT_OF_RANGE`, () => {
      const e = code({ [name]: value });
      expect(e.code).toBe('ERR_OUT_OF_RANGE');
      expect(e.argument).toMatch(new RegExp(`^options\\.${name}`));
    });
  }

  for (const [name, value] of [
    ['perturbation', 'noise'],
    ['variant', 'both'],
    ['reward', 'hard'],
    ['kernel', 'cuda'],
  ] as const) {
    it(`rejects ${name} = '${value}' (an unknown choice) with ERR_INVALID_ARG_VALUE`, () => {
      expect(code({ [name]: value }).code).toBe('ERR_INVALID_ARG_VALUE');
    });
  }
});
