/**
 * Backdoor scanning, an application on the public Model API: input-agnostic maps of every class, each
 * scored for a trigger signature, outlying classes flagged. See docs/methods/input-agnostic.md.
 */
export { scanBackdoor, BackdoorScan } from './scan.js';
export type { ScanBackdoorOptions, ClassScan, Box } from './scan.js';
export { anomalyIndices, peakRegion } from './scores.js';
