/**
 * `torch-saliency explain`: saliency maps of one or more methods for each image (files, folders, globs),
 * written under --out one folder per image (see files.ts for the layout), with a summary.json, and with
 * --report an HTML report. One image at a time: an image that cannot be read is recorded and skipped,
 * --resume skips the images already done, and SIGINT stops the run with a summary that says so (exit 130).
 */
import { readFile } from 'node:fs/promises';
import { TorchSaliencyError, isCallerError } from '../errors.js';
import { fidelity } from '../evaluate/fidelity.js';
import { readImage, type ExplainOptions, type Image, type Model } from '../index.js';
import { imagePNG } from '../pictures.js';
import { removePendingWrites } from '../safe-write.js';
import type { MethodName } from '../methods/index.js';
import { writeReport } from '../report/index.js';
import type { ImageResult, MapResult, MethodResult, RunSummary } from '../report/types.js';
import { IMAGE_FLAGS, MODEL_FLAGS, UsageError, log, openModel, sizeOf, terminalBar, type Command, type ParsedArgs } from './args.js';
import { OutputFolder, expandInputs, picturesFlag } from './files.js';
import { isMethodFlag, methodList, methodOptions, targetFlag } from './method-options.js';

/** Exit code of a run stopped by SIGINT (128 + 2, as shells report it). */
export const INTERRUPTED_EXIT_CODE = 130;

const FLAGS = {
  ...MODEL_FLAGS,
  ...IMAGE_FLAGS,
  out: { type: 'string' },
  method: { type: 'string' },
  target: { type: 'string' },
  pictures: { type: 'string' },
  report: { type: 'boolean' },
  curves: { type: 'boolean' },
  'curve-steps': { type: 'integer', min: 1, max: 1024 },
  resume: { type: 'boolean' },
  json: { type: 'boolean' },
} as const;

/** The image's result.json, if a run finished it with every method asked for now. */
async function doneBefore(out: OutputFolder, name: string, methods: readonly string[]): Promise<ImageResult | undefined> {
  try {
    const r = JSON.parse(await readFile(out.path(name, 'result.json'), 'utf8')) as ImageResult;
    return r.complete && methods.every((m) => r.methods?.[m] && !r.methods[m].error) ? r : undefined;
  } catch {
    return undefined;
  }
}

function errorJSON(e: unknown): { code: string; message: string } {
  const err = e as { code?: unknown; message?: unknown };
  return { code: typeof err?.code === 'string' ? err.code : 'ERR_INTERNAL', message: typeof err?.message === 'string' ? err.message : String(e) };
}

/** A progress bar of (image, method) steps on stderr when it is a terminal; none otherwise. */
function progress(total: number): { step(what: string): void; stop(): void } {
  const bar = terminalBar('explain');
  if (!bar) return { step() {}, stop() {} };
  bar.start(total, 0, { what: '' });
  return { step: (what) => bar.increment(1, { what }), stop: () => bar.stop() };
}

interface Run {
  model: Model;
  out: OutputFolder;
  methods: readonly MethodName[];
  options: Map<MethodName, Record<string, unknown>>;
  target: unknown;
  pictures: ReturnType<typeof picturesFlag>;
  curveSteps: number | undefined;
  signal: AbortSignal;
  values: ParsedArgs['values'];
}

async function explainOne(run: Run, file: string, name: string, image: Image, step: (what: string) => void): Promise<ImageResult> {
  const { model, out } = run;
  const picture = await out.write([name, 'image.png'], await imagePNG(image));
  const t0 = performance.now();
  const [prediction] = await model.predict([image], { top: 5 });
  const result: ImageResult = {
    file,
    name,
    image: picture,
    height: image.height,
    width: image.width,
    top: prediction.top,
    predictMs: performance.now() - t0,
    methods: {},
    complete: false,
  };
  for (const method of run.methods) {
    if (run.signal.aborted) break;
    const options = { ...run.options.get(method), method, signal: run.signal } as Record<string, unknown>;
    if (run.target !== undefined) options.target = run.target;
    let entry: MethodResult;
    try {
      const explanation = await model.explain(image, options as unknown as ExplainOptions);
      const json = explanation.toJSON() as { options: Record<string, unknown>; details: Record<string, unknown> };
      const maps: MapResult[] = [];
      for (const map of explanation.maps) {
        const stem = `${method}-c${map.target}${map.area !== undefined ? `-a${map.area}` : ''}`;
        const files: Record<string, string> = {};
        for (const kind of run.pictures) {
          if (kind === 'preserved' && map.area === undefined) continue;
          files[kind] = await out.write([name, `${stem}-${kind}.png`], await map.png(kind, image));
        }
        const m: MapResult = { target: map.target, label: map.label, area: map.area, ...map.stats(), pictures: files };
        if (run.curveSteps !== undefined && !run.signal.aborted) {
          const c0 = performance.now();
          const f = await fidelity(model, image, map, map.target, { steps: run.curveSteps });
          m.curves = {
            deletion: { auc: f.deletion.auc, fractions: Array.from(f.deletion.fractions), probabilities: Array.from(f.deletion.probabilities) },
            insertion: { auc: f.insertion.auc, fractions: Array.from(f.insertion.fractions), probabilities: Array.from(f.insertion.probabilities) },
            ms: performance.now() - c0,
          };
        }
        maps.push(m);
      }
      entry = { options: json.options, timings: explanation.timings, maps, details: json.details };
    } catch (e) {
      if (run.signal.aborted) break;
      // A bad option is the same for every image: stop the run (exit 2). A method failing on this image is recorded.
      if (isCallerError(e) && !['ERR_IMAGE_DECODE', 'ERR_INPUT_SHAPE'].includes((e as TorchSaliencyError).code)) throw e;
      entry = { error: errorJSON(e) };
    }
    result.methods[method] = entry;
    step(`${name} ${method}`);
  }
  result.complete = !run.signal.aborted && run.methods.every((m) => result.methods[m] && !result.methods[m].error);
  await out.write([name, 'result.json'], JSON.stringify(result, null, 2));
  return result;
}

/**
 * Checks each method's options before any image is read: explain with a signal that is already aborted
 * validates and normalises the options, then stops before any work (ABORT_ERR). Any other error is the
 * options' fault, the same for every image: the run stops before writing anything (exit 2).
 */
async function checkOptions(
  model: Model,
  methods: readonly MethodName[],
  options: Map<MethodName, Record<string, unknown>>,
  target: unknown,
  size: [number, number] | undefined,
) {
  for (const method of methods) {
    const given = { ...options.get(method), method, ...(target !== undefined ? { target } : {}), signal: AbortSignal.abort() };
    try {
      await model.explain(size ?? null, given as unknown as ExplainOptions);
    } catch (e) {
      if ((e as TorchSaliencyError).code !== 'ABORT_ERR') throw e;
    }
  }
}

async function run(p: ParsedArgs): Promise<number> {
  const v = p.values;
  if (typeof v.model !== 'string') throw new UsageError('Expected a TorchScript file for --model but received nothing (see --help)', '--model');
  const methods = methodList((v.method as string | undefined) ?? 'extremal-perturbation');
  const options = methodOptions(p.extra, methods);
  const target = v.target === undefined ? undefined : targetFlag(v.target as string);
  const pictures = picturesFlag(v.pictures as string | undefined);
  const files = await expandInputs(p.positionals);
  // The output folder is checked (and made) before the model is loaded or anything computed.
  const out = await OutputFolder.open((v.out as string | undefined) ?? 'saliency-out', files);
  const curves = v.report === true || v.curves === true || v['curve-steps'] !== undefined;
  const model = await openModel(v);
  try {
    await checkOptions(model, methods, options, target, sizeOf(v));
  } catch (e) {
    model.dispose();
    throw e;
  }
  const controller = new AbortController();
  const onSigint = () => controller.abort(new TorchSaliencyError('ABORT_ERR', 'Interrupted (SIGINT)'));
  process.once('SIGINT', onSigint);
  const started = new Date();
  const t0 = performance.now();
  const summary: RunSummary = {
    tool: 'torch-saliency explain',
    model: String(v.model),
    labels: v.labels as string | undefined,
    device: model.device,
    methods,
    options: Object.fromEntries(options),
    target: target ?? 'top-1',
    started: started.toISOString(),
    complete: false,
    images: [],
  };
  const bar = progress(files.length * methods.length);
  log(`${methods.join(', ')} on ${files.length} image(s), device ${model.device}, output in ${out.root}`);
  try {
    const runState: Run = {
      model,
      out,
      methods,
      options,
      target,
      pictures,
      curveSteps: curves ? ((v['curve-steps'] as number | undefined) ?? 16) : undefined,
      signal: controller.signal,
      values: v,
    };
    for (let i = 0; i < files.length && !controller.signal.aborted; i++) {
      const [file, name] = [files[i], out.names[i]];
      if (v.resume) {
        const before = await doneBefore(out, name, methods);
        if (before) {
          summary.images.push({ file, name, state: 'resumed', result: `${name}/result.json` });
          methods.forEach((m) => bar.step(`${name} ${m}`));
          continue;
        }
      }
      let image: Image;
      try {
        image = await readImage(file, { size: sizeOf(v), fit: v.fit as 'cover' | undefined });
      } catch (e) {
        if (!(e instanceof TorchSaliencyError) || !isCallerError(e)) throw e;
        log(`skipped ${file}: ${e.message} [${e.code}]`);
        summary.images.push({ file, name, state: 'failed', error: errorJSON(e) });
        methods.forEach((m) => bar.step(`${name} ${m}`));
        continue;
      }
      const result = await explainOne(runState, file, name, image, bar.step);
      const failed = Object.values(result.methods).find((m) => m.error);
      summary.images.push({
        file,
        name,
        state: result.complete ? 'done' : controller.signal.aborted ? 'interrupted' : 'failed',
        result: `${name}/result.json`,
        ...(failed?.error ? { error: failed.error } : {}),
      });
    }
    summary.complete = !controller.signal.aborted && summary.images.length === files.length;
  } finally {
    process.off('SIGINT', onSigint);
    bar.stop();
    summary.totalMs = performance.now() - t0;
    await removePendingWrites();
    // The summary is written whatever happened: it says how far the run got.
    await out.write(['summary.json'], JSON.stringify(summary, null, 2));
    model.dispose();
  }
  if (v.report) {
    const report = await writeReport(out.root);
    log(`wrote ${report}`);
  }
  if (v.json) {
    process.stdout.write(`${JSON.stringify(summary, null, 2)}\n`);
  } else {
    for (const entry of summary.images) {
      process.stdout.write(`${entry.file}\t${entry.state}${entry.error ? `\t${entry.error.message} [${entry.error.code}]` : `\t${entry.name}/`}\n`);
    }
    process.stdout.write(
      `${summary.complete ? 'done' : 'stopped'}: ${summary.images.length} of ${files.length} image(s) in ${out.root} in ${((summary.totalMs ?? 0) / 1000).toFixed(1)} s\n`,
    );
  }
  if (controller.signal.aborted) {
    log('interrupted; summary.json says which images are complete (run again with --resume to finish)');
    return INTERRUPTED_EXIT_CODE;
  }
  return summary.images.some((e) => e.state === 'failed') ? 1 : 0;
}

export const explain: Command = {
  name: 'explain',
  summary: ['saliency maps of one or more methods for each image: pictures, result.json and summary.json in --out (default ./saliency-out)'],
  examples: [
    'explain --model classifier.pt --labels labels.txt --out out/ cat.jpg dog.jpg',
    'explain --model m.pt --method grad-cam,rise,extremal-perturbation --layer features.5 --rise.num-masks 1000 --size 224 --report photos/',
    "explain --model m.pt --method extremal-perturbation --areas 0.05,0.1,0.2 --size 224 --resume 'photos/*.jpg'",
  ],
  help: `explain options:
  IMAGE...             image files, folders (their images) or globs ('photos/*.jpg')
  --method LIST        one or more methods, comma-separated (default extremal-perturbation; see "torch-saliency methods")
  --target T           class index, label, top-1 (default) or top-k; a comma list gives several
  --out DIR            output folder (default ./saliency-out): DIR/<image>/{image.png, pictures, result.json}, DIR/summary.json
  --pictures LIST      which pictures: overlay,heatmap,mask,preserved (default: all that apply)
  --report             also write DIR/report.html (with deletion and insertion curves)
  --curves             deletion and insertion curves of each map in result.json (--curve-steps N, default 16)
  --resume             skip images whose result.json is complete for these methods
  --<option> VALUE     an option of the methods that have it, in kebab case: --areas 0.05,0.1 --max-iter 300
  --<method>.<option> VALUE   an option of one method: --rise.num-masks 2000 --grad-cam.layer features.5
  Numbers and comma lists of numbers are parsed; true/false are booleans. An image that cannot be read is
  skipped and recorded (exit 1 at the end); SIGINT stops with summary.json saying what is complete (exit 130).
`,
  flags: FLAGS,
  parse: { extra: isMethodFlag },
  run,
};
