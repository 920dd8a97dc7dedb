/**
 * The backpropagation family (gradient, deconvnet, guided backprop, Grad-CAM, linear approximation,
 * excitation backprop and its contrastive variant) shares one option set: an optional or required
 * `layer` to read the pseudo-gradient at, and for the contrastive variant a `contrastLayer`.
 * One spec per method name, each registered from its own file.
 */
import { invalidType } from '../errors.js';
import * as v from '../validate.js';
import type { Baton } from '../native.js';
import type { MethodSpec } from './types.js';

export interface BackpropOptions {
  /** Named submodule (see model.layers()) whose output the map is read at; null: the input. */
  layer: string | null;
}

export interface ContrastiveOptions extends BackpropOptions {
  contrastLayer: string;
}

function layerOption(options: Record<string, unknown>, name: string, required: boolean): string | null {
  const value = options[name];
  if (value === undefined || value === null || value === '') {
    if (required) throw invalidType(`options.${name}`, "a layer name (see model.layers(), e.g. 'features.4')", value);
    return null;
  }
  return v.string(`options.${name}`, value);
}

export function backpropSpec(name: string, summary: string, layerRequired: boolean): MethodSpec<BackpropOptions> {
  return {
    name,
    summary,
    optionNames: ['layer'],
    normalize(options) {
      const layer = layerOption(options, 'layer', layerRequired);
      return { options: Object.freeze({ layer }), baton: (layer ? { layer } : {}) as Baton };
    },
  };
}

export function contrastiveSpec(name: string, summary: string): MethodSpec<ContrastiveOptions> {
  return {
    name,
    summary,
    optionNames: ['layer', 'contrastLayer'],
    normalize(options) {
      const layer = layerOption(options, 'layer', false);
      const contrastLayer = layerOption(options, 'contrastLayer', true) as string;
      return { options: Object.freeze({ layer, contrastLayer }), baton: { ...(layer ? { layer } : {}), contrastLayer } as Baton };
    },
  };
}
