/**
 * What every method returns: an Explanation holding one SaliencyMap per (image, target[, area]), the
 * targets, the method's normalised options, method-specific details and timings.
 */
import type { Image } from './image.js';
import type { MapData } from './map.js';
import { heatmapPNG, maskPNG, overlayPNG, preservedPNG, writePicture, type OverlayOptions } from './pictures.js';
import { TorchSaliencyError, isTypedArray } from './errors.js';

export interface MapMeta {
  image: number;
  target: number;
  label?: string;
  /** Extremal perturbation: the area this mask was asked for. */
  area?: number;
  [key: string]: unknown;
}

export class SaliencyMap implements MapData {
  readonly data: Float32Array;
  readonly height: number;
  readonly width: number;
  readonly image: number;
  readonly target: number;
  readonly label?: string;
  readonly area?: number;
  readonly meta: Readonly<MapMeta>;

  constructor(data: Float32Array, height: number, width: number, meta: MapMeta) {
    this.data = data;
    this.height = height;
    this.width = width;
    this.image = meta.image;
    this.target = meta.target;
    if (meta.label !== undefined) this.label = meta.label;
    if (meta.area !== undefined) this.area = meta.area;
    this.meta = Object.freeze({ ...meta });
  }

  /** Minimum, maximum and mean of the map. */
  stats(): { min: number; max: number; mean: number } {
    let min = Infinity;
    let max = -Infinity;
    let sum = 0;
    for (const v of this.data) {
      if (v < min) min = v;
      if (v > max) max = v;
      sum += v;
    }
    return { min, max, mean: sum / this.data.length };
  }

  heatmapPNG(options?: OverlayOptions): Promise<Buffer> {
    return heatmapPNG(this, options);
  }
  maskPNG(): Promise<Buffer> {
    return maskPNG(this);
  }
  overlayPNG(image: Image, options?: OverlayOptions): Promise<Buffer> {
    return overlayPNG(this, image, options);
  }
  preservedPNG(image: Image): Promise<Buffer> {
    return preservedPNG(this, image);
  }

  /** The picture of one kind; 'overlay' and 'preserved' need the image. */
  png(kind: PictureKind, image?: Image, options?: OverlayOptions): Promise<Buffer> {
    if ((kind === 'overlay' || kind === 'preserved') && !image) {
      throw new TorchSaliencyError('ERR_INVALID_ARG_TYPE', `Expected an Image for the '${kind}' picture but received undefined`, { argument: 'image' });
    }
    if (kind === 'mask') return this.maskPNG();
    if (kind === 'overlay') return this.overlayPNG(image!, options);
    if (kind === 'preserved') return this.preservedPNG(image!);
    return this.heatmapPNG(options);
  }

  toJSON(): Record<string, unknown> {
    return { ...this.meta, height: this.height, width: this.width, ...this.stats() };
  }
}

export interface TargetInfo {
  image: number;
  target: number;
  label?: string;
}

export type PictureKind = 'heatmap' | 'mask' | 'overlay' | 'preserved';

export interface ToPNGOptions extends OverlayOptions {
  /** Which map: its index in `maps` (default 0), or the first matching image/target/area. */
  index?: number;
  image?: number;
  target?: number;
  area?: number;
  kind?: PictureKind;
  /** The image, for 'overlay' and 'preserved' pictures. */
  overlay?: Image;
}

/**
 * The result of every method. `Details` is the method's details type and `Options` its normalised options
 * (model.explain() types both from `options.method`).
 */
export class Explanation<Details extends object = Readonly<Record<string, unknown>>, Options extends object = Readonly<Record<string, unknown>>> {
  readonly method: string;
  readonly options: Readonly<Options>;
  readonly maps: readonly SaliencyMap[];
  readonly targets: readonly TargetInfo[];
  readonly details: Readonly<Details>;
  readonly timings: Readonly<{ totalMs: number }>;

  constructor(init: {
    method: string;
    options: Readonly<Options>;
    maps: SaliencyMap[];
    targets: TargetInfo[];
    details: Details;
    timings: { totalMs: number };
  }) {
    this.method = init.method;
    this.options = init.options;
    this.maps = Object.freeze(init.maps);
    this.targets = Object.freeze(init.targets);
    this.details = Object.freeze(init.details);
    this.timings = Object.freeze(init.timings);
  }

  /** The first map matching every given key. */
  find(query: { image?: number; target?: number; area?: number }): SaliencyMap | undefined {
    return this.maps.find(
      (m) =>
        (query.image === undefined || m.image === query.image) &&
        (query.target === undefined || m.target === query.target) &&
        (query.area === undefined || (m.area !== undefined && Math.abs(m.area - query.area) < 1e-9)),
    );
  }

  /** Writes a picture of one map. */
  async toPNG(path: string, options: ToPNGOptions = {}): Promise<string> {
    const map =
      options.index !== undefined
        ? this.maps[options.index]
        : options.image !== undefined || options.target !== undefined || options.area !== undefined
          ? this.find(options)
          : this.maps[0];
    if (!map)
      throw new TorchSaliencyError(
        'ERR_OUT_OF_RANGE',
        `No map matches ${JSON.stringify({ index: options.index, image: options.image, target: options.target, area: options.area })}`,
        { argument: 'options' },
      );
    const kind = options.kind ?? (options.overlay ? 'overlay' : 'heatmap');
    if ((kind === 'overlay' || kind === 'preserved') && !options.overlay) {
      throw new TorchSaliencyError('ERR_INVALID_ARG_TYPE', `Expected an Image for options.overlay with kind '${kind}' but received undefined`, {
        argument: 'options.overlay',
      });
    }
    const bytes = map.png(kind, options.overlay, options);
    return writePicture(path, bytes);
  }

  /** A summary without the map data (maps give their statistics). */
  toJSON(): Record<string, unknown> {
    return {
      method: this.method,
      options: this.options,
      targets: this.targets,
      maps: this.maps.map((m) => m.toJSON()),
      details: jsonDetails(this.details),
      timings: this.timings,
    };
  }
}

/** A typed array becomes a plain array so that JSON.stringify keeps it; other values stay as they are. */
export function jsonValue(value: unknown): unknown {
  return isTypedArray(value) ? Array.from(value) : value;
}

function jsonDetails(details: object): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(details)) out[k] = jsonValue(v);
  return out;
}
