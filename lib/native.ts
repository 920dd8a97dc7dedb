/**
 * The only file that loads the compiled addon. Everything else imports `binding` from here and sees the
 * native surface through the Binding interface below.
 */
import { createRequire } from 'node:module';
import { existsSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { TorchSaliencyError } from './errors.js';

export interface NativeTensor {
  data: Float32Array | Int32Array;
  shape: number[];
}

export interface NativeProgress {
  iteration: number;
  total: number;
  energy: number;
}

/**
 * A named record of numbers from a native method (timings, say): the binding returns these by name, never
 * as a tensor to be read by position.
 */
export type NativeRecord = Readonly<Record<string, number>>;

/** What a native method returns: the maps, and its other outputs by name (tensors and records). */
export interface NativeExplainResult<Outputs extends object = Readonly<Record<string, NativeTensor | NativeRecord>>> {
  maps: NativeTensor;
  outputs: Outputs;
}

/**
 * The normalised options of a call, as lib/methods made them (`result.options`): the native method reads
 * each key it needs by name. Values are numbers, booleans, strings, arrays of numbers and null ("none");
 * the binding rejects anything else with ERR_INVALID_ARG_TYPE rather than drop it.
 */
export type NativeOptions = Readonly<Record<string, number | boolean | string | null | readonly number[]>>;

export interface NativeModel {
  predict(data: Float32Array, shape: number[]): Promise<NativeTensor>;
  /** Runs options.method on the images for the jobs (image index and class index each, resolved by the caller). */
  explain(
    options: NativeOptions,
    data: Float32Array,
    shape: number[],
    jobImage: number[],
    jobTarget: number[],
    onProgress?: ((p: NativeProgress) => void) | null,
    token?: NativeCancelToken | null,
  ): Promise<NativeExplainResult>;
  /** The output shape (batch included) of every layer that can be probed, for one image of `shape` (1 x C x H x W). */
  layerShapes(data: Float32Array, shape: number[]): Promise<{ name: string; shape: number[] }[]>;
  layers(): string[];
  /** inputSize: [h, w] the model's parameters fix (a positional embedding, a first linear layer), unchecked; null when none. */
  info(): { device: string; inputChannels: number; inputSize?: [number, number] | null; parameters: number; torchVersion: string };
  /** Which parameters require grad: lets tests check that a run leaves the model as it found it. */
  requiresGrad(): boolean[];
  /** Names of the submodules holding parameters of their own, input side first. */
  parameterLayers(): string[];
  /** A deep copy whose named layers' parameters are re-drawn (as PyTorch's reset_parameters, each layer from `seed`). */
  cloneReinitialized(layers: string[], seed: number): Promise<NativeModel>;
  dispose(): void;
  readonly disposed: boolean;
}

export interface NativeCancelToken {
  cancel(): void;
}

export interface Binding {
  loadModel(source: string | Buffer, options: { device: string; threads: number; scoreMaps: string; mean?: number[]; std?: number[] }): Promise<NativeModel>;
  setThreads(threads: number): number;
  releaseCpuCache(): number;
  runtime(): {
    torchVersion: string;
    threads: number;
    availableCores: number;
    cudaAvailable: boolean;
    cudaDevices: number;
    liveModels: number;
    methods: string[];
    /** libtorch's CPU blocks of 1 MB and more are cached for reuse (TORCH_SALIENCY_CPU_CACHE_MB; 0 turns it off). */
    cpuCache: { enabled: boolean; limitBytes: number; cachedBytes: number; hits: number; misses: number };
    /** The extremal-perturbation mask generator's inner kernels on this CPU (TORCH_SALIENCY_SIMD asks for a lesser one). */
    cpuKernels: 'avx512' | 'avx2' | 'generic';
  };
  CancelToken: new () => NativeCancelToken;
}

function packageRoot(): string {
  // dist/native.js and lib/native.ts both sit one level below the package root.
  let dir = __dirname_();
  for (let i = 0; i < 4; i++) {
    if (existsSync(join(dir, 'package.json')) && existsSync(join(dir, 'CMakeLists.txt'))) return dir;
    dir = dirname(dir);
  }
  return resolve(__dirname_(), '..');
}

function __dirname_(): string {
  return __dirname;
}

function load(): Binding {
  // libgomp (libtorch's OpenMP) spins its idle threads by default; on shared or small machines the
  // spinning threads take the cores the work needs (a 21 ms step became 188 ms here). It reads this once,
  // when libtorch loads, so it is set before the addon is required. A user's own setting wins.
  process.env.OMP_WAIT_POLICY ??= 'PASSIVE';
  const root = packageRoot();
  const req = createRequire(join(root, 'package.json'));
  const tried: string[] = [];
  const override = process.env.TORCH_SALIENCY_ADDON;
  const candidates = override ? [override] : [join(root, 'build', 'Release', 'torch_saliency.node'), join(root, 'build', 'Debug', 'torch_saliency.node')];
  let lastError: unknown;
  for (const file of candidates) {
    if (!existsSync(file)) {
      tried.push(`${file} (missing)`);
      continue;
    }
    try {
      return req(file) as Binding;
    } catch (e) {
      lastError = e;
      tried.push(`${file} (${(e as Error).message.split('\n')[0]})`);
    }
  }
  // An explicit TORCH_SALIENCY_ADDON is the only candidate: falling back would hide a wrong path and
  // silently run another build (another libtorch) than the one asked for.
  if (!override) {
    try {
      return req('node-gyp-build')(root) as Binding;
    } catch (e) {
      if (!lastError) lastError = e;
      tried.push(`node-gyp-build(${root}) (${(e as Error).message.split('\n')[0]})`);
    }
  }
  const text = tried.join('\n  - ');
  let fix = 'Build it: `npm run build:native` (needs libtorch: `sudo bash scripts/install-libtorch.sh`).';
  if (/undefined symbol/.test(text)) {
    fix =
      'The addon and the libtorch it loads disagree (C++ ABI or version): rebuild against the libtorch you run with, `npm run build:native`; see README "Troubleshooting".';
  } else if (/lib(torch|c10)[^ ]*\.so.*cannot open/.test(text)) {
    fix = 'libtorch was moved or removed since the build: reinstall it (`sudo bash scripts/install-libtorch.sh`) and `npm run build:native`.';
  }
  throw new TorchSaliencyError('ERR_NATIVE_LOAD', `torch-saliency could not load its native addon. Tried:\n  - ${text}\n${fix}`, { cause: lastError });
}

let cached: Binding | undefined;

/** The native addon, loaded on first use. */
export function binding(): Binding {
  cached ??= load();
  return cached;
}
