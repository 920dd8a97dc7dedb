/**
 * 'attention-rollout': attention rollout (Abnar & Zuidema 2020). Each block's attention, heads fused,
 * plus the identity, rows renormalised, multiplied over the blocks; the map is the class token's row over
 * the grid tokens. It does not depend on the target. See docs/methods/attention-rollout.md.
 */
import * as v from '../validate.js';
import type { NativeRecord } from '../native.js';
import { gridOption, prefixTokensOption } from './tokens.js';
import { mapsPerJob, type MethodSpec } from './types.js';

export interface AttentionRolloutOptions {
  /** The layers that return each block's attention probabilities: a pattern, '*' for one name part; null: found by their outputs. */
  attentionLayers?: string | null;
  /** How a block's heads are fused. */
  headFusion?: 'mean' | 'max' | 'min';
  /** Fraction of each fused matrix's smallest entries set to zero before rollout. */
  discardRatio?: number;
  /** Tokens before the grid (class, distillation, registers); null: inferred. */
  prefixTokens?: number | null;
  /** The token grid [h, w]; null: inferred. */
  grid?: number | readonly [number, number] | null;
}

export type NormalizedAttentionRollout = {
  attentionLayers: string | null;
  headFusion: 'mean' | 'max' | 'min';
  discardRatio: number;
  prefixTokens: number | null;
  grid: [number, number] | null;
};

/** result.details: how many attention layers were read, and what taking fused attention apart did. */
export interface AttentionDetails {
  attentionLayers: number;
  /** Fused attention ops (nn.MultiheadAttention's or nn.TransformerEncoderLayer's fast path, scaled_dot_product_attention) taken apart to read them. */
  fusedAttention: number;
  /** With fusedAttention > 0: the largest |score difference| between the rewritten clone and the model on the first image; else null. */
  outputDifference: number | null;
}

/** The details both attention methods report, from the native 'layers' record. */
export function attentionDetails(layers: NativeRecord): AttentionDetails {
  return {
    attentionLayers: layers.count,
    fusedAttention: layers.fused,
    outputDifference: layers.fused > 0 ? layers.outputDifference : null,
  };
}

export interface AttentionOutputs {
  layers: NativeRecord;
}

const DEFAULTS = Object.freeze({ attentionLayers: null, headFusion: 'mean', discardRatio: 0, prefixTokens: null, grid: null } as const);

export function attentionLayersOption(options: Readonly<Record<string, unknown>>): string | null {
  const value = options.attentionLayers;
  return value === undefined || value === null ? null : v.string('options.attentionLayers', value);
}

export const attentionRollout: MethodSpec<'attention-rollout', AttentionRolloutOptions, NormalizedAttentionRollout, AttentionDetails, AttentionOutputs> = {
  name: 'attention-rollout',
  summary: "attention rollout: the product over a transformer's blocks of their head-averaged attention plus identity, class token's row.",
  defaults: DEFAULTS,
  normalize(options) {
    return Object.freeze({
      attentionLayers: attentionLayersOption(options),
      headFusion: v.oneOf('options.headFusion', options.headFusion, ['mean', 'max', 'min'] as const, DEFAULTS.headFusion),
      discardRatio: v.optionalNumber('options.discardRatio', options.discardRatio, DEFAULTS.discardRatio, { min: 0, max: 0.999 }),
      prefixTokens: prefixTokensOption(options),
      grid: gridOption(options),
    });
  },
  finish(raw, context) {
    return { maps: mapsPerJob(raw, context), details: attentionDetails(raw.outputs.layers) };
  },
};
