#!/usr/bin/env node
/**
 * The torch-saliency command line: data (JSON) on stdout, progress and logs on stderr, a progress bar
 * only on a TTY. Exit codes: 0 success, 1 failure while running, 2 bad usage or bad arguments.
 */
import { basename, extname, join } from 'node:path';
import { mkdir, writeFile } from 'node:fs/promises';
import { loadModel, readImage, methods, type Image, type Model } from './index.js';
import * as serveCommand from './cli-commands/serve.js';
import * as workerCommand from './cli-commands/worker.js';
import * as submitCommand from './cli-commands/submit.js';
import { TorchSaliencyError } from './errors.js';
import { imagePNG, writePicture } from './pictures.js';
import { parseValue } from './parse.js';
import type { PictureKind } from './explanation.js';

export { parseValue };

const HELP = `torch-saliency: saliency maps for TorchScript image classifiers

Examples:
  torch-saliency explain --model classifier.pt --labels labels.txt --out out/ cat.jpg dog.jpg
  torch-saliency explain --model m.pt --method extremal-perturbation --areas 0.05,0.1,0.2 --size 224 cat.jpg
  torch-saliency explain --model m.pt --method grad-cam --layer features.5 --target top-3 --json cat.jpg
  torch-saliency predict --model m.pt --labels labels.txt --size 224 cat.jpg
  torch-saliency layers --model m.pt
  torch-saliency methods
  torch-saliency serve --model m.pt --labels labels.txt --size 224 --port 8080
  torch-saliency worker --redis redis://127.0.0.1:6379 --models ./models
  torch-saliency submit --redis redis://127.0.0.1:6379 --model m --method grad-cam --layer features.5 cat.jpg

Commands:
  explain    saliency maps for each image: pictures and summary.json in --out (default ./saliency-out)
  predict    class scores for each image (JSON on stdout)
  layers     the model's named submodules (usable as --layer)
  methods    the methods explain knows
  serve      an HTTP service (POST /predict, POST /explain?method=...; see serve --help, docs/service.md)
  worker     consume predict/explain jobs from a BullMQ queue on Redis (worker --help)
  submit     put images on that queue, optionally wait for the answers (submit --help)

Common options:
  --model PATH         TorchScript model (torch.jit.trace or torch.jit.script, then .save())  [required]
  --labels PATH        class names, one per line
  --device D           cpu | cuda | cuda:N | auto (default auto)
  --threads N          libtorch intra-op threads (default: cores available)
  --size N | HxW       resize images to this size (default: their own size; required if they differ)
  --fit F              cover | contain | fill (default cover)
  --mean a,b,c --std a,b,c   normalisation for models exported without it
  --json               print the JSON summary on stdout (explain) instead of a table
  -h, --help           this help

explain options:
  --method NAME        default extremal-perturbation (see "torch-saliency methods")
  --target T           class index, label, top-1 (default) or top-k; a comma list gives several
  --out DIR            where pictures and summary.json go
  --pictures LIST      which pictures: mask,overlay,heatmap,preserved (default: all that apply)
  --<option> VALUE     any option of the method in kebab case, e.g. --areas 0.05,0.1 --max-iter 300
                       --perturbation fade --variant delete --layer features.5 --num-masks 4000 --seed 1
  Numbers and comma lists of numbers are parsed; true/false are booleans.

Environment: NO_COLOR disables colour. Exit codes: 0 ok, 1 failed while running, 2 bad usage.
`;

interface Parsed {
  command: string;
  flags: Map<string, string | boolean>;
  positional: string[];
}

const BOOLEAN_FLAGS = new Set(['json', 'help', 'h', 'quiet']);

export function parseArgs(argv: string[]): Parsed {
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

class UsageError extends Error {}

function camel(kebab: string): string {
  return kebab.replace(/-([a-z])/g, (_, c: string) => c.toUpperCase());
}

function size(text: string | boolean | undefined): number | [number, number] | undefined {
  if (text === undefined) return undefined;
  const m = /^(\d+)(?:x(\d+))?$/.exec(String(text));
  if (!m) throw new UsageError(`Expected N or HxW for --size but received ${JSON.stringify(text)}`);
  return m[2] ? [Number(m[1]), Number(m[2])] : Number(m[1]);
}

function numbers(name: string, text: string | boolean | undefined): number[] | undefined {
  if (text === undefined) return undefined;
  const v = parseValue(text);
  const list = Array.isArray(v) ? v : [v];
  if (!list.every((x) => typeof x === 'number')) throw new UsageError(`Expected a comma list of numbers for --${name} but received ${JSON.stringify(text)}`);
  return list as number[];
}

const log = (msg: string) => process.stderr.write(`${msg}\n`);

function progressBar(label: string): ((p: { iteration: number; total: number; fraction: number }) => void) | undefined {
  if (!process.stderr.isTTY) return undefined;
  return (p) => {
    const width = 30;
    const done = Math.round(p.fraction * width);
    process.stderr.write(`\r${label} [${'#'.repeat(done)}${'.'.repeat(width - done)}] ${p.iteration}/${p.total}`);
    if (p.iteration + 1 >= p.total) process.stderr.write('\n');
  };
}

const COMMON = new Set([
  'port',
  'host',
  'max-batch',
  'model',
  'labels',
  'device',
  'threads',
  'size',
  'fit',
  'mean',
  'std',
  'json',
  'help',
  'h',
  'out',
  'method',
  'target',
  'pictures',
  'quiet',
]);

async function openModel(flags: Parsed['flags']): Promise<Model> {
  const model = flags.get('model');
  if (typeof model !== 'string') throw new UsageError('Expected a TorchScript file for --model but received nothing (see --help)');
  return loadModel(model, {
    device: (flags.get('device') as 'cpu' | undefined) ?? 'auto',
    threads: flags.has('threads') ? Number(flags.get('threads')) : undefined,
    labels: typeof flags.get('labels') === 'string' ? (flags.get('labels') as string) : undefined,
    mean: numbers('mean', flags.get('mean')),
    std: numbers('std', flags.get('std')),
  });
}

async function readImages(flags: Parsed['flags'], files: string[]): Promise<Image[]> {
  if (files.length === 0) throw new UsageError('Expected one or more image files but received none (see --help)');
  const fit = flags.get('fit') as 'cover' | undefined;
  const images = await Promise.all(files.map((f) => readImage(f, { size: size(flags.get('size')), fit })));
  const [h, w] = [images[0].height, images[0].width];
  if (!images.every((im) => im.height === h && im.width === w)) {
    throw new UsageError('The images differ in size: give --size N (or HxW) to resize them to one size');
  }
  return images;
}

function targetOption(text: string | boolean | undefined): unknown {
  if (text === undefined) return undefined;
  const parts = String(text)
    .split(',')
    .map((s) => (Number.isInteger(Number(s)) && s.trim() !== '' ? Number(s) : s.trim()));
  return parts.length === 1 ? parts[0] : parts;
}

async function explain(p: Parsed): Promise<void> {
  const model = await openModel(p.flags);
  try {
    const images = await readImages(p.flags, p.positional);
    const method = (p.flags.get('method') as string | undefined) ?? 'extremal-perturbation';
    const options: Record<string, unknown> = { method };
    for (const [k, v] of p.flags) if (!COMMON.has(k)) options[camel(k)] = parseValue(v);
    const target = targetOption(p.flags.get('target'));
    // One target spec for every image: a list means several targets per image.
    if (target !== undefined) options.target = images.length > 1 && Array.isArray(target) ? images.map(() => target) : target;
    options.onProgress = progressBar(method);
    const out = (p.flags.get('out') as string | undefined) ?? 'saliency-out';
    log(`torch-saliency: ${method} on ${images.length} image(s), device ${model.device}`);
    const result = await model.explain(images, options as never);
    await mkdir(out, { recursive: true });
    const wanted = typeof p.flags.get('pictures') === 'string' ? String(p.flags.get('pictures')).split(',') : ['mask', 'overlay', 'heatmap', 'preserved'];
    const written: string[] = [];
    for (let i = 0; i < images.length; i++) {
      written.push(await writePicture(join(out, `${stem(p.positional[i])}.png`), imagePNG(images[i])));
    }
    for (const map of result.maps) {
      const name = [stem(p.positional[map.image]), map.label ?? `class${map.target}`, map.area !== undefined ? `area${map.area}` : undefined]
        .filter(Boolean)
        .join('-')
        .replace(/[^\w.-]+/g, '_');
      const isMask = map.area !== undefined;
      for (const kind of wanted) {
        if (kind === 'preserved' && !isMask) continue;
        const file = join(out, `${name}-${kind}.png`);
        const bytes = map.png(kind as PictureKind, images[map.image]);
        written.push(await writePicture(file, bytes));
      }
    }
    const summary = { model: p.flags.get('model'), images: p.positional, ...result.toJSON(), pictures: written };
    await writeFile(join(out, 'summary.json'), JSON.stringify(summary, null, 2));
    if (p.flags.get('json')) {
      process.stdout.write(`${JSON.stringify(summary, null, 2)}\n`);
    } else {
      for (const map of result.maps) {
        const s = map.stats();
        const area = map.area !== undefined ? ` area ${map.area}` : '';
        process.stdout.write(`${p.positional[map.image]}\t${map.label ?? map.target}${area}\tmean ${s.mean.toFixed(3)} max ${s.max.toFixed(3)}\n`);
      }
      process.stdout.write(`wrote ${written.length} pictures and ${join(out, 'summary.json')} in ${(result.timings.totalMs / 1000).toFixed(1)} s\n`);
    }
  } finally {
    model.dispose();
  }
}

function stem(file: string): string {
  return basename(file, extname(file));
}

async function predict(p: Parsed): Promise<void> {
  const model = await openModel(p.flags);
  try {
    const images = await readImages(p.flags, p.positional);
    const predictions = await model.predict(images, { top: 5 });
    const out = predictions.map((pr, i) => ({ image: p.positional[i], top: pr.top }));
    process.stdout.write(`${JSON.stringify(out, null, 2)}\n`);
  } finally {
    model.dispose();
  }
}

async function layers(p: Parsed): Promise<void> {
  const model = await openModel(p.flags);
  try {
    process.stdout.write(`${model.layers().join('\n')}\n`);
  } finally {
    model.dispose();
  }
}

const COMMAND_MODULES: Record<string, (argv: string[]) => Promise<number>> = { serve: serveCommand.run, worker: workerCommand.run, submit: submitCommand.run };

export async function main(argv: string[]): Promise<number> {
  if (COMMAND_MODULES[argv[0]]) return COMMAND_MODULES[argv[0]](argv.slice(1));
  const p = parseArgs(argv);
  if (p.flags.get('help') || p.flags.get('h') || !p.command || p.command === 'help') {
    process.stdout.write(HELP);
    return p.command || p.flags.size ? 0 : 2;
  }
  try {
    switch (p.command) {
      case 'explain':
        await explain(p);
        return 0;
      case 'predict':
        await predict(p);
        return 0;
      case 'layers':
        await layers(p);
        return 0;
      case 'methods':
        process.stdout.write(`${methods().join('\n')}\n`);
        return 0;
      default:
        throw new UsageError(`Unknown command '${p.command}' (expected explain, predict, layers, methods, serve, worker or submit; see --help)`);
    }
  } catch (e) {
    if (e instanceof UsageError) {
      log(`torch-saliency: ${e.message}`);
      return 2;
    }
    if (e instanceof TorchSaliencyError) {
      log(`torch-saliency: ${e.message} [${e.code}]`);
      return e.code.startsWith('ERR_INVALID') || e.code === 'ERR_OUT_OF_RANGE' || e.code === 'ERR_LAYER_NOT_FOUND' ? 2 : 1;
    }
    log(`torch-saliency: ${(e as Error).stack ?? String(e)}`);
    return 1;
  }
}

if (require.main === module) {
  main(process.argv.slice(2)).then((code) => {
    process.exitCode = code;
  });
}
