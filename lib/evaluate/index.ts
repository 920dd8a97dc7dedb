/**
 * Evaluation of saliency maps on a Model: the pointing game (does the map's peak fall on the object?),
 * deletion/insertion fidelity (does the model's score follow the map?), and the model-parameter
 * randomisation sanity check (does the map depend on the model?). See docs/evaluation.md.
 */
export { PointingGame, pointHits } from './pointing-game.js';
export type { ObjectRegion, PointingGameOptions, PointingGameSummary, ClassScore } from './pointing-game.js';
export { fidelity, fidelityCurve, blurImage } from './fidelity.js';
export type { FidelityOptions, FidelityResult, Curve } from './fidelity.js';
export { spearman, ssim, pearson, ranks } from './similarity.js';
export type { SsimOptions } from './similarity.js';
export { sanityCheck } from './sanity.js';
export type { SanityOptions, SanityResult, SanityStep, SanityJob } from './sanity.js';
export { readAnnotations, parseAnnotations, classIndexOf, transformBox, annotationFor } from './annotations.js';
export type { Box, AnnotatedObject, ImageAnnotation } from './annotations.js';
export { evaluate, SCORE_NAMES } from './evaluate.js';
export type {
  EvaluateOptions,
  EvaluateProgress,
  Evaluation,
  EvaluationImage,
  EvaluationTiming,
  MethodEvaluation,
  MethodSpec,
  PointingGameScore,
  CurveScore,
  ScoreName,
} from './evaluate.js';
export { formatEvaluation, evaluationCSV, evaluationJSON } from './output.js';
export { meanCurve } from './mean-curve.js';
export type { JobMap } from './job-maps.js';
