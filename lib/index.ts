/**
 * torch-saliency: saliency maps for TorchScript image classifiers, on libtorch, from Node.js.
 */
import { binding } from './native.js';
import { methodNames, type MethodName } from './methods/index.js';
import { number } from './validate.js';

export { loadModel, Model } from './model.js';
export type { LoadModelOptions, ImageInput, ImageBatch, Prediction, PredictOptions, TopClass, ModelInfo, Device, PlaceholderSize } from './model.js';
export type { ExplainOptions, ExplainOptionsFor, ExplanationFor, MethodName, MethodOptions, MethodDetails, NormalizedMethodOptions } from './methods/index.js';
export type { CommonOptions, NormalizedCommon, TargetSpec, ProgressEvent } from './methods/common.js';
export type { BackpropOptions, LayerOptions, ContrastiveOptions, NormalizedBackprop, NormalizedContrastive } from './methods/backprop.js';
export type { TokenOptions, NormalizedTokens, TokenLayoutName } from './methods/tokens.js';
export type { RiseOptions, NormalizedRise } from './methods/rise.js';
export type { AttentionRolloutOptions, NormalizedAttentionRollout, AttentionDetails } from './methods/attention-rollout.js';
export type { AttentionRelevanceOptions, NormalizedAttentionRelevance } from './methods/attention-relevance.js';
export type { ChannelPerturbationOptions, NormalizedChannelPerturbation, ChannelPerturbationDetails, ChannelScore } from './methods/channel-perturbation.js';
export { readImage, fromInterleaved, toInterleaved } from './image.js';
export type { Image, ReadImageOptions, Fit } from './image.js';
export { Explanation, SaliencyMap } from './explanation.js';
export type { MapMeta, TargetInfo, ToPNGOptions, PictureKind } from './explanation.js';
export { heatmapPNG, maskPNG, overlayPNG, preservedPNG, imagePNG, writePicture } from './pictures.js';
export type { HeatmapOptions, OverlayOptions } from './pictures.js';
export { resizeMap, normalizeMap } from './map.js';
export type { MapData } from './map.js';
export { TorchSaliencyError } from './errors.js';
export type { ErrorCode } from './errors.js';
export type { ColormapName } from './colormaps.js';

/** The methods `explain` knows. */
export function methods(): MethodName[] {
  return methodNames();
}

/** libtorch intra-op threads for the whole process; returns the number now in use. */
export function setThreads(threads: number): number {
  return binding().setThreads(number('threads', threads, { integer: true, min: 0, max: 1024 }));
}

/**
 * Gives the caching CPU allocator's free blocks back to the system (after a large batch in a long-lived
 * server, say); returns how many bytes it held. Blocks in use are not touched.
 */
export function releaseCpuCache(): number {
  return binding().releaseCpuCache();
}

/** The native runtime: libtorch version, threads, CUDA, live models, the CPU cache. */
export function runtime(): ReturnType<ReturnType<typeof binding>['runtime']> {
  return binding().runtime();
}
export {
  PointingGame,
  pointHits,
  fidelity,
  fidelityCurve,
  blurImage,
  spearman,
  ssim,
  sanityCheck,
  readAnnotations,
  parseAnnotations,
  evaluate,
  formatEvaluation,
  evaluationCSV,
  evaluationJSON,
} from './evaluate/index.js';
export type {
  ObjectRegion,
  PointingGameOptions,
  PointingGameSummary,
  ClassScore,
  FidelityOptions,
  FidelityResult,
  Curve,
  SanityOptions,
  SanityResult,
  SanityStep,
  ImageAnnotation,
  AnnotatedObject,
  EvaluateOptions,
  EvaluateProgress,
  Evaluation,
  EvaluationImage,
  MethodEvaluation,
  MethodSpec,
  ScoreName,
  JobMap,
} from './evaluate/index.js';
export { scanBackdoor, BackdoorScan } from './backdoor/index.js';
export type { ScanBackdoorOptions, ScanMethod, ClassScan, Box, InputAgnosticClassScan, NeuralCleanseClassScan, InputKind } from './backdoor/index.js';
export type {
  ExtremalPerturbationOptions,
  NormalizedExtremalPerturbation,
  ExtremalPerturbationDetails,
  EpPhaseTimings,
} from './methods/extremal-perturbation.js';
export type { InputAgnosticOptions, NormalizedInputAgnostic, InputAgnosticDetails } from './methods/input-agnostic.js';
export type { NeuralCleanseOptions, NormalizedNeuralCleanse, NeuralCleanseDetails } from './methods/neural-cleanse.js';
export { createService, createModelService, createFront, loadModelFolder, SaliencyService } from './service/index.js';
export type { ServiceOptions, ServiceStats, Limits, ServedModel, ModelFolderOptions, WorkExecutor, ModelSummary } from './service/index.js';
export { createBatcher, ModelBatcher, splitExplanation } from './batching/batcher.js';
export type { BatcherOptions, BatchCall, BatchedResult, ExplainJobOptions } from './batching/batcher.js';
export { createProducer, QueueProducer } from './queue/producer.js';
export type { ProducerOptions, EnqueueOptions, ResultOptions } from './queue/producer.js';
export { createWorker, QueueWorker } from './queue/worker.js';
export type { WorkerOptions } from './queue/worker.js';
export { renderReport, writeReport, renderEvaluationPage, writeEvaluationPage, renderScanPage, writeScanPage } from './report/index.js';
export type {
  RunSummary,
  ImageEntry,
  ImageResult,
  MethodResult,
  MapResult,
  CurveJSON,
  EvaluationPage,
  EvaluationRun,
  PairPictures,
  ScanJSON,
  ScanClassJSON,
  ScanRun,
} from './report/index.js';
