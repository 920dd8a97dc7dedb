/**
 * Backdoor scanning, an application on the public Model API: every class is examined for a trigger, by
 * input-agnostic maps (default, data-free) or by Neural Cleanse. See docs/methods/input-agnostic.md and
 * docs/methods/neural-cleanse.md.
 */
export { scanBackdoor, BackdoorScan } from './scan.js';
export type { ScanBackdoorOptions, ScanMethod, CommonScanOptions, ClassScan, Box } from './scan.js';
export type { ClassScanBase } from './types.js';
export type { InputAgnosticScanOptions, InputAgnosticClassScan } from './scan-input-agnostic.js';
export type { NeuralCleanseScanOptions, NeuralCleanseClassScan } from './scan-neural-cleanse.js';
export { anomalyIndices, peakRegion } from './scores.js';
export { randomInputs, INPUT_KINDS } from './inputs.js';
export type { InputKind, Head } from './inputs.js';
