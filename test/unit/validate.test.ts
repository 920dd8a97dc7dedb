import { describe, expect, it } from 'vitest';
import * as v from '../../lib/validate.js';
import { TorchSaliencyError, abortError, describe as describeValue, fromNative, invalidType, outOfRange } from '../../lib/errors.js';

/** Runs fn, expects a TorchSaliencyError and returns it. */
function thrown(fn: () => unknown): TorchSaliencyError {
  try {
    fn();
  } catch (e) {
    expect(e).toBeInstanceOf(TorchSaliencyError);
    return e as TorchSaliencyError;
  }
  throw new Error('expected a throw');
}

describe('errors', () => {
  it('carry a code, the argument and an "Expected ... for ... but received ..." message', () => {
    const e = invalidType('options.alpha', 'a number', 'x');
    expect(e).toBeInstanceOf(Error);
    expect(e.name).toBe('TorchSaliencyError');
    expect(e.code).toBe('ERR_INVALID_ARG_TYPE');
    expect(e.argument).toBe('options.alpha');
    expect(e.message).toBe('Expected a number for options.alpha but received "x"');
    const r = outOfRange('options.top', 'an integer >= 0', -1);
    expect([r.code, r.argument, r.message]).toEqual(['ERR_OUT_OF_RANGE', 'options.top', 'Expected an integer >= 0 for options.top but received -1']);
  });

  it('describe received values briefly', () => {
    expect(describeValue(null)).toBe('null');
    expect(describeValue(undefined)).toBe('undefined');
    expect(describeValue(3.5)).toBe('3.5');
    expect(describeValue(true)).toBe('true');
    expect(describeValue('a'.repeat(100))).toBe(JSON.stringify('a'.repeat(57) + '...'));
    expect(describeValue([1, 2, 3])).toBe('an array of length 3');
    expect(describeValue(new Float32Array(7))).toBe('a Float32Array of length 7');
    expect(describeValue(() => 1)).toBe('a function');
    expect(describeValue(new Map())).toBe('an object (Map)');
  });

  it('abort errors are named AbortError with code ABORT_ERR and keep the reason', () => {
    const e = abortError('why');
    expect([e.name, e.code, e.cause]).toEqual(['AbortError', 'ABORT_ERR', 'why']);
  });

  it('native rejections keep code and argument and point the stack at the caller', () => {
    const site = new Error('site');
    const e = fromNative({ code: 'ERR_INPUT_SHAPE', message: 'Expected 3 channels for image but received 1', argument: 'image' }, site);
    expect([e.code, e.argument, e.message]).toEqual(['ERR_INPUT_SHAPE', 'image', 'Expected 3 channels for image but received 1']);
    expect(e.stack).toContain('validate.test.ts');
    const plain = fromNative(new Error('boom'), site);
    expect([plain.code, plain.argument, plain.message]).toEqual(['ERR_NATIVE', undefined, 'boom']);
  });
});

describe('validate', () => {
  it('number: type, finiteness, integer and bounds, each with the argument name', () => {
    expect(v.number('n', 2.5)).toBe(2.5);
    expect(v.number('n', 3, { integer: true, min: 1, max: 3 })).toBe(3);
    const cases: [unknown, v.NumberRule, string, string][] = [
      ['2', {}, 'ERR_INVALID_ARG_TYPE', 'Expected a number for n but received "2"'],
      [NaN, {}, 'ERR_INVALID_ARG_TYPE', 'Expected a number for n but received NaN'],
      [Infinity, { min: 0 }, 'ERR_OUT_OF_RANGE', 'Expected a number >= 0 (finite) for n but received Infinity'],
      [1.5, { integer: true }, 'ERR_OUT_OF_RANGE', 'Expected an integer for n but received 1.5'],
      [0, { integer: true, min: 1 }, 'ERR_OUT_OF_RANGE', 'Expected an integer >= 1 for n but received 0'],
      [4, { min: 0, max: 3 }, 'ERR_OUT_OF_RANGE', 'Expected a number >= 0 and <= 3 for n but received 4'],
      [0, { above: 0 }, 'ERR_OUT_OF_RANGE', 'Expected a number > 0 for n but received 0'],
    ];
    for (const [value, rule, code, message] of cases) {
      const e = thrown(() => v.number('n', value, rule));
      expect([e.code, e.argument, e.message]).toEqual([code, 'n', message]);
    }
  });

  it('optional values fall back to their defaults only when undefined', () => {
    expect(v.optionalNumber('o', undefined, 7)).toBe(7);
    expect(v.optionalNumber('o', 0, 7)).toBe(0);
    expect(thrown(() => v.optionalNumber('o', null, 7)).code).toBe('ERR_INVALID_ARG_TYPE');
    expect(v.boolean('b', undefined, true)).toBe(true);
    expect(v.boolean('b', false, true)).toBe(false);
    expect(thrown(() => v.boolean('b', 1, true)).message).toBe('Expected a boolean for b but received 1');
    expect(v.oneOf('f', undefined, ['a', 'b'], 'b')).toBe('b');
    expect(v.oneOf('f', 'a', ['a', 'b'], 'b')).toBe('a');
    const bad = thrown(() => v.oneOf('options.fit', 'stretch', ['cover', 'fill'], 'cover'));
    expect([bad.code, bad.argument, bad.message]).toEqual([
      'ERR_INVALID_ARG_VALUE',
      'options.fit',
      `Expected one of 'cover', 'fill' for options.fit but received "stretch"`,
    ]);
    expect(thrown(() => v.oneOf('f', 3, ['a'], 'a')).code).toBe('ERR_INVALID_ARG_TYPE');
  });

  it('strings, lists, objects and known keys', () => {
    expect(v.string('s', 'x')).toBe('x');
    expect(thrown(() => v.string('s', '')).code).toBe('ERR_INVALID_ARG_TYPE');
    expect(v.numberList('l', undefined, [1])).toEqual([1]);
    expect(v.numberList('l', 2, [])).toEqual([2]);
    expect(v.numberList('l', [0.1, 0.2], [], { min: 0, max: 1 })).toEqual([0.1, 0.2]);
    const item = thrown(() => v.numberList('options.areas', [0.1, 2], [], { min: 0, max: 1 }));
    expect([item.code, item.argument]).toEqual(['ERR_OUT_OF_RANGE', 'options.areas[1]']);
    expect(thrown(() => v.numberList('l', [], [])).code).toBe('ERR_INVALID_ARG_TYPE');
    expect(v.plainObject('o', undefined)).toEqual({});
    for (const bad of [null, [], 3, 'x']) expect(thrown(() => v.plainObject('options', bad)).argument).toBe('options');
    v.knownKeys('options', { a: 1, b: undefined, zz: undefined }, ['a']);
    const typo = thrown(() => v.knownKeys('options', { siez: 3 }, ['size', 'fit']));
    expect([typo.code, typo.argument, typo.message]).toEqual([
      'ERR_INVALID_ARG_VALUE',
      'options.siez',
      'Expected one of the options size, fit for options.siez but received "siez"',
    ]);
  });

  it('size: a side or a [height, width] pair of positive integers', () => {
    expect(v.size('s', 8)).toEqual([8, 8]);
    expect(v.size('s', [4, 6])).toEqual([4, 6]);
    expect(thrown(() => v.size('options.size', 0)).code).toBe('ERR_OUT_OF_RANGE');
    expect(thrown(() => v.size('options.size', [4, 1.5])).argument).toBe('options.size[1]');
    expect(thrown(() => v.size('options.size', [4])).code).toBe('ERR_INVALID_ARG_TYPE');
    expect(thrown(() => v.size('options.size', '4')).message).toBe('Expected a positive integer or a [height, width] pair for options.size but received "4"');
  });
});
