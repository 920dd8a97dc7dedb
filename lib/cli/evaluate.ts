/**
 * `torch-saliency evaluate`: scores methods on annotated images (pointing game, deletion, insertion,
 * randomisation sanity check); a table on stdout (or --json), evaluation.json, .csv and .html (with the maps of
 * the first --heatmaps images in pictures/) in --out.
 */
import { readdir, rm } from 'node:fs/promises';
import { extname, join } from 'node:path';
import sharp from 'sharp';
import { TorchSaliencyError } from '../errors.js';
import { readImage } from '../image.js';
import { loadModel, type Device } from '../model.js';
import { parseValue } from '../parse.js';
import type { MethodName } from '../methods/index.js';
import { annotationFor, classIndexOf, readAnnotations, transformBox, type Box } from '../evaluate/annotations.js';
import { checkEvaluateOptions, evaluate, SCORE_NAMES, type EvaluationImage, type MethodSpec, type ScoreName } from '../evaluate/evaluate.js';
import type { JobMap } from '../evaluate/job-maps.js';
import { evaluationCSV, evaluationJSON, formatEvaluation } from '../evaluate/output.js';
import { argmax2d } from '../map.js';
import { imagePNG, overlayPNG } from '../pictures.js';
import { writeEvaluationPage, type PairPictures } from '../report/evaluation.js';
import { makeFolder, removePendingWrites, writeFileAtomic } from '../safe-write.js';
import { MODEL_FLAGS, UsageError, exitCode, log, parseFlags, terminalBar, type Command, type FlagSpecs } from './args.js';
import { INTERRUPTED_EXIT_CODE } from './explain.js';

export const EVALUATE_HELP = `torch-saliency evaluate: which map to trust, scored on your annotated images (docs/evaluation.md)

Examples:
  torch-saliency evaluate --model m.pt --labels labels.txt --images photos/ --boxes boxes.json --size 224 \\
      --methods gradient,grad-cam:layer=features.5,rise,extremal-perturbation
  torch-saliency evaluate --model m.pt --images voc/JPEGImages --boxes voc/Annotations --scores pointing-game --json

Options:
  --model PATH         TorchScript model  [required]
  --labels PATH        class names, one per line (to match the annotations' labels)
  --images DIR         the images (those the annotations name)  [required]
  --boxes PATH         annotations: plain JSON of boxes per image, COCO JSON, or a folder of VOC XML  [required]
  --methods LIST       comma list of methods, each with options as name:key=value:key=value
                       (default gradient); e.g. grad-cam:layer=features.5, rise:num-masks=2000,
                       extremal-perturbation:areas=0.05,0.1:max-iter=300
  --scores LIST        of ${SCORE_NAMES.join(', ')} (default all)
  --size N | HxW       resize the images (boxes follow); --fit cover | contain | fill (default cover)
  --tolerance PX       pointing-game tolerance (default 15)
  --steps N            points on the deletion/insertion curves (default 32)
  --sanity-images N    images the randomisation test runs on (default 4)
  --sanity-order O     cascading (default) | independent
  --sanity-points N    measure after at most N layers (default 12)
  --seed N             seed of the re-drawn weights (default 42)
  --batch-size N       images per explain call (default 8)
  --out DIR            also write evaluation.json, evaluation.csv and the page evaluation.html there
  --heatmaps N         the page shows the maps of the first N images (default 8; 0: none), in DIR/pictures
  --json               the JSON on stdout instead of the table
  --device D, --threads N, --score-maps refuse|mean (as for explain)
`;

const IMAGE_EXTENSIONS = new Set(['.jpg', '.jpeg', '.png', '.webp', '.tif', '.tiff', '.gif', '.avif']);

/** "grad-cam:layer=features.5:num-masks=2000" -> { method: 'grad-cam', layer: 'features.5', numMasks: 2000 } */
export function methodSpec(text: string): MethodSpec {
  const [method, ...parts] = text.split(':');
  if (!method) throw new UsageError(`Expected a method name in --methods but received ${JSON.stringify(text)}`);
  const spec: MethodSpec = { method: method as MethodName, name: text };
  for (const part of parts) {
    const eq = part.indexOf('=');
    if (eq <= 0) throw new UsageError(`Expected key=value after '${method}:' in --methods but received ${JSON.stringify(part)}`);
    spec[part.slice(0, eq).replace(/-([a-z])/g, (_, c: string) => c.toUpperCase())] = parseValue(part.slice(eq + 1));
  }
  return spec;
}

/**
 * Splits --methods at its commas, except those inside a list value: a piece that starts with a number
 * continues the one before ("extremal-perturbation:areas=0.05,0.1,gradient" is two methods).
 */
export function splitMethods(text: string): string[] {
  const out: string[] = [];
  for (const piece of text.split(',')) {
    if (out.length > 0 && /^-?[\d.]/.test(piece)) out[out.length - 1] += `,${piece}`;
    else out.push(piece);
  }
  return out;
}

const FLAGS: FlagSpecs = {
  ...MODEL_FLAGS,
  images: { type: 'string' },
  boxes: { type: 'string' },
  methods: { type: 'string' },
  scores: { type: 'string' },
  size: { type: 'size' },
  fit: { type: 'string', choices: ['cover', 'contain', 'fill'] },
  tolerance: { type: 'number' },
  steps: { type: 'integer', min: 0 },
  'sanity-images': { type: 'integer', min: 0 },
  'sanity-order': { type: 'string' },
  'sanity-points': { type: 'integer', min: 0 },
  seed: { type: 'integer', min: 0 },
  'batch-size': { type: 'integer', min: 0 },
  out: { type: 'string' },
  heatmaps: { type: 'integer', min: 0 },
  json: { type: 'boolean' },
};

function run(argv: string[]): Promise<number> {
  return exitCode(async () => {
    const { values } = parseFlags(argv, FLAGS, { positionals: false });
    if (values.help) {
      process.stdout.write(EVALUATE_HELP);
      return 0;
    }
    for (const flag of ['model', 'images', 'boxes']) {
      if (typeof values[flag] !== 'string') throw new UsageError(`Expected --${flag} (see --help)`);
    }
    if (values.heatmaps !== undefined && typeof values.out !== 'string')
      throw new UsageError('--heatmaps is for the page that --out writes: give --out DIR too');
    const scores = typeof values.scores === 'string' ? (values.scores.split(',') as ScoreName[]) : undefined;
    const methods = splitMethods(typeof values.methods === 'string' ? values.methods : 'gradient').map(methodSpec);
    const fit = (values.fit as 'cover' | 'contain' | 'fill' | undefined) ?? 'cover';
    const wanted = values.size as [number, number] | undefined;
    const heatmaps = (values.heatmaps as number | undefined) ?? 8;
    // evaluate()'s own options, checked before anything is read or loaded.
    const options = {
      methods,
      scores,
      tolerance: values.tolerance as number | undefined,
      fidelity: { steps: values.steps as number | undefined },
      sanity: {
        images: values['sanity-images'] as number | undefined,
        order: values['sanity-order'] as 'cascading' | undefined,
        points: values['sanity-points'] as number | undefined,
        seed: values.seed as number | undefined,
      },
      batchSize: values['batch-size'] as number | undefined,
    };
    checkEvaluateOptions(options);
    const annotations = await readAnnotations(values.boxes as string);
    const dir = values.images as string;
    let names: string[];
    try {
      names = await readdir(dir);
    } catch (e) {
      throw new UsageError(
        `Expected a folder of images for --images but ${JSON.stringify(dir)} cannot be listed (${(e as NodeJS.ErrnoException).code ?? (e as Error).message})`,
        '--images',
      );
    }
    const files = names.filter((f) => IMAGE_EXTENSIONS.has(extname(f).toLowerCase())).sort();
    const annotated = files.map((f) => ({ file: f, annotation: annotationFor(annotations, f) })).filter((x) => x.annotation && x.annotation.objects.length > 0);
    if (annotated.length === 0) throw new UsageError(`None of the ${files.length} images in ${dir} has annotations in ${values.boxes}`);
    if (annotated.length < files.length) log(`${files.length - annotated.length} image(s) in ${dir} have no annotations and are left out`);
    const found = new Set(annotated.map((x) => x.annotation));
    const missing = annotations.filter((a) => a.objects.length > 0 && !found.has(a));
    if (missing.length > 0) log(`${missing.length} annotated image(s) are not in ${dir} and are left out (e.g. ${JSON.stringify(missing[0].file)})`);

    // The same folder making and atomic writes as explain's outputs; checked before the long run.
    const out = typeof values.out === 'string' ? await makeFolder(values.out, '--out') : undefined;
    const started = new Date().toISOString();
    const t0 = performance.now();

    const model = await loadModel(values.model as string, {
      device: (values.device as Device | undefined) ?? 'auto',
      threads: values.threads as number | undefined,
      scoreMaps: (values['score-maps'] as 'mean' | undefined) ?? 'refuse',
      labels: values.labels as string | undefined,
    });
    // SIGINT stops the run between images or inside a method (its signal reaches the native loop): exit 130, and
    // --out holds no evaluation.json/.csv/.html that disagrees with the pictures of this run.
    const controller = new AbortController();
    const onSigint = () => controller.abort(new TorchSaliencyError('ABORT_ERR', 'Interrupted (SIGINT)'));
    process.once('SIGINT', onSigint);
    let cleared = false;
    const clearStale = async () => {
      if (cleared || !out) return;
      cleared = true;
      for (const f of ['evaluation.json', 'evaluation.csv', 'evaluation.html']) await rm(join(out, f), { force: true });
    };
    try {
      // Each method's options, checked before any image is read (explain stops at the aborted signal after them).
      for (const { method, name: _name, ...rest } of methods) {
        try {
          await model.explain(wanted ?? null, { ...rest, method, signal: AbortSignal.abort() } as never);
        } catch (e) {
          if ((e as { code?: string }).code !== 'ABORT_ERR') throw e;
        }
      }
      const items: EvaluationImage[] = [];
      let classes = 0;
      let outside = 0;
      let skewed = 0;
      for (const { file, annotation } of annotated) {
        if (controller.signal.aborted) throw controller.signal.reason;
        const path = join(dir, file);
        const image = await readImage(path, { size: wanted, fit });
        classes ||= (await model.predict(image, { top: 0 })).logits.length;
        // The file's own size as readImage sees it: EXIF orientations 5 to 8 turn the picture a quarter.
        const meta = await sharp(path).metadata();
        const turned = (meta.orientation ?? 1) >= 5;
        const own: [number, number] | undefined = meta.height && meta.width ? (turned ? [meta.width, meta.height] : [meta.height, meta.width]) : undefined;
        const stated: [number, number] | undefined = annotation!.height && annotation!.width ? [annotation!.height, annotation!.width] : undefined;
        if (stated && own && Math.abs(Math.log(stated[1] / stated[0] / (own[1] / own[0]))) > 0.01) skewed++;
        const from: [number, number] = stated ?? own ?? [image.height, image.width];
        const objects = annotation!.objects.flatMap((o) => {
          const box = transformBox(o.box, from, [image.height, image.width], fit);
          const classIndex = classIndexOf(o, model.labels, classes, `for '${file}'`);
          if (!box) outside++;
          return box ? [{ classIndex, boxes: [box as Box], difficult: o.difficult }] : [];
        });
        if (objects.length > 0) items.push({ name: file, image, objects });
      }
      if (skewed > 0) log(`${skewed} image(s) have another aspect ratio than their annotation states: their boxes are scaled to the image`);
      if (outside > 0) log(`${outside} box(es) lie outside their image${wanted ? ` after --size and --fit ${fit}` : ''} and are left out`);
      if (items.length === 0)
        throw new TorchSaliencyError(
          'ERR_ANNOTATIONS',
          `Every box of the ${annotated.length} annotated image(s) lies outside its image${wanted ? ` after --size and --fit ${fit}` : ''}: nothing to score`,
          { argument: '--boxes' },
        );
      log(`evaluating ${methods.map((m) => m.name).join(', ')} on ${items.length} image(s), device ${model.device}`);
      // The page's pictures: each method's map of every pair of the first --heatmaps images, over the image.
      const shown: PairPictures[] = [];
      let called = 0;
      const saveMaps =
        out && heatmaps > 0
          ? async (method: string, maps: readonly JobMap[]) => {
              // onMaps comes once per method, in the order of --methods.
              const k = called++;
              await clearStale();
              for (const [n, map] of maps.entries()) {
                if (map.image >= heatmaps) continue;
                const item = items[map.image];
                let entry = shown.find((p) => p.pair === n);
                if (!entry) {
                  const image = `pictures/image-${map.image}.png`;
                  if (!shown.some((p) => p.image === image)) await writeFileAtomic(join(out, image), await imagePNG(item.image), { argument: '--out' });
                  const boxes = item.objects.filter((o) => o.classIndex === map.target).flatMap((o) => o.boxes);
                  entry = { pair: n, image, height: item.image.height, width: item.image.width, label: model.labels?.[map.target], boxes, maps: {} };
                  shown.push(entry);
                }
                const picture = `pictures/m${k}-pair${n}.png`;
                await writeFileAtomic(join(out, picture), await overlayPNG(map, item.image), { argument: '--out' });
                entry.maps[method] = { picture, peak: argmax2d(map) };
              }
            }
          : undefined;
      // The CLI's progress bar on a terminal: one run of it per (method, score) phase.
      const bar = terminalBar('evaluate');
      let phase = '';
      const result = await evaluate(model, items, {
        ...options,
        signal: controller.signal,
        onMaps: saveMaps,
        onProgress: bar
          ? (p) => {
              const what = `${p.method} ${p.score}`;
              if (what !== phase) {
                if (phase) bar.stop();
                bar.start(p.total, 0, { what });
                phase = what;
              }
              bar.update(p.done, { what });
            }
          : undefined,
      });
      bar?.stop();
      const json = evaluationJSON(result);
      if (out) {
        await clearStale();
        await writeFileAtomic(join(out, 'evaluation.json'), json, { argument: '--out' });
        await writeFileAtomic(join(out, 'evaluation.csv'), evaluationCSV(result), { argument: '--out' });
        shown.sort((a, b) => a.pair - b.pair);
        const run = {
          model: values.model as string,
          device: model.device,
          labels: values.labels as string | undefined,
          size: values.size as string | undefined,
        };
        const page = await writeEvaluationPage(out, { evaluation: result, run: { ...run, started, totalMs: performance.now() - t0 }, pictures: shown });
        log(`wrote ${page}`);
      }
      process.stdout.write(values.json ? `${json}\n` : formatEvaluation(result));
      return 0;
    } catch (e) {
      if (!controller.signal.aborted) throw e;
      await removePendingWrites();
      log(
        `interrupted (SIGINT)${out ? `: ${cleared ? `no evaluation.json in ${out} (pictures of this run may be there)` : `nothing written in ${out}`}` : ''}`,
      );
      return INTERRUPTED_EXIT_CODE;
    } finally {
      process.off('SIGINT', onSigint);
      model.dispose();
    }
  });
}

export const evaluateCommand: Command = {
  name: 'evaluate',
  summary: ['score methods on annotated images: pointing game, deletion/insertion, sanity check (evaluate --help)'],
  examples: ['evaluate --model m.pt --labels labels.txt --images photos/ --boxes boxes.json --methods gradient,rise --size 224'],
  main: run,
};
