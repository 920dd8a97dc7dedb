/**
 * 'channel-perturbation': extremal perturbation over a layer's channels. Finds the smallest set of
 * channels (an `area` fraction of them) whose activation, kept while the others fade out, preserves the
 * target's score; per image (mode 'image') or shared by every image of a target (mode 'class').
 * details.channels lists, per map, the channels ranked by mask value. See docs/methods/channel-perturbation.md.
 */
import { invalidType } from '../errors.js';
import * as v from '../validate.js';
import { registerMethod } from './registry.js';
import { mapsPerJob } from './types.js';

export interface ChannelPerturbationOptions {
  /** Layer whose channels are masked (required; see model.layers()). */
  layer: string;
  /** Fraction of the channels kept (default 0.1). */
  area: number;
  /** 'image': one mask per (image, target); 'class': one mask per target shared by its images. */
  mode: 'image' | 'class';
  /** What dropped channels blend towards: 'fade' (zero, default) or 'mean' (their spatial mean). */
  perturbation: 'fade' | 'mean';
  maxIter: number;
  learningRate: number;
  /** Initial weight of the area constraint, relative to the reward's gradient at the start (default 1). */
  lambda: number;
  /** Overall growth of that weight from the first to the last iteration (default 100, geometric). */
  lambdaGrowth: number;
}

export interface ChannelScore {
  channel: number;
  score: number;
}

registerMethod<ChannelPerturbationOptions>({
  name: 'channel-perturbation',
  summary: "extremal perturbation over a layer's channels: which channels a decision needs, ranked.",
  optionNames: ['layer', 'area', 'mode', 'perturbation', 'maxIter', 'learningRate', 'lambda', 'lambdaGrowth'],
  normalize(options) {
    if (options.layer === undefined || options.layer === '')
      throw invalidType('options.layer', "a layer name (see model.layers(), e.g. 'features.4')", options.layer);
    const layer = v.string('options.layer', options.layer);
    const area = v.optionalNumber('options.area', options.area, 0.1, { above: 0, max: 1 });
    const mode = v.oneOf('options.mode', options.mode, ['image', 'class'] as const, 'image');
    const perturbation = v.oneOf('options.perturbation', options.perturbation, ['fade', 'mean'] as const, 'fade');
    const maxIter = v.optionalNumber('options.maxIter', options.maxIter, 300, { integer: true, min: 1, max: 1e6 });
    const learningRate = v.optionalNumber('options.learningRate', options.learningRate, 0.05, { above: 0 });
    const lambda = v.optionalNumber('options.lambda', options.lambda, 1, { min: 0 });
    const lambdaGrowth = v.optionalNumber('options.lambdaGrowth', options.lambdaGrowth, 100, { min: 1 });
    const opts = Object.freeze({ layer, area, mode, perturbation, maxIter, learningRate, lambda, lambdaGrowth });
    return { options: opts, baton: { ...opts } };
  },
  finish(raw, context) {
    const scores = raw.extras.channelScores;
    const ranking = raw.extras.channelRanking;
    const groups = raw.extras.groups;
    const channels = scores.shape[1];
    const perJob = (j: number): ChannelScore[] =>
      Array.from(ranking.data.subarray(j * channels, (j + 1) * channels), (c) => ({ channel: c, score: scores.data[j * channels + c] }));
    const maps = mapsPerJob(raw, context, (j) => ({ group: groups.data[j] }));
    const rewardHistory = raw.extras.rewardHistory;
    return {
      maps,
      details: {
        channels: context.jobs.map((job, j) => ({ image: job.image, target: job.target, group: groups.data[j], ranked: perJob(j) })),
        rewardHistory: { data: rewardHistory.data, shape: rewardHistory.shape },
      },
    };
  },
});
