/**
 * 'attention-relevance': gradient-weighted attention relevance (Chefer, Gur & Wolf, ICCV 2021, "Generic
 * attention-model explainability"). R = I; per block R += mean over heads of relu(dy/dA * A) R; the map is
 * the class token's row of R over the grid tokens. See docs/methods/attention-relevance.md.
 */
import { attentionDetails, attentionLayersOption, type AttentionDetails, type AttentionOutputs } from './attention-rollout.js';
import { gridOption, prefixTokensOption } from './tokens.js';
import { mapsPerJob, type MethodSpec } from './types.js';

export interface AttentionRelevanceOptions {
  /** The layers that return each block's attention probabilities: a pattern, '*' for one name part; null: found by their outputs. */
  attentionLayers?: string | null;
  /** Tokens before the grid (class, distillation, registers); null: inferred. */
  prefixTokens?: number | null;
  /** The token grid [h, w]; null: inferred. */
  grid?: number | readonly [number, number] | null;
}

export type NormalizedAttentionRelevance = {
  attentionLayers: string | null;
  prefixTokens: number | null;
  grid: [number, number] | null;
};

const DEFAULTS = Object.freeze({ attentionLayers: null, prefixTokens: null, grid: null } as const);

export const attentionRelevance: MethodSpec<
  'attention-relevance',
  AttentionRelevanceOptions,
  NormalizedAttentionRelevance,
  AttentionDetails,
  AttentionOutputs
> = {
  name: 'attention-relevance',
  summary: "gradient-weighted attention relevance (Chefer et al. 2021): a transformer's attention weighted by the target's gradient, accumulated over blocks.",
  defaults: DEFAULTS,
  normalize(options) {
    return Object.freeze({ attentionLayers: attentionLayersOption(options), prefixTokens: prefixTokensOption(options), grid: gridOption(options) });
  },
  finish(raw, context) {
    return { maps: mapsPerJob(raw, context), details: attentionDetails(raw.outputs.layers) };
  },
};
