/** Methods by name. Each method file calls registerMethod; methods/index.ts imports them all. */
import { invalidType, invalidValue } from '../errors.js';
import type { MethodSpec } from './types.js';

// eslint-disable-next-line @typescript-eslint/no-explicit-any
const methods = new Map<string, MethodSpec<any>>();

export function registerMethod<O extends object>(spec: MethodSpec<O>): MethodSpec<O> {
  methods.set(spec.name, spec);
  return spec;
}

export function methodNames(): string[] {
  return [...methods.keys()].sort();
}

export function getMethod(name: unknown): MethodSpec {
  const expected = `one of ${methodNames()
    .map((n) => `'${n}'`)
    .join(', ')}`;
  if (typeof name !== 'string') throw invalidType('options.method', expected, name);
  const spec = methods.get(name);
  if (!spec) throw invalidValue('options.method', expected, name);
  return spec;
}
