/** Types shared by the scan (scan.ts) and its methods (scan-input-agnostic.ts, scan-neural-cleanse.ts). */
import type { Explanation } from '../explanation.js';
import type { Image } from '../image.js';
import type { MapData } from '../map.js';
import type { Head } from './inputs.js';
import type { Box } from './scores.js';

/** What every method says of a class. */
export interface ClassScanBase {
  class: number;
  label?: string;
  /** The suspected trigger's region. */
  box: Box;
  /** Robust z-score of the class's statistic across the scanned classes, signed so that high is suspicious. */
  anomalyIndex: number;
  flagged: boolean;
}

/** The validated common options, as the methods' scans receive them. */
export interface ScanContext {
  height: number;
  width: number;
  channels: number;
  classes: number[];
  head: Head;
  images: Image[] | undefined;
  anomaly: number;
  seed: number;
  options: Record<string, unknown>;
}

/** What a method's scan gives back to scanBackdoor. */
export interface MethodScan<C extends ClassScanBase> {
  classes: C[];
  score: number;
  pictures: readonly Image[];
  maps: readonly MapData[];
  /** The method's explanation the scan is made of. */
  explanation: Explanation<object, object>;
  thresholds: Record<string, number>;
  options: Readonly<Record<string, unknown>>;
  methodMs: number;
}
