/**
 * What every command shares: one strict argument parser (an unknown flag, a flag without its value or a
 * value of the wrong kind is a usage error naming the flag), the flags all model commands take, the model
 * and image loaders they imply, one rule for exit codes, and where logs go. Data goes to stdout, logs and
 * progress to stderr.
 */
import { SingleBar } from 'cli-progress';
import { TorchSaliencyError, isCallerError } from '../errors.js';
import { loadModel, readImage, type Fit, type Image, type Model } from '../index.js';

/** A progress bar `label [bar] value/total {what}` on stderr when it is a terminal; undefined otherwise. */
export function terminalBar(label: string): SingleBar | undefined {
  if (!process.stderr.isTTY) return undefined;
  return new SingleBar({ stream: process.stderr, format: `${label} [{bar}] {value}/{total} {what}`, hideCursor: true, clearOnComplete: false });
}

/**
 * Bad usage of the command line: a TorchSaliencyError with code ERR_USAGE (one of the caller's codes, so
 * exit 2) naming the flag in `argument`.
 */
export class UsageError extends TorchSaliencyError {
  constructor(message: string, argument?: string) {
    super('ERR_USAGE', message, { argument });
  }
}

/** What a flag takes. 'numbers' is a comma list of numbers; 'size' is N or HxW. */
export type FlagType = 'string' | 'boolean' | 'integer' | 'number' | 'numbers' | 'size';

export interface FlagSpec {
  type: FlagType;
  short?: string;
  /** For 'integer' and 'number': the smallest and largest accepted values. */
  min?: number;
  max?: number;
  /** For 'string': the accepted values. */
  choices?: readonly string[];
}

export type FlagSpecs = Readonly<Record<string, FlagSpec>>;

export type FlagValue = string | boolean | number | number[] | [number, number];

export interface ParsedArgs {
  /** Each given flag by its name, converted to its type (the last one wins when a flag is repeated). */
  values: Record<string, FlagValue | undefined>;
  positionals: string[];
  /** Flags the spec does not know that `extra` accepted, in order, with their text values. */
  extra: { flag: string; value: string }[];
}

export interface ParseOptions {
  /** Whether operands (files) are allowed (default true). */
  positionals?: boolean;
  /** Flags outside the spec that the command takes as open-ended options (each takes a value): true to accept. */
  extra?: (name: string) => boolean;
}

/** A value after a flag: anything but another flag (a negative number is a value). */
function isValue(text: string | undefined): boolean {
  return text !== undefined && (!text.startsWith('-') || text === '-' || /^-\d|^-\.\d/.test(text));
}

function convert(flag: string, spec: FlagSpec, text: string): FlagValue {
  const name = `--${flag}`;
  const bad = (what: string): never => {
    throw new UsageError(`Expected ${what} for ${name} but received ${JSON.stringify(text)}`, name);
  };
  const range = (n: number, what: string): number => {
    const low = spec.min !== undefined && n < spec.min;
    const high = spec.max !== undefined && n > spec.max;
    if ((low || high) && spec.min !== undefined && spec.max !== undefined) bad(`${what} from ${spec.min} to ${spec.max}`);
    if (low) bad(`${what} >= ${spec.min}`);
    if (high) bad(`${what} <= ${spec.max}`);
    return n;
  };
  switch (spec.type) {
    case 'string':
      if (spec.choices && !spec.choices.includes(text)) bad(`one of ${spec.choices.join(', ')}`);
      return text;
    case 'integer':
      if (!/^-?\d+$/.test(text.trim()) || !Number.isSafeInteger(Number(text))) bad('a whole number');
      return range(Number(text), 'a whole number');
    case 'number':
      if (text.trim() === '' || !Number.isFinite(Number(text))) bad('a number');
      return range(Number(text), 'a number');
    case 'numbers': {
      const list = text.split(',').map((s) => (s.trim() === '' ? NaN : Number(s)));
      if (list.length === 0 || !list.every(Number.isFinite)) bad('a comma list of numbers');
      return list;
    }
    case 'size': {
      const m = /^(\d+)(?:x(\d+))?$/.exec(text);
      if (!m || Number(m[1]) < 1 || Number(m[2] ?? 1) < 1) bad('N or HxW (whole numbers >= 1)');
      return [Number(m![1]), Number(m![2] ?? m![1])];
    }
    default:
      return bad('no value');
  }
}

/**
 * Parses `argv` strictly against `specs`: --name value, --name=value, -h; `--` ends the flags. A flag the
 * spec does not know is an error unless `options.extra` accepts it.
 */
export function parseFlags(argv: readonly string[], specs: FlagSpecs, options: ParseOptions = {}): ParsedArgs {
  const values: ParsedArgs['values'] = {};
  const positionals: string[] = [];
  const extra: ParsedArgs['extra'] = [];
  const shorts = new Map(Object.entries(specs).flatMap(([name, s]) => (s.short ? [[s.short, name] as const] : [])));
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i];
    if (arg === '--') {
      positionals.push(...argv.slice(i + 1));
      break;
    }
    if (!arg.startsWith('-') || arg === '-' || isValue(arg)) {
      positionals.push(arg);
      continue;
    }
    let name: string;
    let inline: string | undefined;
    if (arg.startsWith('--')) {
      const eq = arg.indexOf('=');
      name = eq >= 0 ? arg.slice(2, eq) : arg.slice(2);
      inline = eq >= 0 ? arg.slice(eq + 1) : undefined;
    } else {
      const short = shorts.get(arg.slice(1));
      if (!short) throw new UsageError(`Unknown option ${arg} (see --help)`, arg);
      name = short;
    }
    const spec = Object.hasOwn(specs, name) ? specs[name] : undefined;
    if (!spec) {
      if (!name || !options.extra?.(name)) throw new UsageError(`Unknown option --${name} (see --help)`, `--${name}`);
      const value: string | undefined = inline ?? (isValue(argv[i + 1]) ? argv[++i] : undefined);
      if (value === undefined) throw new UsageError(`Expected a value after --${name}`, `--${name}`);
      extra.push({ flag: name, value });
      continue;
    }
    if (spec.type === 'boolean') {
      if (inline !== undefined) throw new UsageError(`Expected no value for --${name} but received ${JSON.stringify(inline)}`, `--${name}`);
      values[name] = true;
      continue;
    }
    const value: string | undefined = inline ?? (isValue(argv[i + 1]) ? argv[++i] : undefined);
    if (value === undefined) throw new UsageError(`Expected a value after --${name}`, `--${name}`);
    values[name] = convert(name, spec, value);
  }
  if (options.positionals === false && positionals.length > 0) {
    throw new UsageError(`Unexpected argument ${JSON.stringify(positionals[0])} (see --help)`, positionals[0]);
  }
  return { values, positionals, extra };
}

/** The flags of the commands that load a model. */
export const MODEL_FLAGS: FlagSpecs = {
  model: { type: 'string' },
  labels: { type: 'string' },
  device: { type: 'string' },
  threads: { type: 'integer', min: 0 },
  'score-maps': { type: 'string', choices: ['refuse', 'mean'] },
  help: { type: 'boolean', short: 'h' },
};

/** The flags of the commands that read images. */
export const IMAGE_FLAGS: FlagSpecs = {
  size: { type: 'size' },
  fit: { type: 'string', choices: ['cover', 'contain', 'fill'] },
  mean: { type: 'numbers' },
  std: { type: 'numbers' },
};

export function camel(kebab: string): string {
  return kebab.replace(/-([a-z])/g, (_, c: string) => c.toUpperCase());
}

/** A line on stderr, prefixed by the program's name. */
export const log = (msg: string): void => {
  process.stderr.write(`torch-saliency: ${msg}\n`);
};

/**
 * The one rule for exit codes: a usage error or any of the caller's errors (lib/errors.ts
 * CALLER_ERROR_CODES) exits 2 with one line; anything else failed while running and exits 1.
 */
export function reportError(e: unknown): number {
  if (e instanceof TorchSaliencyError) {
    log(`${e.message} [${e.code}]`);
    return isCallerError(e) ? 2 : 1;
  }
  // A system error (a port in use, a disk full) is one line; anything else is a bug: its stack helps.
  const sys = e as { code?: unknown; message?: unknown };
  if (typeof sys?.code === 'string' && typeof sys.message === 'string') log(`${sys.message} [${sys.code}]`);
  else log(`${(e as Error)?.stack ?? String(e)}`);
  return 1;
}

/** Runs a command, turning its errors into exit codes by the one rule (reportError). */
export async function exitCode(work: () => Promise<number>): Promise<number> {
  try {
    return await work();
  } catch (e) {
    return reportError(e);
  }
}

/** The model --model names, with --labels, --device, --threads, --mean and --std. */
export async function openModel(values: ParsedArgs['values']): Promise<Model> {
  const model = values.model;
  if (typeof model !== 'string') throw new UsageError('Expected a TorchScript file for --model but received nothing (see --help)', '--model');
  return loadModel(model, {
    device: (values.device as 'cpu' | undefined) ?? 'auto',
    threads: values.threads as number | undefined,
    labels: values.labels as string | undefined,
    mean: values.mean as number[] | undefined,
    std: values.std as number[] | undefined,
    scoreMaps: values['score-maps'] as 'mean' | undefined,
  });
}

/** --size as readImage takes it. */
export function sizeOf(values: ParsedArgs['values']): [number, number] | undefined {
  return values.size as [number, number] | undefined;
}

/** The image files, resized by --size and --fit; they must end up one size. */
export async function readImages(values: ParsedArgs['values'], files: string[]): Promise<Image[]> {
  if (files.length === 0) throw new UsageError('Expected one or more image files but received none (see --help)');
  const fit = values.fit as Fit | undefined;
  const images = await Promise.all(files.map((f) => readImage(f, { size: sizeOf(values), fit })));
  const [h, w] = [images[0].height, images[0].width];
  if (!images.every((im) => im.height === h && im.width === w)) {
    throw new UsageError('The images differ in size: give --size N (or HxW) to resize them to one size', '--size');
  }
  return images;
}

/** Runs `work` on the model --model names and disposes of it afterwards. */
export async function withModel<T>(values: ParsedArgs['values'], work: (model: Model) => Promise<T>): Promise<T> {
  const model = await openModel(values);
  try {
    return await work(model);
  } finally {
    model.dispose();
  }
}

/** A command of the CLI: one file in lib/cli/, one line in lib/cli/commands.ts. */
export interface Command {
  readonly name: string;
  /** Lines for the "Commands:" list of --help: the first beside the name, the others below it. */
  readonly summary: readonly string[];
  /** Example invocations for the top of --help (without the leading "torch-saliency"). */
  readonly examples: readonly string[];
  /** The command's own section of --help, if it has one. */
  readonly help?: string;
  /** The flags the command takes (with -h/--help); `run` gets them parsed strictly. */
  readonly flags?: FlagSpecs;
  /** How to parse beyond `flags`: operands, open-ended flags. */
  readonly parse?: ParseOptions;
  /** Runs on the parsed arguments and returns the exit code (undefined: 0); errors become exit codes by reportError. */
  run?(args: ParsedArgs): Promise<number | void>;
  /** Or: the command parses its own arguments (serve, worker, submit: their own --help) and returns its exit code. */
  main?(argv: string[]): Promise<number>;
}
