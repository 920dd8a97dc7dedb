// Defaults and checks of the options every explain method shares (lib/methods/common.ts).
import { describe, expect, it } from 'vitest';
import { COMMON_DEFAULTS, COMMON_OPTION_NAMES, normalizeCommon } from '../../lib/methods/common.js';

const context = { height: 24, width: 32 };

describe('common explain options', () => {
  it('defaults: batches of about 2^21 input pixels, progress every 10, no smoothing, maps resized to the input', () => {
    const { common, given, runtime } = normalizeCommon({}, context);
    expect(common).toEqual({ batchSize: 2730, progressEvery: 10, resize: [24, 32], smooth: 0 });
    expect(given).toEqual({ batchSize: undefined });
    expect(runtime).toEqual({ signal: undefined, onProgress: undefined });
    // 2,097,152 / (224 x 224) = 41.8; a map larger than the budget still goes one row at a time.
    expect(normalizeCommon({}, { height: 224, width: 224 }).common.batchSize).toBe(41);
    expect(normalizeCommon({}, { height: 2048, width: 2048 }).common.batchSize).toBe(1);
  });

  it('given values pass through; the given batchSize is told apart from the default', () => {
    const signal = new AbortController().signal;
    const onProgress = () => {};
    const { common, given, runtime } = normalizeCommon({ batchSize: 4, progressEvery: 1, smooth: 0.05, resize: [8, 10], signal, onProgress }, context);
    expect(common).toEqual({ batchSize: 4, progressEvery: 1, resize: [8, 10], smooth: 0.05 });
    expect(given).toEqual({ batchSize: 4 });
    expect(runtime.signal).toBe(signal);
    expect(runtime.onProgress).toBe(onProgress);
    expect(normalizeCommon({ batchSize: 0 }, context).given).toEqual({ batchSize: 0 });
    expect(normalizeCommon({ resize: 16 }, context).common.resize).toEqual([16, 16]);
    expect(normalizeCommon({ resize: false }, context).common.resize).toBeNull();
  });

  it('bad values name the option', () => {
    const cases: [Record<string, unknown>, string, string][] = [
      [{ batchSize: 1.5 }, 'ERR_OUT_OF_RANGE', 'options.batchSize'],
      [{ batchSize: '4' }, 'ERR_INVALID_ARG_TYPE', 'options.batchSize'],
      [{ progressEvery: 0 }, 'ERR_OUT_OF_RANGE', 'options.progressEvery'],
      [{ smooth: -0.1 }, 'ERR_OUT_OF_RANGE', 'options.smooth'],
      [{ resize: 'yes' }, 'ERR_INVALID_ARG_TYPE', 'options.resize'],
      [{ resize: [8, 0] }, 'ERR_OUT_OF_RANGE', 'options.resize[1]'],
      [{ signal: 'stop' }, 'ERR_INVALID_ARG_TYPE', 'options.signal'],
      [{ onProgress: {} }, 'ERR_INVALID_ARG_TYPE', 'options.onProgress'],
    ];
    for (const [options, code, argument] of cases) {
      expect(() => normalizeCommon(options, context), JSON.stringify(options)).toThrow(expect.objectContaining({ code, argument }));
    }
  });

  it('names every common option, each with its default', () => {
    expect([...COMMON_OPTION_NAMES].sort()).toEqual(['batchSize', 'channels', 'method', 'onProgress', 'progressEvery', 'resize', 'signal', 'smooth', 'target']);
    expect(Object.keys(COMMON_DEFAULTS).sort()).toEqual(COMMON_OPTION_NAMES.filter((n) => n !== 'method').sort());
  });
});
