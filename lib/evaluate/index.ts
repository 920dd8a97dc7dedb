/**
 * Evaluation of saliency maps on a Model: the pointing game (does the map's peak fall on the object?) and
 * deletion/insertion fidelity (does the model's score follow the map?). See docs/evaluation.md.
 */
export { PointingGame, pointHits } from './pointing-game.js';
export type { ObjectRegion, PointingGameOptions, PointingGameSummary, ClassScore } from './pointing-game.js';
export { fidelity, blurImage } from './fidelity.js';
export type { FidelityOptions, FidelityResult, Curve } from './fidelity.js';
