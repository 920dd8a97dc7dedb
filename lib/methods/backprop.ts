/**
 * The backpropagation family (gradient, deconvnet, guided backprop, Grad-CAM, linear approximation,
 * excitation backprop and its contrastive variant) shares one option set: a `layer` to read the
 * pseudo-gradient at (optional or required), and for the contrastive variant a `contrastLayer`. Each
 * method's file makes its spec with one of the functions below.
 */
import { invalidType } from '../errors.js';
import * as v from '../validate.js';
import { TOKEN_DEFAULTS, tokenOptions, type NormalizedTokens, type TokenOptions } from './tokens.js';
import { REQUIRED, type MethodSpec, type NoDetails } from './types.js';

/** `layout`, `prefixTokens` and `grid` say how a token layer's output becomes N x C x h x w (docs/layers.md). */
export interface BackpropOptions extends TokenOptions {
  /** Named submodule (see model.layers()) whose output the map is read at; null or absent: the input. */
  layer?: string | null;
}

export interface NormalizedBackprop extends NormalizedTokens {
  layer: string | null;
}

/** Options of the methods whose `layer` is required (Grad-CAM, linear approximation). */
export interface LayerOptions extends TokenOptions {
  layer: string;
}

export interface ContrastiveOptions extends BackpropOptions {
  /** Where the contrast is taken (required). */
  contrastLayer: string;
}

export interface NormalizedContrastive extends NormalizedBackprop {
  contrastLayer: string;
}

/** A layer-name option: null when not given (or an error when `required`). */
export function layerOption(options: Readonly<Record<string, unknown>>, name: string, required: true): string;
export function layerOption(options: Readonly<Record<string, unknown>>, name: string, required: false): string | null;
export function layerOption(options: Readonly<Record<string, unknown>>, name: string, required: boolean): string | null {
  const value = options[name];
  if (value === undefined || value === null || value === '') {
    if (required) throw invalidType(`options.${name}`, "a layer name (see model.layers(), e.g. 'features.4')", value);
    return null;
  }
  return v.string(`options.${name}`, value);
}

/** A method whose `layer` is optional (default: the input). */
export function backpropSpec<Name extends string>(name: Name, summary: string): MethodSpec<Name, BackpropOptions, NormalizedBackprop, NoDetails> {
  return {
    name,
    summary,
    defaults: Object.freeze({ layer: null, ...TOKEN_DEFAULTS }),
    normalize: (options) => Object.freeze({ layer: layerOption(options, 'layer', false), ...tokenOptions(options) }),
  };
}

/** A method whose `layer` is required. */
export function layerSpec<Name extends string>(name: Name, summary: string): MethodSpec<Name, LayerOptions, NormalizedBackprop, NoDetails> {
  return {
    name,
    summary,
    defaults: Object.freeze({ layer: REQUIRED, ...TOKEN_DEFAULTS }),
    normalize: (options) => Object.freeze({ layer: layerOption(options, 'layer', true), ...tokenOptions(options) }),
  };
}

export function contrastiveSpec<Name extends string>(name: Name, summary: string): MethodSpec<Name, ContrastiveOptions, NormalizedContrastive, NoDetails> {
  return {
    name,
    summary,
    defaults: Object.freeze({ layer: null, contrastLayer: REQUIRED, ...TOKEN_DEFAULTS }),
    normalize(options) {
      const layer = layerOption(options, 'layer', false);
      const contrastLayer = layerOption(options, 'contrastLayer', true);
      return Object.freeze({ layer, contrastLayer, ...tokenOptions(options) });
    },
  };
}
