/**
 * Pictures of maps: a heatmap in a perceptual colour map, a grey mask, an overlay of a map on its image,
 * and the region a mask preserves. All return PNG bytes; `writePicture` puts them in a file.
 */
import sharp from 'sharp';
import { writeFileAtomic } from './safe-write.js';
import { COLORMAPS, type ColormapName } from './colormaps.js';
import { type Image, toInterleaved } from './image.js';
import { type MapData, normalizeMap, resizeMap } from './map.js';
import * as v from './validate.js';

export interface HeatmapOptions {
  /** Colour map (default 'viridis'). */
  colormap?: ColormapName;
  /** Stretch the map to [0, 1] first (default true; masks already in [0, 1] may pass false). */
  normalize?: boolean;
}

export interface OverlayOptions extends HeatmapOptions {
  /** Weight of the heatmap over the image, in [0, 1] (default 0.5). */
  alpha?: number;
}

function prepared(map: MapData, normalize: boolean, height = map.height, width = map.width): Float32Array {
  const m = resizeMap(normalize ? normalizeMap(map) : map, height, width);
  return m.data;
}

/** Values in [0, 1] (clamped) -> interleaved RGB bytes through a colour map. */
export function colorize(values: Float32Array, colormap: ColormapName): Uint8Array {
  const lut = COLORMAPS[colormap];
  const out = new Uint8Array(values.length * 3);
  for (let i = 0; i < values.length; i++) {
    const k = Math.round(Math.min(1, Math.max(0, values[i] || 0)) * 255) * 3;
    out[i * 3] = lut[k];
    out[i * 3 + 1] = lut[k + 1];
    out[i * 3 + 2] = lut[k + 2];
  }
  return out;
}

function png(pixels: Uint8Array, height: number, width: number, channels: 1 | 3): Promise<Buffer> {
  const image = sharp(pixels, { raw: { width, height, channels } });
  // Without an explicit colour space sharp writes one-channel input as an RGB PNG.
  return (channels === 1 ? image.toColourspace('b-w') : image).png().toBuffer();
}

function colormapOf(options: HeatmapOptions): ColormapName {
  return v.oneOf('options.colormap', options.colormap, Object.keys(COLORMAPS) as ColormapName[], 'viridis');
}

/** The map in colour. */
export function heatmapPNG(map: MapData, options: HeatmapOptions = {}): Promise<Buffer> {
  const values = prepared(map, v.boolean('options.normalize', options.normalize, true));
  return png(colorize(values, colormapOf(options)), map.height, map.width, 3);
}

/** The map as grey levels (values clamped to [0, 1] unless normalize is true). */
export function maskPNG(map: MapData, options: { normalize?: boolean } = {}): Promise<Buffer> {
  const values = prepared(map, v.boolean('options.normalize', options.normalize, false));
  const grey = new Uint8Array(values.length);
  for (let i = 0; i < values.length; i++) grey[i] = Math.round(Math.min(1, Math.max(0, values[i] || 0)) * 255);
  return png(grey, map.height, map.width, 1);
}

/** An image as interleaved 8-bit RGB (grey repeated to three channels). */
export function rgbOf(image: Image): Uint8Array {
  const rgb = image.channels === 3 ? image : { ...image, channels: 3, data: repeatGrey(image) };
  return toInterleaved(rgb);
}

function repeatGrey(image: Image): Float32Array {
  const plane = image.height * image.width;
  const out = new Float32Array(plane * 3);
  for (let c = 0; c < 3; c++) out.set(image.data.subarray(0, plane), c * plane);
  return out;
}

/** The heatmap blended over the image, at the image's size. */
export function overlayPNG(map: MapData, image: Image, options: OverlayOptions = {}): Promise<Buffer> {
  const alpha = v.optionalNumber('options.alpha', options.alpha, 0.5, { min: 0, max: 1 });
  const values = prepared(map, v.boolean('options.normalize', options.normalize, true), image.height, image.width);
  const heat = colorize(values, colormapOf(options));
  const base = rgbOf(image);
  const out = new Uint8Array(base.length);
  for (let i = 0; i < out.length; i++) out[i] = Math.round((1 - alpha) * base[i] + alpha * heat[i]);
  return png(out, image.height, image.width, 3);
}

/** The image multiplied by the mask: what a 'preserve' mask keeps (the rest goes black). */
export function preservedPNG(map: MapData, image: Image): Promise<Buffer> {
  const values = prepared(map, false, image.height, image.width);
  const base = rgbOf(image);
  const out = new Uint8Array(base.length);
  for (let i = 0; i < values.length; i++) {
    const m = Math.min(1, Math.max(0, values[i]));
    for (let c = 0; c < 3; c++) out[i * 3 + c] = Math.round(base[i * 3 + c] * m);
  }
  return png(out, image.height, image.width, 3);
}

/** The image itself as PNG. */
export function imagePNG(image: Image): Promise<Buffer> {
  return png(rgbOf(image), image.height, image.width, 3);
}

/**
 * Writes PNG bytes to `path`: its folder made level by level, the file written under a temporary name and
 * renamed, so that an interrupted write never leaves a partial picture.
 */
export async function writePicture(path: string, bytes: Buffer | Promise<Buffer>): Promise<string> {
  return writeFileAtomic(path, await bytes);
}
