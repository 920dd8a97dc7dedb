/**
 * The contract between the public `explain` call and each method's file (lib/methods/<name>.ts): a method
 * declares its options' defaults, normalises its options into a frozen object (the one `result.options`
 * holds and the native method reads by name), and turns the native result into maps and typed details.
 */
import type { Image } from '../image.js';
import type { NativeExplainResult, NativeRecord, NativeTensor } from '../native.js';
import { SaliencyMap } from '../explanation.js';

/** One (image, target) pair of a call. */
export interface Job {
  image: number;
  target: number;
}

export interface MethodContext {
  images: readonly Image[];
  height: number;
  width: number;
  channels: number;
  /** The model's device ('cpu', 'cuda:0', ...): some defaults depend on it. */
  device: string;
  labels?: readonly string[];
}

/**
 * A default that is not one value: it depends on the call (the image size, the device, another option) or
 * there is none (the option is required). `text` is how the method's doc page begins to say it.
 */
export interface DerivedDefault {
  readonly derived: string;
}

export function derived(text: string): DerivedDefault {
  return Object.freeze({ derived: text });
}

export const REQUIRED: DerivedDefault = derived('required');

/**
 * An option's default as the doc pages show it (test/unit/docs-options.test.ts checks every page against
 * these): a value, null (none), a value per case of another option ({ linf: 0.5, l2: 0.25 }), or derived.
 */
export type OptionDefault = number | string | boolean | null | readonly number[] | Readonly<Record<string, number>> | DerivedDefault;

/** The text a doc table's default cell begins with for `value`. */
export function formatDefault(value: OptionDefault): string {
  if (value === null) return 'none';
  if (typeof value === 'number') return String(value);
  if (typeof value === 'string') return `\`'${value}'\``;
  if (typeof value === 'boolean') return `\`${value}\``;
  if (Array.isArray(value)) return `\`[${value.join(', ')}]\``;
  if ('derived' in value && typeof value.derived === 'string') return value.derived;
  return Object.entries(value as Record<string, number>)
    .map(([k, v]) => `${v} (${k})`)
    .join(', ');
}

export interface FinishContext<Normalized extends object> extends MethodContext {
  jobs: readonly Job[];
  options: Readonly<Normalized>;
}

/** Outputs a method's native side returns by name: tensors and records of numbers. */
export type NativeOutputs = Readonly<Record<string, NativeTensor | NativeRecord>>;

/** No method-specific details. */
export type NoDetails = Readonly<Record<string, never>>;

/**
 * A method: `Name` is its `method` string, `Options` what a caller may give besides the common options,
 * `Normalized` what normalize() makes of them (defaults filled in), `Details` what `result.details` holds,
 * and `Outputs` the named outputs of its native side.
 */
export interface MethodSpec<
  Name extends string,
  Options extends object,
  Normalized extends object,
  Details extends object,
  Outputs extends object = NativeOutputs,
> {
  readonly name: Name;
  /** One line for --help and errors. */
  readonly summary: string;
  /**
   * The default of each option of the method, and of any common option whose default the method sets
   * itself (batchSize). The doc page's options table shows these, and normalize() takes them from here.
   */
  readonly defaults: Readonly<{ [K in keyof Options]-?: OptionDefault } & { batchSize?: OptionDefault }>;
  /**
   * Checks the method's own options (`options` is what the caller gave, not yet checked; `common` the
   * common options, normalised) and returns them with defaults filled in, frozen. A `batchSize` in the
   * result replaces the common one: the method's real default for it.
   */
  normalize(options: Readonly<Record<string, unknown>>, context: MethodContext & { batchSize: number | undefined }): Readonly<Normalized>;
  /** Maps and details from the native result. Without it: one map per job, no details. */
  finish?(raw: NativeExplainResult<Outputs>, context: FinishContext<Normalized>): { maps: SaliencyMap[]; details: Details };
}

/** The default finish: the native maps tensor holds one H x W map per job. */
export function mapsPerJob(raw: { maps: NativeTensor }, context: FinishContext<object>, extra?: (job: number) => Record<string, unknown>): SaliencyMap[] {
  const [count, height, width] = raw.maps.shape.length === 3 ? raw.maps.shape : [raw.maps.shape[0], raw.maps.shape[1], 1];
  const plane = height * width;
  const maps: SaliencyMap[] = [];
  for (let j = 0; j < count; j++) {
    const job = context.jobs[j];
    maps.push(
      new SaliencyMap(raw.maps.data.slice(j * plane, (j + 1) * plane) as Float32Array, height, width, {
        image: job.image,
        target: job.target,
        label: context.labels?.[job.target],
        ...(extra ? extra(j) : {}),
      }),
    );
  }
  return maps;
}

/** Rows of a 2-D tensor as Float32Arrays (histories: one row per map). */
export function rowsOf(t: NativeTensor): Float32Array[] {
  const [n, k] = t.shape.length === 2 ? t.shape : [t.shape[0], 1];
  return Array.from({ length: n }, (_, i) => Float32Array.from(t.data.subarray(i * k, (i + 1) * k)));
}
