/**
 * Method options on the command line: `--max-iter 300` for every chosen method that has the option, or
 * `--rise.num-masks 2000` for one method. A flag no chosen method knows is a usage error.
 */
import { invalidValue } from '../errors.js';
import { METHODS, methodNames, type MethodName } from '../methods/index.js';
import { parseValue } from '../parse.js';
import { UsageError, camel } from './args.js';

/** The common options a command line may set (target has its own flag; signal and onProgress are the CLI's). */
const COMMON = ['batchSize', 'progressEvery', 'resize', 'smooth', 'channels'];

/** The option names (camel case) `method` takes. */
export function optionNames(method: string): Set<string> {
  const spec = METHODS[method as MethodName];
  return new Set([...Object.keys(spec?.defaults ?? {}), ...COMMON]);
}

/** The --method list, each a known method (ERR_INVALID_ARG_VALUE naming --method otherwise), without repeats. */
export function methodList(text: string): MethodName[] {
  const list = text.split(',').map((s) => s.trim());
  for (const name of list) {
    if (!Object.hasOwn(METHODS, name)) throw invalidValue('--method', `a comma list of ${methodNames().join(', ')}`, name);
  }
  if (new Set(list).size !== list.length) throw new UsageError(`Expected each method once in --method but received ${JSON.stringify(text)}`, '--method');
  return list as MethodName[];
}

/** Whether `flag` (without its dashes) can be an option of one of `methods`: used while parsing. */
export function isMethodFlag(flag: string): boolean {
  return /^([a-z][a-z0-9-]*\.)?[a-z][a-z0-9-]*$/.test(flag);
}

/**
 * Each method's options from the open-ended flags. `--opt` goes to every method that has it, and
 * `--method.opt` to that method only (a later flag wins); either must name an option some method has.
 */
export function methodOptions(extra: readonly { flag: string; value: string }[], methods: readonly MethodName[]): Map<MethodName, Record<string, unknown>> {
  const out = new Map(methods.map((m) => [m, {} as Record<string, unknown>]));
  // Options for all methods first, so a method's own flag wins over a shared one whatever the order.
  const ordered = [...extra.filter((e) => !e.flag.includes('.')), ...extra.filter((e) => e.flag.includes('.'))];
  for (const { flag, value } of ordered) {
    const dot = flag.indexOf('.');
    const option = camel(flag.slice(dot + 1));
    if (dot >= 0) {
      const method = flag.slice(0, dot) as MethodName;
      if (!out.has(method))
        throw new UsageError(`Unknown option --${flag}: ${method} is not among the methods of --method (${methods.join(', ')})`, `--${flag}`);
      if (!optionNames(method).has(option)) {
        throw new UsageError(`Unknown option --${flag}: ${method} has no option ${option} (see docs/methods/${method}.md)`, `--${flag}`);
      }
      out.get(method)![option] = parseValue(value);
    } else {
      const takers = methods.filter((m) => optionNames(m).has(option));
      if (takers.length === 0)
        throw new UsageError(`Unknown option --${flag}: no method of --method (${methods.join(', ')}) has an option ${option} (see --help)`, `--${flag}`);
      for (const m of takers) out.get(m)![option] = parseValue(value);
    }
  }
  return out;
}

/** --target: a class index, a label, top-k, or a comma list of them. */
export function targetFlag(text: string): unknown {
  const parts = text.split(',').map((s) => (Number.isInteger(Number(s)) && s.trim() !== '' ? Number(s) : s.trim()));
  return parts.length === 1 ? parts[0] : parts;
}
