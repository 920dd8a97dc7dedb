/**
 * Options of the methods that read a transformer's token layer: how its output becomes N x C x h x w
 * (docs/layers.md, "Token layers"). The native side does the reshaping (native/core/tokens.h).
 */
import * as v from '../validate.js';

/** 'auto': 4 dimensions are N x C x H x W, 3 are N x T x C tokens; 'nhwc' must be asked for. */
export type TokenLayoutName = 'auto' | 'nchw' | 'ntc' | 'nhwc';

export interface TokenOptions {
  /** The layer's output layout. */
  layout?: TokenLayoutName;
  /** Tokens before the grid (class, distillation, register tokens); null: inferred. */
  prefixTokens?: number | null;
  /** The token grid [h, w] (or its side); null: inferred from the token count and the image's aspect. */
  grid?: number | readonly [number, number] | null;
}

export interface NormalizedTokens {
  layout: TokenLayoutName;
  prefixTokens: number | null;
  grid: [number, number] | null;
}

export const TOKEN_DEFAULTS = Object.freeze({ layout: 'auto', prefixTokens: null, grid: null } as const);

export function prefixTokensOption(options: Readonly<Record<string, unknown>>): number | null {
  const value = options.prefixTokens;
  return value === undefined || value === null ? null : v.number('options.prefixTokens', value, { integer: true, min: 0, max: 65536 });
}

export function gridOption(options: Readonly<Record<string, unknown>>): [number, number] | null {
  const value = options.grid;
  return value === undefined || value === null ? null : v.size('options.grid', value);
}

export function tokenOptions(options: Readonly<Record<string, unknown>>): NormalizedTokens {
  return {
    layout: v.oneOf('options.layout', options.layout, ['auto', 'nchw', 'ntc', 'nhwc'] as const, TOKEN_DEFAULTS.layout),
    prefixTokens: prefixTokensOption(options),
    grid: gridOption(options),
  };
}
