/**
 * loadModel and the Model class: the public face of a loaded TorchScript classifier.
 */
import { readFile, stat } from 'node:fs/promises';
import { binding, type NativeModel, type NativeCancelToken } from './native.js';
import { TorchSaliencyError, abortError, fromNative, invalidType, invalidValue, outOfRange } from './errors.js';
import { checkImage, stack, type Image } from './image.js';
import { Explanation, type TargetInfo } from './explanation.js';
import { getMethod, type ExplainOptionsFor, type ExplanationFor, type MethodName } from './methods/index.js';
import { COMMON_OPTION_NAMES, autoBatchRows, normalizeCommon } from './methods/common.js';
import { mapsPerJob, type Job, type MethodContext } from './methods/types.js';
import * as v from './validate.js';
import { Batcher } from './batcher.js';

export type Device = 'cpu' | 'cuda' | 'auto' | `cuda:${number}`;

export interface LoadModelOptions {
  /** Where the model runs (default 'auto': CUDA when the addon's libtorch has it and a GPU is visible). */
  device?: Device;
  /** libtorch intra-op threads for this process (default: the cores available). */
  threads?: number;
  /** Class names: a file with one per line, or an array. */
  labels?: string | readonly string[];
  /** Per-channel normalisation applied inside every model call, for models exported without it. */
  mean?: readonly number[];
  std?: readonly number[];
  /**
   * Most pixels (height x width) of one image sent to the model by predict, explain and layerShapes
   * (default 4,194,304 = 2048 x 2048): the model's activations grow with it (a 4000 x 4000 image took 3.4 GB
   * through a small CNN). Larger images are ERR_IMAGE_TOO_LARGE; raise it for models meant for them.
   */
  maxInputPixels?: number;
  /**
   * What to do with scores of N x K x H x W (per-place class scores, from a fully convolutional classifier):
   * 'refuse' (default): ERR_MODEL_OUTPUT, since such an output may be no classifier's at all (a segmenter's);
   * 'mean': average them over space into N x K class scores.
   */
  scoreMaps?: 'refuse' | 'mean';
}

/** loadModel's default maxInputPixels. */
export const DEFAULT_MAX_INPUT_PIXELS = 2048 * 2048;

/** The most images predict sends through the model at once (a call with more runs in parts). */
const PREDICT_MAX_BATCH = 32;

/** An image as readImage returns it, or raw planar data with its shape. */
export type ImageInput = Image | { data: Float32Array; shape: readonly [number, number, number] };

/** A batch of images in one buffer: N x C x H x W values. */
export interface ImageBatch {
  data: Float32Array;
  shape: readonly [number, number, number, number];
}

export interface TopClass {
  index: number;
  label?: string;
  probability: number;
}

export interface Prediction {
  logits: Float32Array;
  probabilities: Float32Array;
  top: TopClass[];
}

export interface PredictOptions {
  /** How many classes `top` lists (default 5). */
  top?: number;
}

export interface ModelInfo {
  device: string;
  inputChannels: number;
  /** The input size [h, w] the model's parameters suggest (a ViT's positional embedding, an MLP's first layer), unchecked; null when none. */
  inputSize?: [number, number] | null;
  parameters: number;
  torchVersion: string;
  labels?: number;
}

function softmax(logits: Float32Array): Float32Array {
  let max = -Infinity;
  for (const x of logits) if (x > max) max = x;
  const out = new Float32Array(logits.length);
  let sum = 0;
  for (let i = 0; i < logits.length; i++) sum += out[i] = Math.exp(logits[i] - max);
  for (let i = 0; i < out.length; i++) out[i] /= sum;
  return out;
}

/** Splits user input into a list of images and whether it was a batch. */
function imagesOf(input: unknown, name: string): { images: Image[]; batch: boolean } {
  if (Array.isArray(input)) {
    if (input.length === 0) throw invalidValue(name, 'at least one image', input);
    return { images: input.map((im, i) => checkImage(im, `${name}[${i}]`)), batch: true };
  }
  const o = input as { data?: unknown; shape?: readonly number[] };
  if (o && typeof o === 'object' && Array.isArray(o.shape) && o.shape.length === 4 && o.data instanceof Float32Array) {
    const [n, c, h, w] = o.shape.map((s, i) => v.number(`${name}.shape[${i}]`, s, { integer: true, min: 1 }));
    if (o.data.length !== n * c * h * w) {
      throw new TorchSaliencyError(
        'ERR_INPUT_SHAPE',
        `Expected ${n * c * h * w} values (${n} x ${c} x ${h} x ${w}) for ${name}.data but received ${o.data.length}`,
        {
          argument: `${name}.data`,
        },
      );
    }
    const per = c * h * w;
    const images = Array.from({ length: n }, (_, i) => ({ data: o.data as Float32Array, channels: c, height: h, width: w, offset: i * per })).map((im) => ({
      data: im.data.subarray(im.offset, im.offset + per),
      channels: c,
      height: h,
      width: w,
    }));
    return { images, batch: true };
  }
  return { images: [checkImage(input, name)], batch: false };
}

/** For input-agnostic methods: no image, only its size (null: the model's, see Model#explain). */
export type PlaceholderSize = null | number | readonly [number, number];

function isPlaceholder(input: unknown): input is PlaceholderSize {
  return input === null || typeof input === 'number' || (Array.isArray(input) && input.length === 2 && input.every((x) => typeof x === 'number'));
}

/** The placeholder's channels: options.channels, else the model's first convolution's, else 3. */
function placeholderChannels(channelsOption: unknown, modelChannels: number): number {
  return v.optionalNumber('options.channels', channelsOption, modelChannels > 0 ? modelChannels : 3, { integer: true, min: 1, max: 64 });
}

/** A zero image of the given size, standing in for the input of methods that read only its shape. */
function placeholderImage(size: number | readonly [number, number], channels: number): { images: Image[]; batch: boolean } {
  const [height, width] = v.size('image', size);
  return { images: [{ data: new Float32Array(channels * height * width), channels, height, width }], batch: false };
}

/** The largest labels file read. */
const MAX_LABELS_BYTES = 64 * 2 ** 20;

async function readLabels(labels: LoadModelOptions['labels']): Promise<string[] | undefined> {
  if (labels === undefined) return undefined;
  if (Array.isArray(labels)) return labels.map((l, i) => v.string(`options.labels[${i}]`, l));
  if (typeof labels !== 'string') throw invalidType('options.labels', 'a file path or an array of strings', labels);
  try {
    // A device or a pipe (/dev/zero, a FIFO) would be read without end or wait forever; no label list is 64 MiB.
    const info = await stat(labels);
    if (!info.isFile()) throw new Error('not a regular file');
    if (info.size > MAX_LABELS_BYTES) throw new Error(`${info.size} bytes, more than the ${MAX_LABELS_BYTES} a labels file may have`);
    const text = await readFile(labels, 'utf8');
    return text
      .split(/\r?\n/)
      .map((l) => l.trim())
      .filter((l) => l.length > 0);
  } catch (e) {
    throw new TorchSaliencyError('ERR_INVALID_ARG_VALUE', `Cannot read labels file '${labels}': ${(e as Error).message}`, {
      argument: 'options.labels',
      cause: e,
    });
  }
}

export class Model {
  #native: NativeModel | null;
  readonly labels?: readonly string[];
  readonly device: string;
  /** Calls in flight (predict and explain), for visibility and tests. */
  #pending = 0;
  /** Concurrent predict calls share native batches (see batcher.ts). */
  #batcher?: Batcher;
  /** The number of classes, once a prediction has shown it. */
  #classes?: number;
  #maxInputPixels: number;

  /** @internal use loadModel() */
  constructor(native: NativeModel, labels?: readonly string[], maxInputPixels = DEFAULT_MAX_INPUT_PIXELS) {
    this.#native = native;
    this.#maxInputPixels = maxInputPixels;
    if (labels) this.labels = Object.freeze([...labels]);
    this.device = native.info().device;
  }

  get disposed(): boolean {
    return this.#native === null;
  }

  get pending(): number {
    return this.#pending;
  }

  /** @internal the native handle, for method files that need more than explain(). */
  handle(): NativeModel {
    if (!this.#native) throw new TorchSaliencyError('ERR_DISPOSED', 'The model was disposed; load it again to use it');
    return this.#native;
  }

  info(): ModelInfo {
    const i = this.handle().info();
    return { ...i, ...(this.labels ? { labels: this.labels.length } : {}) };
  }

  /** Names of the model's submodules ("features", "features.0", ...), usable as `layer`. */
  layers(): string[] {
    return this.handle().layers();
  }

  /**
   * Names of the submodules that hold parameters of their own ("features.0", ..., "classifier"), input side
   * first: the layers `cloneReinitialized` can re-draw.
   */
  parameterLayers(): string[] {
    return this.handle().parameterLayers();
  }

  /**
   * A new Model, a deep copy of this one whose `layers` (from parameterLayers()) have freshly drawn
   * parameters, as PyTorch's reset_parameters() draws them; this model is left as it is. Each layer's draw
   * starts from `options.seed` (default 42), so the same seed gives the same weights, and a layer gets the
   * same weights whichever layers are drawn with it. For the model-randomisation sanity check (Adebayo et
   * al., 2018): dispose the copy when done.
   */
  async cloneReinitialized(layers: readonly string[], options: { seed?: number } = {}): Promise<Model> {
    const site = new Error();
    const native = this.handle();
    if (!Array.isArray(layers) || layers.some((l) => typeof l !== 'string')) throw invalidType('layers', 'an array of layer names', layers);
    const opts = v.plainObject('options', options);
    v.knownKeys('options', opts, ['seed']);
    const seed = v.optionalNumber('options.seed', opts.seed, 42, { integer: true, min: 0, max: Number.MAX_SAFE_INTEGER });
    const copy = await this.#track(() => native.cloneReinitialized([...layers], seed).catch((e) => Promise.reject(fromNative(e, site))));
    return new Model(copy, this.labels);
  }

  /**
   * The layers usable as `layer` with their output shapes (batch of one included) for an input of
   * `size` ([height, width], channels from the model): one forward pass of a zero image on a probed clone.
   */
  async layerShapes(size: readonly [number, number], channels?: number): Promise<{ name: string; shape: number[] }[]> {
    const site = new Error();
    const native = this.handle();
    const [height, width] = v.size('size', size);
    this.#checkPixels(height, width, 'size');
    const c = channels ?? Math.max(1, native.info().inputChannels);
    const data = new Float32Array(c * height * width);
    return this.#track(() => native.layerShapes(data, [1, c, height, width]).catch((e) => Promise.reject(fromNative(e, site))));
  }

  /** ERR_IMAGE_TOO_LARGE when an image of height x width exceeds maxInputPixels. */
  #checkPixels(height: number, width: number, argument: string): void {
    if (height * width <= this.#maxInputPixels) return;
    throw new TorchSaliencyError(
      'ERR_IMAGE_TOO_LARGE',
      `Expected an image of at most ${this.#maxInputPixels} pixels (loadModel's options.maxInputPixels) for ${argument} but received ${height} x ${width} = ${height * width} pixels (resize it with readImage(..., { size }))`,
      { argument },
    );
  }

  async #track<T>(work: () => Promise<T>): Promise<T> {
    this.#pending++;
    try {
      return await work();
    } finally {
      this.#pending--;
    }
  }

  /** Class scores for one image (returns one Prediction) or several (an array; at most 32 images through the model at a time). */
  predict(input: ImageInput, options?: PredictOptions): Promise<Prediction>;
  predict(input: readonly ImageInput[] | ImageBatch, options?: PredictOptions): Promise<Prediction[]>;
  /** A shape whose rank is known only at run time: 3 gives one Prediction, 4 an array. */
  predict(input: { data: Float32Array; shape: readonly number[] }, options?: PredictOptions): Promise<Prediction | Prediction[]>;
  async predict(input: unknown, options: PredictOptions = {}): Promise<Prediction | Prediction[]> {
    const site = new Error();
    const native = this.handle();
    const opts = v.plainObject('options', options);
    v.knownKeys('options', opts, ['top']);
    const top = v.optionalNumber('options.top', opts.top, 5, { integer: true, min: 0 });
    const { images, batch } = imagesOf(input, 'image');
    for (const im of images) this.#checkPixels(im.height, im.width, 'image');
    const { data, shape } = stack(images, 'image');
    this.#batcher ??= new Batcher((d, s) => native.predict(d, s), { maxBatch: PREDICT_MAX_BATCH, concurrency: 1 });
    // Many images in one call go through the model in parts of at most PREDICT_MAX_BATCH images (fewer for
    // large ones), so that the model's activations do not grow with the call; the batcher may merge parts.
    const [n, c, h, w] = shape;
    const rows = Math.min(PREDICT_MAX_BATCH, autoBatchRows(h, w));
    const per = c * h * w;
    const parts: Promise<{ data: Float32Array; classes: number }>[] = [];
    for (let b = 0; b < n; b += rows) {
      const m = Math.min(rows, n - b);
      parts.push(this.#batcher.submit(data.subarray(b * per, (b + m) * per), [m, c, h, w]));
    }
    const outs = await this.#track(() => Promise.all(parts).catch((e) => Promise.reject(fromNative(e, site))));
    const k = outs[0].classes;
    let scores = outs[0].data;
    if (outs.length > 1) {
      scores = new Float32Array(n * k);
      outs.reduce((offset, o) => (scores.set(o.data, offset), offset + o.data.length), 0);
    }
    if (this.labels && this.labels.length !== k) {
      throw new TorchSaliencyError(
        'ERR_LABELS_MISMATCH',
        `Expected ${k} labels (one per class the model scores) for options.labels but received ${this.labels.length} labels`,
        { argument: 'options.labels' },
      );
    }
    this.#classes = k;
    const predictions: Prediction[] = [];
    for (let i = 0; i < n; i++) {
      const logits = scores.slice(i * k, (i + 1) * k);
      const probabilities = softmax(logits);
      const order = Array.from(probabilities.keys())
        .sort((a, b) => probabilities[b] - probabilities[a])
        .slice(0, Math.min(top, k));
      predictions.push({ logits, probabilities, top: order.map((index) => ({ index, label: this.labels?.[index], probability: probabilities[index] })) });
    }
    return batch ? predictions : predictions[0];
  }

  #placeholderSize: [number, number] | undefined;

  /**
   * What `explain(null, ...)` stands for: the size the model's parameters fix (native info().inputSize: a
   * ViT's positional embedding times its patch, an MLP's first layer) when the model runs on it, else
   * 224 x 224 when it runs on that; else an error that asks for the size, before the method runs, instead of
   * the model's own shape error from inside it. Found once per model (one forward pass of a zero image each).
   */
  async #defaultSize(channels: number): Promise<[number, number]> {
    if (this.#placeholderSize) return this.#placeholderSize;
    const hint = this.handle().info().inputSize ?? null;
    const candidates: [number, number][] = hint && !(hint[0] === 224 && hint[1] === 224) ? [hint, [224, 224]] : [[224, 224]];
    let failure: TorchSaliencyError | undefined;
    for (const [height, width] of candidates) {
      try {
        await this.predict({ data: new Float32Array(channels * height * width), channels, height, width }, { top: 0 });
        this.#placeholderSize = [height, width];
        return this.#placeholderSize;
      } catch (e) {
        if (!(e instanceof TorchSaliencyError) || (e.code !== 'ERR_MODEL_RUN' && e.code !== 'ERR_INPUT_SHAPE')) throw e;
        failure ??= e;
      }
    }
    const tried = candidates.map(([h, w]) => `${h} x ${w}`).join(' nor ');
    throw new TorchSaliencyError(
      'ERR_INPUT_SHAPE',
      `Expected the model's input size ([height, width] or a side) for image but received null, and the model runs on neither ${tried} (${failure!.message})`,
      { argument: 'image', cause: failure },
    );
  }

  /** The number of classes the model scores: from its last prediction, or one prediction of `image`. */
  async #classCount(image: Image): Promise<number> {
    this.#classes ??= (await this.predict(image, { top: 0 })).logits.length;
    return this.#classes;
  }

  /**
   * Resolves the target option to (image, class index) jobs, once, here: 'top-k' from one prediction of
   * the images (in chunks of `batchSize` when it is set), class indices checked against the model's classes.
   */
  async #jobs(target: unknown, images: Image[], batch: boolean, batchSize: number): Promise<Job[]> {
    // Per image, its list of specs with the argument name of each.
    let perImage: { spec: unknown; name: string }[][];
    const one = (spec: unknown, name: string) => (Array.isArray(spec) ? spec.map((s: unknown, k) => ({ spec: s, name: `${name}[${k}]` })) : [{ spec, name }]);
    if (target === undefined) perImage = images.map(() => [{ spec: 'top-1', name: 'options.target' }]);
    else if (!Array.isArray(target)) perImage = images.map(() => [{ spec: target, name: 'options.target' }]);
    else if (!batch)
      perImage = [one(target, 'options.target')]; // several targets for the one image
    else if (target.length === images.length) perImage = target.map((specs, i) => one(specs, `options.target[${i}]`));
    else throw invalidValue('options.target', `a target or an array of ${images.length} (one per image)`, target);

    let top = 0; // the most classes a 'top-k' asks for
    const parsed = perImage.map((specs, image) =>
      specs.map(({ spec, name }) => {
        if (typeof spec === 'number') {
          if (!Number.isInteger(spec) || spec < 0) throw outOfRange(name, 'a class index (an integer >= 0)', spec);
          return { image, name, spec, index: spec };
        }
        if (typeof spec !== 'string') throw invalidType(name, "a class index, a label or 'top-k'", spec);
        const m = /^top-(\d+)$/.exec(spec);
        if (m) {
          const count = Number(m[1]);
          if (count < 1) throw outOfRange(name, "'top-k' with k >= 1", spec);
          top = Math.max(top, count);
          return { image, name, spec, count };
        }
        const index = this.labels?.indexOf(spec) ?? -1;
        if (index < 0) {
          throw invalidValue(
            name,
            this.labels ? `a class index, 'top-k' or one of the model's ${this.labels.length} labels` : "a class index or 'top-k' (the model has no labels)",
            spec,
          );
        }
        return { image, name, spec, index };
      }),
    );

    if (parsed.every((specs) => specs.length === 0)) throw invalidValue('options.target', 'at least one target', target);
    let ranked: Prediction[] = [];
    if (top > 0) {
      const step = batchSize > 0 ? batchSize : images.length;
      for (let b = 0; b < images.length; b += step) ranked.push(...(await this.predict(images.slice(b, b + step), { top })));
    }
    const classes = ranked.length > 0 ? ranked[0].logits.length : await this.#classCount(images[0]);
    const jobs: Job[] = [];
    for (const entry of parsed.flat()) {
      if (entry.count !== undefined) {
        if (entry.count > classes) throw outOfRange(entry.name, `'top-k' with k <= ${classes} (the number of classes)`, entry.spec);
        for (let r = 0; r < entry.count; r++) jobs.push({ image: entry.image, target: ranked[entry.image].top[r].index });
      } else {
        if (entry.index >= classes) throw outOfRange(entry.name, `a class index in [0, ${classes - 1}]`, entry.spec);
        jobs.push({ image: entry.image, target: entry.index });
      }
    }
    return jobs;
  }

  /**
   * Saliency maps for one image or a batch, by the method named in `options.method` (see methods()): the
   * options, `result.options` and `result.details` are typed by that method. One native call; the images,
   * targets (and areas, for extremal perturbation) share batches through the model.
   */
  explain<M extends MethodName>(
    input: ImageInput | readonly ImageInput[] | ImageBatch | PlaceholderSize,
    options: ExplainOptionsFor<M>,
  ): Promise<ExplanationFor<M>>;
  async explain(input: ImageInput | readonly ImageInput[] | ImageBatch | PlaceholderSize, options: unknown): Promise<Explanation<object, object>> {
    const site = new Error();
    const start = performance.now();
    const native = this.handle();
    const opts = v.plainObject('options', options);
    const spec = getMethod(opts.method);
    const placeholder = isPlaceholder(input);
    v.knownKeys('options', opts, [...COMMON_OPTION_NAMES, ...Object.keys(spec.defaults)]);
    if (!placeholder && opts.channels !== undefined) {
      throw invalidValue('options.channels', 'no channels with an image (they size the placeholder when explain is given a size)', opts.channels);
    }
    let placed: { images: Image[]; batch: boolean } | undefined;
    if (placeholder) {
      const channels = placeholderChannels(opts.channels, native.info().inputChannels);
      placed = placeholderImage(input ?? (await this.#defaultSize(channels)), channels);
    }
    const { images, batch } = placed ?? imagesOf(input, 'image');
    for (const im of images) this.#checkPixels(im.height, im.width, 'image');
    const { data, shape } = stack(images, 'image');
    const context: MethodContext = { images, channels: shape[1], height: shape[2], width: shape[3], device: this.device, labels: this.labels };
    const { common, given, runtime } = normalizeCommon(opts, context);
    // The method's options after the common ones: a batchSize of its own is its real default for it.
    const normalized = Object.freeze({ method: spec.name, ...common, ...spec.normalize(opts, { ...context, batchSize: given.batchSize }) });
    if (runtime.signal?.aborted) throw abortError(runtime.signal.reason);
    const jobs = await this.#jobs(opts.target, images, batch, normalized.batchSize);
    if (runtime.signal?.aborted) throw abortError(runtime.signal.reason);

    let token: NativeCancelToken | null = null;
    const onAbort = () => token?.cancel();
    if (runtime.signal) {
      token = new (binding().CancelToken)();
      runtime.signal.addEventListener('abort', onAbort, { once: true });
    }
    const onProgress = runtime.onProgress
      ? (p: { iteration: number; total: number; energy: number }) => {
          try {
            runtime.onProgress!({ ...p, fraction: p.total > 0 ? p.iteration / p.total : 0 });
          } catch {
            // A failing progress callback must not break the run.
          }
        }
      : null;
    let raw;
    try {
      raw = await this.#track(() =>
        native.explain(
          normalized,
          data,
          shape,
          jobs.map((j) => j.image),
          jobs.map((j) => j.target),
          onProgress,
          token,
        ),
      );
    } catch (e) {
      if ((e as { code?: string }).code === 'ABORT_ERR') throw abortError(runtime.signal?.reason);
      throw fromNative(e, site);
    } finally {
      runtime.signal?.removeEventListener('abort', onAbort);
    }
    const finishContext = { ...context, jobs, options: normalized };
    const { maps, details } = spec.finish ? spec.finish(raw, finishContext) : { maps: mapsPerJob(raw, finishContext), details: {} };
    const targets: TargetInfo[] = jobs.map((j) => ({ image: j.image, target: j.target, ...(this.labels ? { label: this.labels[j.target] } : {}) }));
    return new Explanation({ method: spec.name, options: normalized, maps, targets, details, timings: { totalMs: performance.now() - start } });
  }

  /** Releases the native model (idempotent). Calls in flight finish first; later calls get ERR_DISPOSED. */
  dispose(): void {
    // Requests still queued in the batcher are calls in flight too: send them before the native model goes.
    this.#batcher?.drain();
    this.#native?.dispose();
    this.#native = null;
  }

  async [Symbol.asyncDispose](): Promise<void> {
    this.dispose();
  }
}

/** Loads a TorchScript model (a file path or the bytes of one). */
export async function loadModel(source: string | Buffer | Uint8Array, options: LoadModelOptions = {}): Promise<Model> {
  const site = new Error();
  const opts = v.plainObject('options', options);
  v.knownKeys('options', opts, ['device', 'threads', 'labels', 'mean', 'std', 'maxInputPixels', 'scoreMaps']);
  const scoreMaps = opts.scoreMaps ?? 'refuse';
  if (scoreMaps !== 'refuse' && scoreMaps !== 'mean') throw invalidValue('options.scoreMaps', "'refuse' or 'mean'", opts.scoreMaps);
  const maxInputPixels = v.optionalNumber('options.maxInputPixels', opts.maxInputPixels, DEFAULT_MAX_INPUT_PIXELS, { integer: true, min: 1 });
  if (typeof source !== 'string' && !(source instanceof Uint8Array)) throw invalidType('model', 'a file path or a Buffer', source);
  if (typeof source === 'string' && source.length === 0) throw invalidType('model', 'a file path or a Buffer', source);
  const device = opts.device ?? 'auto';
  if (typeof device !== 'string' || !/^(cpu|cuda|auto|cuda:\d+)$/.test(device))
    throw invalidValue('options.device', "'cpu', 'cuda', 'cuda:N' or 'auto'", device);
  const threads = v.optionalNumber('options.threads', opts.threads, 0, { integer: true, min: 0, max: 1024 });
  const mean = opts.mean === undefined ? undefined : v.numberList('options.mean', opts.mean, []);
  const std = opts.std === undefined ? undefined : v.numberList('options.std', opts.std, [], { above: 0 });
  if ((mean === undefined) !== (std === undefined)) throw invalidValue(mean ? 'options.std' : 'options.mean', 'mean and std given together', undefined);
  if (mean && std && mean.length !== std.length) throw invalidValue('options.std', `an array of ${mean.length} numbers (as many as mean)`, std);
  if (
    typeof source === 'string' &&
    !(await stat(source).then(
      (s) => s.isFile(),
      () => false,
    ))
  ) {
    // A path that names no file is the caller's mistake (exit 2 in the CLI), not a model that fails to load.
    throw new TorchSaliencyError(
      'ERR_MODEL_NOT_FOUND',
      `Expected a TorchScript file for model but received '${source}': the file does not exist or is not a file`,
      { argument: 'model' },
    );
  }
  const labels = await readLabels(opts.labels as LoadModelOptions['labels']);
  const src = typeof source === 'string' ? source : Buffer.isBuffer(source) ? source : Buffer.from(source.buffer, source.byteOffset, source.byteLength);
  const native = await binding()
    .loadModel(src, { device, threads, scoreMaps, ...(mean ? { mean, std } : {}) })
    .catch((e) => Promise.reject(fromNative(e, site)));
  return new Model(native, labels, maxInputPixels);
}
