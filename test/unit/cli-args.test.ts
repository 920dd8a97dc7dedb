// The command line's one parser (lib/cli/args.ts parseFlags) and the routing of method options
// (lib/cli/method-options.ts): strict, typed, and every error names its flag.
import { describe, expect, it } from 'vitest';
import { parseFlags, reportError, UsageError, type FlagSpecs } from '../../lib/cli/args.js';
import { methodList, methodOptions } from '../../lib/cli/method-options.js';
import { isCallerError } from '../../lib/errors.js';

const SPECS: FlagSpecs = {
  json: { type: 'boolean' },
  threads: { type: 'integer', min: 0 },
  scale: { type: 'number', min: 0, max: 1 },
  mean: { type: 'numbers' },
  size: { type: 'size' },
  fit: { type: 'string', choices: ['cover', 'contain'] },
  help: { type: 'boolean', short: 'h' },
};

const usage = (argv: string[], argument: string, message: RegExp) =>
  expect(() => parseFlags(argv, SPECS)).toThrow(expect.objectContaining({ code: 'ERR_USAGE', argument, message: expect.stringMatching(message) }));

describe('parseFlags', () => {
  it('converts each flag to its type, takes --name=value and -h, and keeps operands in order', () => {
    const p = parseFlags(
      ['a.png', '--threads', '2', '--scale=0.5', '--mean', '0.1,-0.2,0.3', '--size', '224x160', '-h', 'b.png', '--json', '--', '--c.png'],
      SPECS,
    );
    expect(p.values).toEqual({ threads: 2, scale: 0.5, mean: [0.1, -0.2, 0.3], size: [224, 160], help: true, json: true });
    expect(p.positionals).toEqual(['a.png', 'b.png', '--c.png']);
    expect(parseFlags(['--size', '64'], SPECS).values.size).toEqual([64, 64]);
    // A negative number is a value, not a flag.
    expect(parseFlags(['--mean', '-1'], SPECS).values.mean).toEqual([-1]);
  });

  it('rejects unknown flags, missing values, values of the wrong kind and values out of range, naming the flag', () => {
    usage(['--bogus', '1'], '--bogus', /Unknown option --bogus/);
    usage(['-x'], '-x', /Unknown option -x/);
    usage(['--threads'], '--threads', /Expected a value after --threads/);
    usage(['--threads', '--json'], '--threads', /Expected a value after --threads/);
    usage(['--threads', 'two'], '--threads', /whole number/);
    usage(['--threads', '1.5'], '--threads', /whole number/);
    usage(['--threads', '-1'], '--threads', />= 0/);
    usage(['--scale', '2'], '--scale', /a number from 0 to 1 for --scale/);
    usage(['--scale', 'NaN'], '--scale', /a number/);
    usage(['--mean', '1,,2'], '--mean', /comma list of numbers/);
    usage(['--size', '0'], '--size', /N or HxW/);
    usage(['--size', '2x'], '--size', /N or HxW/);
    usage(['--fit', 'stretch'], '--fit', /one of cover, contain/);
    usage(['--json=yes'], '--json', /no value/);
    expect(() => parseFlags(['x.png'], SPECS, { positionals: false })).toThrow(expect.objectContaining({ code: 'ERR_USAGE' }));
  });

  it('passes open-ended flags the command accepts on as text, in order', () => {
    const p = parseFlags(['--max-iter', '300', '--rise.num-masks=2000', 'a.png'], SPECS, { extra: () => true });
    expect(p.extra).toEqual([
      { flag: 'max-iter', value: '300' },
      { flag: 'rise.num-masks', value: '2000' },
    ]);
    expect(() => parseFlags(['--max-iter'], SPECS, { extra: () => true })).toThrow(expect.objectContaining({ argument: '--max-iter' }));
  });

  it('usage errors are caller errors: exit code 2; failures while running 1', () => {
    expect(isCallerError(new UsageError('x', '--x'))).toBe(true);
    const write = process.stderr.write;
    process.stderr.write = (() => true) as typeof process.stderr.write;
    try {
      expect(reportError(new UsageError('x', '--x'))).toBe(2);
      expect(reportError(Object.assign(new Error('listen EADDRINUSE'), { code: 'EADDRINUSE' }))).toBe(1);
      expect(reportError(new Error('bug'))).toBe(1);
    } finally {
      process.stderr.write = write;
    }
  });
});

describe('method options', () => {
  it('sends a shared option to every chosen method that has it and --method.option to one method, which wins', () => {
    const o = methodOptions(
      [
        { flag: 'rise.seed', value: '3' },
        { flag: 'seed', value: '1' },
        { flag: 'max-iter', value: '300' },
        { flag: 'smooth', value: '0.1' },
      ],
      methodList('rise,extremal-perturbation,grad-cam'),
    );
    expect(o.get('rise')).toEqual({ seed: 3, smooth: 0.1 });
    expect(o.get('extremal-perturbation')).toEqual({ maxIter: 300, smooth: 0.1 });
    expect(o.get('grad-cam')).toEqual({ smooth: 0.1 });
  });

  it('rejects an option no chosen method has, a method not chosen, and unknown or repeated methods', () => {
    const methods = methodList('gradient');
    expect(() => methodOptions([{ flag: 'max-iter', value: '3' }], methods)).toThrow(expect.objectContaining({ code: 'ERR_USAGE', argument: '--max-iter' }));
    expect(() => methodOptions([{ flag: 'rise.seed', value: '3' }], methods)).toThrow(expect.objectContaining({ argument: '--rise.seed' }));
    expect(() => methodOptions([{ flag: 'gradient.areas', value: '3' }], methods)).toThrow(expect.objectContaining({ argument: '--gradient.areas' }));
    expect(() => methodList('gradient,nope')).toThrow(expect.objectContaining({ code: 'ERR_INVALID_ARG_VALUE', argument: '--method' }));
    expect(() => methodList('rise,rise')).toThrow(expect.objectContaining({ code: 'ERR_USAGE', argument: '--method' }));
  });
});
