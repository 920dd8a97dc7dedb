/** What `torch-saliency explain` writes as JSON (summary.json, <name>/result.json) and the report reads. */
import type { TopClass } from '../model.js';

export interface CurveJSON {
  auc: number;
  fractions: number[];
  probabilities: number[];
}

export interface MapResult {
  target: number;
  label?: string;
  area?: number;
  min: number;
  max: number;
  mean: number;
  /** Picture kind -> path relative to the output folder. */
  pictures: Record<string, string>;
  /** Deletion and insertion curves (with --curves or --report). */
  curves?: { deletion: CurveJSON; insertion: CurveJSON; ms: number };
}

export interface MethodResult {
  options?: Record<string, unknown>;
  timings?: { totalMs: number };
  maps?: MapResult[];
  details?: Record<string, unknown>;
  error?: { code: string; message: string };
}

export interface ImageResult {
  file: string;
  name: string;
  /** The image as the model saw it, relative to the output folder. */
  image: string;
  height: number;
  width: number;
  top: TopClass[];
  predictMs: number;
  methods: Record<string, MethodResult>;
  /** Every method done without an error. */
  complete: boolean;
}

export interface ImageEntry {
  file: string;
  name: string;
  state: 'done' | 'resumed' | 'failed' | 'interrupted';
  /** Its result.json, relative to the output folder. */
  result?: string;
  error?: { code: string; message: string };
}

export interface RunSummary {
  tool: string;
  model: string;
  labels?: string;
  device: string;
  methods: readonly string[];
  options: Record<string, Record<string, unknown>>;
  target: unknown;
  started: string;
  totalMs?: number;
  /** False when the run was interrupted: then only the images marked done or resumed are whole. */
  complete: boolean;
  images: ImageEntry[];
}
