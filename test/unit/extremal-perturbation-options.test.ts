import { describe, expect, it } from 'vitest';
import { EP_DEFAULTS, extremalPerturbation } from '../../lib/methods/extremal-perturbation.js';
import type { MethodContext } from '../../lib/methods/types.js';

const context: MethodContext = { images: [], height: 64, width: 64, channels: 3, device: 'cpu' };
const normalize = (o: Record<string, unknown>, device = 'cpu') =>
  extremalPerturbation.normalize(o, { ...context, device, batchSize: o.batchSize === undefined ? undefined : Number(o.batchSize) });

function code(o: Record<string, unknown>): { code?: string; argument?: string } {
  try {
    normalize(o);
  } catch (e) {
    return e as { code?: string; argument?: string };
  }
  return {};
}

describe('extremal-perturbation options', () => {
  it("fills in TorchRay's defaults, from EP_DEFAULTS", () => {
    const options = normalize({});
    expect(options).toEqual({
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
      kernel: 'fused',
      stopTolerance: 0,
      stopWindow: 50,
      memoryFormat: 'contiguous',
      freeze: false,
      precision: 'fp32',
      batchSize: 128,
    });
    expect(Object.isFrozen(options)).toBe(true);
    for (const [name, value] of Object.entries(EP_DEFAULTS)) if (name !== 'batchSize') expect(options[name as keyof typeof options], name).toEqual(value);
  });

  it('carries the real batch size: about 2^19 pixels per batch on the CPU, every mask at once on CUDA, or the one given', () => {
    expect(normalize({}).batchSize).toBe(128); // 2^19 / (64 x 64)
    expect(extremalPerturbation.normalize({}, { ...context, height: 224, width: 224, batchSize: undefined }).batchSize).toBe(10);
    expect(extremalPerturbation.normalize({}, { ...context, height: 2048, width: 2048, batchSize: undefined }).batchSize).toBe(1);
    expect(normalize({}, 'cuda:0').batchSize).toBe(0);
    expect(normalize({ batchSize: 4 }).batchSize).toBe(4);
    expect(normalize({ batchSize: 0 }).batchSize).toBe(0);
  });

  it('accepts one area or a list, and every option', () => {
    expect(normalize({ areas: 0.2 }).areas).toEqual([0.2]);
    const options = normalize({ areas: [0.05, 0.1], perturbation: 'fade', variant: 'dual', reward: 'contrastive', jitter: false, maxIter: 5, batchSize: 4 });
    expect(options).toMatchObject({
      areas: [0.05, 0.1],
      perturbation: 'fade',
      variant: 'dual',
      reward: 'contrastive',
      jitter: false,
      maxIter: 5,
      batchSize: 4,
    });
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
    ['perturbation', 3],
    ['variant', 1],
    ['reward', false],
    ['kernel', 0],
    ['memoryFormat', 1],
    ['freeze', 'yes'],
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
    ['maxBlur', Infinity],
    ['stopTolerance', -0.1],
    ['stopTolerance', 2],
    ['stopWindow', 0],
    ['stopWindow', 2.5],
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
    ['memoryFormat', 'channels_last'],
    ['precision', 'fp16'],
  ] as const) {
    it(`rejects ${name} = '${value}' (an unknown choice) with ERR_INVALID_ARG_VALUE`, () => {
      expect(code({ [name]: value }).code).toBe('ERR_INVALID_ARG_VALUE');
    });
  }
});
