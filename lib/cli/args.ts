/**
 * What every command shares: the argument parser, the flags all commands take (model, labels, device,
 * image size...), the model and image loaders they imply, and where logs go. Data goes to stdout, logs and
 * progress to stderr.
 */
import { loadModel, readImage, type Fit, type Image, type Model } from '../index.js';
import { parseValue } from '../parse.js';

export interface ParsedArgs {
  command: string;
  flags: Map<string, string | boolean>;
  positional: string[];
}

/** Flags that never take a value. */
const BOOLEAN_FLAGS = new Set(['json', 'help', 'h']);

/** Flags every command understands (the model, its input, output format). */
export const SHARED_FLAGS: readonly string[] = ['model', 'labels', 'device', 'threads', 'size', 'fit', 'mean', 'std', 'json', 'help', 'h'];

export function parseArgs(argv: string[]): ParsedArgs {
  const flags = new Map<string, string | boolean>();
  const positional: string[] = [];
  let command = '';
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i];
    if (arg === '--') {
      positional.push(...argv.slice(i + 1));
      break;
    }
    if (arg.startsWith('-') && arg.length > 1) {
      const body = arg.replace(/^--?/, '');
      const eq = body.indexOf('=');
      if (eq >= 0) {
        flags.set(body.slice(0, eq), body.slice(eq + 1));
      } else if (BOOLEAN_FLAGS.has(body) || i + 1 >= argv.length || (argv[i + 1].startsWith('--') && argv[i + 1].length > 2)) {
        flags.set(body, true);
      } else {
        flags.set(body, argv[++i]);
      }
    } else if (!command) {
      command = arg;
    } else {
      positional.push(arg);
    }
  }
  return { command, flags, positional };
}

/** Bad usage of the command line (exit code 2), said in one line. */
export class UsageError extends Error {}

export function camel(kebab: string): string {
  return kebab.replace(/-([a-z])/g, (_, c: string) => c.toUpperCase());
}

/** --size N or HxW. */
export function sizeFlag(text: string | boolean | undefined): number | [number, number] | undefined {
  if (text === undefined) return undefined;
  const m = /^(\d+)(?:x(\d+))?$/.exec(String(text));
  if (!m) throw new UsageError(`Expected N or HxW for --size but received ${JSON.stringify(text)}`);
  return m[2] ? [Number(m[1]), Number(m[2])] : Number(m[1]);
}

function numbersFlag(name: string, text: string | boolean | undefined): number[] | undefined {
  if (text === undefined) return undefined;
  const v = parseValue(text);
  const list = Array.isArray(v) ? v : [v];
  if (!list.every((x) => typeof x === 'number')) throw new UsageError(`Expected a comma list of numbers for --${name} but received ${JSON.stringify(text)}`);
  return list as number[];
}

export const log = (msg: string): void => {
  process.stderr.write(`${msg}\n`);
};

/** A progress bar on stderr when it is a terminal; nothing otherwise. */
export function progressBar(label: string): ((p: { iteration: number; total: number; fraction: number }) => void) | undefined {
  if (!process.stderr.isTTY) return undefined;
  return (p) => {
    const width = 30;
    const done = Math.round(p.fraction * width);
    process.stderr.write(`\r${label} [${'#'.repeat(done)}${'.'.repeat(width - done)}] ${p.iteration}/${p.total}`);
    if (p.iteration + 1 >= p.total) process.stderr.write('\n');
  };
}

/** The model --model names, with --labels, --device, --threads, --mean and --std. */
export async function openModel(flags: ParsedArgs['flags']): Promise<Model> {
  const model = flags.get('model');
  if (typeof model !== 'string') throw new UsageError('Expected a TorchScript file for --model but received nothing (see --help)');
  return loadModel(model, {
    device: (flags.get('device') as 'cpu' | undefined) ?? 'auto',
    threads: flags.has('threads') ? Number(flags.get('threads')) : undefined,
    labels: typeof flags.get('labels') === 'string' ? (flags.get('labels') as string) : undefined,
    mean: numbersFlag('mean', flags.get('mean')),
    std: numbersFlag('std', flags.get('std')),
  });
}

/** The image files, resized by --size and --fit; they must end up one size. */
export async function readImages(flags: ParsedArgs['flags'], files: string[]): Promise<Image[]> {
  if (files.length === 0) throw new UsageError('Expected one or more image files but received none (see --help)');
  const fit = flags.get('fit') as Fit | undefined;
  const images = await Promise.all(files.map((f) => readImage(f, { size: sizeFlag(flags.get('size')), fit })));
  const [h, w] = [images[0].height, images[0].width];
  if (!images.every((im) => im.height === h && im.width === w)) {
    throw new UsageError('The images differ in size: give --size N (or HxW) to resize them to one size');
  }
  return images;
}

/** Runs `work` on the model --model names and disposes of it afterwards. */
export async function withModel(flags: ParsedArgs['flags'], work: (model: Model) => Promise<void>): Promise<void> {
  const model = await openModel(flags);
  try {
    await work(model);
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
  /** Runs on the shared parser's result (flags, positionals); errors become exit codes in index.ts. */
  run?(args: ParsedArgs): Promise<void>;
  /** Or: the command parses its own arguments (strictly, util.parseArgs) and returns its exit code. */
  main?(argv: string[]): Promise<number>;
}
