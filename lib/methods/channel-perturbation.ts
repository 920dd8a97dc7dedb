/**
 * 'channel-perturbation': extremal perturbation over a layer's channels. Finds the smallest set of
 * channels (an `area` fraction of them) whose activation, kept while the others fade out, preserves the
 * target's score; per image (mode 'image') or shared by every image of a target (mode 'class').
 * details.channels lists, per map, the channels ranked by mask value. See docs/methods/channel-perturbation.md.
 */
import type { NativeTensor } from '../native.js';
import * as v from '../validate.js';
import { REQUIRED, mapsPerJob, type MethodSpec } from './types.js';
import { layerOption } from './backprop.js';
import { TOKEN_DEFAULTS, tokenOptions, type NormalizedTokens, type TokenOptions } from './tokens.js';

export interface ChannelPerturbationOptions extends TokenOptions {
  /** Layer whose channels are masked (required; see model.layers()). */
  layer: string;
  /** Fraction of the channels kept. */
  area?: number;
  /** 'image': one mask per (image, target); 'class': one mask per target shared by its images. */
  mode?: 'image' | 'class';
  /** What dropped channels blend towards: 'fade' (zero) or 'mean' (their spatial mean). */
  perturbation?: 'fade' | 'mean';
  maxIter?: number;
  learningRate?: number;
  /** Initial weight of the area constraint, relative to the reward's gradient at the start. */
  lambda?: number;
  /** Overall growth of that weight from the first to the last iteration (geometric). */
  lambdaGrowth?: number;
}

export type NormalizedChannelPerturbation = Required<Omit<ChannelPerturbationOptions, keyof TokenOptions>> & NormalizedTokens;

export interface ChannelScore {
  channel: number;
  score: number;
}

export interface ChannelPerturbationDetails {
  /** Per map: its job and group, and the layer's channels by decreasing mask value. */
  channels: { image: number; target: number; group: number; ranked: ChannelScore[] }[];
  /** Iterations x groups: the mean target score of each group's images. */
  rewardHistory: { data: Float32Array; shape: number[] };
}

/** What the native side returns besides the maps. */
export interface ChannelPerturbationOutputs {
  channelScores: NativeTensor;
  channelRanking: NativeTensor;
  groups: NativeTensor;
  rewardHistory: NativeTensor;
}

const DEFAULTS = Object.freeze({
  layer: REQUIRED,
  area: 0.1,
  mode: 'image',
  perturbation: 'fade',
  maxIter: 300,
  learningRate: 0.05,
  lambda: 1,
  lambdaGrowth: 100,
  ...TOKEN_DEFAULTS,
} as const);

export const channelPerturbation: MethodSpec<
  'channel-perturbation',
  ChannelPerturbationOptions,
  NormalizedChannelPerturbation,
  ChannelPerturbationDetails,
  ChannelPerturbationOutputs
> = {
  name: 'channel-perturbation',
  summary: "extremal perturbation over a layer's channels: which channels a decision needs, ranked.",
  defaults: DEFAULTS,
  normalize(options) {
    const d = DEFAULTS;
    return Object.freeze({
      layer: layerOption(options, 'layer', true),
      area: v.optionalNumber('options.area', options.area, d.area, { above: 0, max: 1 }),
      mode: v.oneOf('options.mode', options.mode, ['image', 'class'] as const, d.mode),
      perturbation: v.oneOf('options.perturbation', options.perturbation, ['fade', 'mean'] as const, d.perturbation),
      maxIter: v.optionalNumber('options.maxIter', options.maxIter, d.maxIter, { integer: true, min: 1, max: 1e6 }),
      learningRate: v.optionalNumber('options.learningRate', options.learningRate, d.learningRate, { above: 0 }),
      lambda: v.optionalNumber('options.lambda', options.lambda, d.lambda, { min: 0 }),
      lambdaGrowth: v.optionalNumber('options.lambdaGrowth', options.lambdaGrowth, d.lambdaGrowth, { min: 1 }),
      ...tokenOptions(options),
    });
  },
  finish(raw, context) {
    const { channelScores: scores, channelRanking: ranking, groups, rewardHistory } = raw.outputs;
    const channels = scores.shape[1];
    const perJob = (j: number): ChannelScore[] =>
      Array.from(ranking.data.subarray(j * channels, (j + 1) * channels), (c) => ({ channel: c, score: scores.data[j * channels + c] }));
    const maps = mapsPerJob(raw, context, (j) => ({ group: groups.data[j] }));
    return {
      maps,
      details: {
        channels: context.jobs.map((job, j) => ({ image: job.image, target: job.target, group: groups.data[j], ranked: perJob(j) })),
        rewardHistory: { data: rewardHistory.data as Float32Array, shape: rewardHistory.shape },
      },
    };
  },
};
