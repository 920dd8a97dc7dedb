/**
 * `torch-saliency scan`: scans a classifier for a backdoor (lib/backdoor) and writes the verdict: scan.json
 * (verdict, per-class table, options), per class the picture with the suspected trigger's box and the map, and
 * the page scan.html showing them all (lib/report/scan.ts), in --out. Stdout: the per-class table, or the JSON
 * with --json. Exit 0 whatever the verdict (the verdict is data).
 */
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { TorchSaliencyError } from '../errors.js';
import { readImage, scanBackdoor, type Image, type ScanBackdoorOptions } from '../index.js';
import { loadModel, type Device } from '../model.js';
import { writeScanPage } from '../report/scan.js';
import { makeFolder, removePendingWrites } from '../safe-write.js';
import { MODEL_FLAGS, UsageError, exitCode, log, parseFlags, terminalBar, type Command, type FlagSpecs } from './args.js';
import { INTERRUPTED_EXIT_CODE } from './explain.js';

export const SCAN_HELP = `torch-saliency scan: look for a backdoor trigger in every class of a classifier

Examples:
  torch-saliency scan --model m.pt --size 32
  torch-saliency scan --model m.pt --size 64 --method neural-cleanse --out scan-out clean1.png clean2.png
  torch-saliency scan --model m.pt --size 224 --head sigmoid --json

Writes scan.json, per class class-<c>-picture.png (the suspected trigger boxed) and class-<c>-map.png, and the
page scan.html (verdict, per-class table, pictures, options, timings) in --out. Image files given after the
flags are clean images of the model's classes: the scan tries its triggers on them (default: seeded random
inputs). Exit code 0 whatever the verdict; 2 for bad usage.

Options:
  --model PATH            TorchScript classifier  [required]
  --size N|HxW            the model's input size (default: the image files', else the size the model fixes)
  --labels FILE           class names, one a line
  --method NAME           input-agnostic (default) or neural-cleanse
  --head H                softmax (default) or sigmoid (multi-label: a class is on when its logit > 0)
  --classes LIST          comma list of class indices to scan (default: all)
  --seed N                seed of the random inputs and of the method (default 0)
  --anomaly-threshold X   anomaly index from which a class is flagged (default 2)
  --out DIR               where scan.json, the pictures and scan.html go (default scan-out)
  --scale N               magnification of the pictures (default 4)
  --json                  print scan.json on stdout instead of the table
  --device D --threads N  cpu, cuda, cuda:N or auto; intra-op threads
  --score-maps M          refuse | mean: N x K x H x W score maps refused (default) or averaged
 input-agnostic:  --samples N --iterations N --refine-steps N --trials N --flip-threshold X --max-area X
                  --whole-image (also the test for whole-image blended triggers; give clean images)
                  --whole-image-steps N --whole-image-noise X --whole-image-inputs N --whole-image-threshold X
 neural-cleanse:  --steps N --inputs N --initial-cost X
`;

const NUMBER_FLAGS: Record<string, 'integer' | 'number'> = {
  seed: 'integer',
  'anomaly-threshold': 'number',
  samples: 'integer',
  iterations: 'integer',
  'refine-steps': 'integer',
  trials: 'integer',
  'flip-threshold': 'number',
  'max-area': 'number',
  steps: 'integer',
  inputs: 'integer',
  'initial-cost': 'number',
  'whole-image-steps': 'integer',
  'whole-image-noise': 'number',
  'whole-image-inputs': 'integer',
  'whole-image-threshold': 'number',
};
const FOR_METHOD: Record<string, string[]> = {
  'input-agnostic': [
    'samples',
    'iterations',
    'refine-steps',
    'trials',
    'flip-threshold',
    'max-area',
    'whole-image',
    'whole-image-steps',
    'whole-image-noise',
    'whole-image-inputs',
    'whole-image-threshold',
  ],
  'neural-cleanse': ['steps', 'inputs', 'initial-cost'],
};

const FLAGS: FlagSpecs = {
  ...MODEL_FLAGS,
  size: { type: 'size' },
  method: { type: 'string', choices: Object.keys(FOR_METHOD) },
  head: { type: 'string' },
  classes: { type: 'string' },
  out: { type: 'string' },
  scale: { type: 'integer', min: 1, max: 32 },
  json: { type: 'boolean' },
  'whole-image': { type: 'boolean' },
  ...Object.fromEntries(Object.entries(NUMBER_FLAGS).map(([f, type]) => [f, type === 'integer' ? { type, min: 0 } : { type }])),
};

function run(argv: string[]): Promise<number> {
  return exitCode(async () => {
    const { values, positionals } = parseFlags(argv, FLAGS);
    if (values.help) {
      process.stdout.write(SCAN_HELP);
      return 0;
    }
    if (typeof values.model !== 'string') throw new UsageError('Expected --model PATH (see --help)');
    // No --size: the scan takes the size of the image files, else the one the model's parameters fix.
    const dims = values.size as [number, number] | undefined;
    const method = (values.method as string | undefined) ?? 'input-agnostic';
    for (const [other, flags] of Object.entries(FOR_METHOD)) {
      if (other === method) continue;
      for (const f of flags) if (values[f] !== undefined) throw new UsageError(`--${f} is an option of --method ${other}, not of ${method}`);
    }
    let classes: number[] | undefined;
    if (values.classes !== undefined) {
      const text = String(values.classes);
      if (!/^\d+(,\d+)*$/.test(text)) throw new UsageError(`Expected a comma list of class indices for --classes but received ${JSON.stringify(text)}`);
      classes = text.split(',').map(Number);
    }
    const scale = values.scale as number | undefined;
    const options: Record<string, unknown> = { method };
    if (dims) options.size = dims;
    if (values.head !== undefined) options.head = values.head;
    if (classes) options.classes = classes;
    const camel = (f: string) => f.replace(/-([a-z])/g, (_, c: string) => c.toUpperCase());
    for (const f of Object.keys(NUMBER_FLAGS)) if (values[f] !== undefined) options[camel(f)] = values[f];
    if (values['whole-image']) options.wholeImage = true;
    // The output folder is checked (and made) before the model is loaded or anything computed.
    const out = await makeFolder((values.out as string | undefined) ?? 'scan-out', '--out');
    const started = new Date().toISOString();
    // SIGINT stops the scan (its signal reaches the method's loop) or the writing, with nothing half-written: exit 130.
    const controller = new AbortController();
    const onSigint = () => controller.abort(new TorchSaliencyError('ABORT_ERR', 'Interrupted (SIGINT)'));
    process.once('SIGINT', onSigint);

    let writing = false;
    let model;
    try {
      model = await loadModel(values.model, {
        device: (values.device as Device | undefined) ?? 'auto',
        threads: values.threads as number | undefined,
        scoreMaps: (values['score-maps'] as 'mean' | undefined) ?? 'refuse',
        labels: values.labels as string | undefined,
      });
    } catch (e) {
      process.off('SIGINT', onSigint);
      throw e;
    }
    try {
      options.signal = controller.signal;
      if (positionals.length > 0) {
        const images: Image[] = await Promise.all(positionals.map((f) => readImage(f, dims ? { size: dims } : {})));
        options.images = images;
      }
      const bar = terminalBar(`scan ${method}`);
      if (bar) {
        // The scan's steps over all classes.
        let started = false;
        options.onProgress = (p: { iteration: number; total: number }) => {
          if (!started) bar.start(p.total, 0, { what: '' });
          started = true;
          bar.update(p.iteration + 1);
          if (p.iteration + 1 >= p.total) bar.stop();
        };
      }
      log(`scanning ${values.model} (${method}, ${dims ? `${dims[0]} x ${dims[1]}` : "the model's size"}) on ${model.device}`);
      // Options from the command line: scanBackdoor checks each and names the one that is wrong.
      const scan = await scanBackdoor(model, options as unknown as ScanBackdoorOptions).catch((e: unknown) => {
        if (e instanceof TorchSaliencyError && e.argument === 'options.size') throw new UsageError(`Expected --size N or HxW: ${e.message}`, '--size');
        throw e;
      });
      writing = true;
      const written = await scan.writePictures(out, { ...(scale !== undefined ? { scale } : {}), signal: controller.signal, argument: '--out' });
      // Without --size, the scan's size (its maps are at the input's size).
      const [height, width] = dims ?? [scan.maps[0].height, scan.maps[0].width];
      const page = { model: values.model, device: model.device, height, width, labels: values.labels as string | undefined, started };
      written.push(await writeScanPage(out, { ...page, images: positionals.length || undefined }));
      if (values.json) process.stdout.write(`${JSON.stringify(scan, null, 2)}\n`);
      else {
        process.stdout.write(`${scan.suspicious ? 'SUSPICIOUS' : 'no trigger found'}: flagged [${scan.flagged.join(', ')}], score ${scan.score.toFixed(2)}\n`);
        // With --whole-image, the whole-image test's opacity and its anomaly index too (a class either test flags is flagged).
        const whole = scan.classes.some((c) => 'opacity' in c);
        process.stdout.write(`class\tlabel\tanomaly\t${whole ? 'opacity\topacity index\t' : ''}flagged\tbox (top,left,h x w)\n`);
        for (const c of scan.classes) {
          const o = c as { opacity?: number; opacityIndex?: number };
          const extra = whole ? `${o.opacity?.toFixed(3) ?? '-'}\t${o.opacityIndex?.toFixed(2) ?? '-'}\t` : '';
          process.stdout.write(
            `${c.class}\t${c.label ?? ''}\t${c.anomalyIndex.toFixed(2)}\t${extra}${c.flagged ? 'yes' : ''}\t${c.box.top},${c.box.left},${c.box.height}x${c.box.width}\n`,
          );
        }
      }
      log(`wrote ${written.length} files in ${out} in ${(scan.timings.totalMs / 1000).toFixed(1)} s`);
      return 0;
    } catch (e) {
      if (!controller.signal.aborted) throw e;
      await removePendingWrites();
      log(
        writing
          ? `interrupted (SIGINT) while writing: ${existsSync(join(out, 'scan.json')) ? 'scan.json was written' : `no scan.json in ${out} (its pictures are incomplete)`}`
          : `interrupted (SIGINT) before anything was written in ${out}`,
      );
      return INTERRUPTED_EXIT_CODE;
    } finally {
      process.off('SIGINT', onSigint);
      model.dispose();
    }
  });
}

export const scan: Command = {
  name: 'scan',
  summary: ['look for a backdoor trigger in every class: scan.json and pictures (scan --help)'],
  examples: ['scan --model m.pt --size 32 --out scan-out'],
  main: run,
};
