/**
 * Image I/O: decoding (JPEG, PNG, WebP only, told by their first bytes; EXIF orientation applied), resizing, and the conversion to the
 * planar float layout the models take (C x H x W, RGB, values in [0, 1]).
 */
import sharp from 'sharp';
import { readFile, stat } from 'node:fs/promises';
import { TorchSaliencyError, invalidType, invalidValue } from './errors.js';
import * as v from './validate.js';

/** A decoded image: C x H x W floats in [0, 1], channel-major (planar) RGB. */
export interface Image {
  data: Float32Array;
  channels: number;
  height: number;
  width: number;
}

export type Fit = 'cover' | 'contain' | 'fill';

export interface ReadImageOptions {
  /** Output size: a side for square images, or [height, width]. Default: the image's own size. */
  size?: number | [number, number];
  /** How to reach `size` (default 'cover': scale to fill, centre crop). */
  fit?: Fit;
  /** Colour channels: 3 (RGB, default) or 1 (grey). */
  channels?: 1 | 3;
  /**
   * Most pixels (width x height) an encoded image may declare; checked from its header before anything is
   * decoded (sharp's `limitInputPixels`). Default 50,000,000 (a 48-megapixel photo fits): without `size`
   * the planar floats alone take 12 bytes a pixel (600 MB at the limit); raise it for larger images.
   */
  limitInputPixels?: number;
}

/** readImage's default limitInputPixels (sharp's own, 16383 x 16383, let a 16000 x 16000 PNG of 746 KB take 3.7 GB). */
export const DEFAULT_LIMIT_INPUT_PIXELS = 50_000_000;

/** Decodes an image file or Buffer into planar floats. */
export async function readImage(source: string | Buffer | Uint8Array, options: ReadImageOptions = {}): Promise<Image> {
  const opts = v.plainObject('options', options);
  v.knownKeys('options', opts, ['size', 'fit', 'channels', 'limitInputPixels']);
  const limitInputPixels = v.optionalNumber('options.limitInputPixels', opts.limitInputPixels, DEFAULT_LIMIT_INPUT_PIXELS, { integer: true, min: 1 });
  const size = opts.size === undefined ? undefined : v.size('options.size', opts.size);
  const fit = v.oneOf<Fit>('options.fit', opts.fit, ['cover', 'contain', 'fill'], 'cover');
  const channels = opts.channels === undefined ? 3 : opts.channels;
  if (channels !== 1 && channels !== 3) throw invalidValue('options.channels', '1 or 3', channels);

  let input: Buffer;
  let what: string;
  if (typeof source === 'string') {
    what = `'${source}'`;
    try {
      // A device or a pipe (/dev/zero: 4.6 GB in 15 s and growing; a FIFO: waits forever) is no image file.
      if (!(await stat(source)).isFile()) throw new Error('not a regular file');
      input = await readFile(source);
    } catch (e) {
      throw new TorchSaliencyError('ERR_IMAGE_DECODE', `Cannot read image ${what}: ${(e as Error).message}`, { argument: 'image', cause: e });
    }
  } else if (source instanceof Uint8Array) {
    what = `from a Buffer of ${source.length} bytes`;
    input = Buffer.isBuffer(source) ? source : Buffer.from(source.buffer, source.byteOffset, source.byteLength);
  } else {
    throw invalidType('image', 'a file path, a Buffer or a Uint8Array', source);
  }

  const format = sniffFormat(input);
  if (format !== 'jpeg' && format !== 'png' && format !== 'webp') {
    // sharp (libvips) would also decode SVG, TIFF, GIF, HEIF, PDF...: a wider surface than the one documented,
    // and SVG may name external resources. Only the three formats the docs list reach the decoder.
    throw new TorchSaliencyError('ERR_IMAGE_DECODE', `Cannot decode image ${what}: its first bytes say ${format} (expected JPEG, PNG or WebP)`, {
      argument: 'image',
    });
  }

  let pipeline: ReturnType<typeof sharp>;
  try {
    pipeline = sharp(input, { failOn: 'error', limitInputPixels }).rotate();
    if (size) pipeline = pipeline.resize({ height: size[0], width: size[1], fit, position: 'centre', background: { r: 0, g: 0, b: 0 } });
    pipeline = channels === 1 ? pipeline.toColourspace('b-w').removeAlpha() : pipeline.toColourspace('srgb').removeAlpha();
    const { data, info } = await pipeline.raw().toBuffer({ resolveWithObject: true });
    return fromInterleaved(data, info.height, info.width, info.channels, channels);
  } catch (e) {
    if (e instanceof TorchSaliencyError) throw e;
    if (/pixel limit/i.test((e as Error).message)) throw await tooLarge(input, limitInputPixels, what, e);
    throw new TorchSaliencyError('ERR_IMAGE_DECODE', `Cannot decode image ${what}: ${(e as Error).message} (expected JPEG, PNG or WebP)`, {
      argument: 'image',
      cause: e,
    });
  }
}

/** The format an encoded image's first bytes announce ('jpeg', 'png', 'webp', a few others by name, or 'unknown data'). */
export function sniffFormat(b: Uint8Array): string {
  const ascii = (start: number, end: number) => String.fromCharCode(...b.subarray(start, end));
  if (b.length >= 3 && b[0] === 0xff && b[1] === 0xd8 && b[2] === 0xff) return 'jpeg';
  if (b.length >= 8 && b[0] === 0x89 && ascii(1, 4) === 'PNG' && b[4] === 0x0d && b[5] === 0x0a && b[6] === 0x1a && b[7] === 0x0a) return 'png';
  if (b.length >= 12 && ascii(0, 4) === 'RIFF' && ascii(8, 12) === 'WEBP') return 'webp';
  if (b.length >= 6 && /^GIF8[79]a$/.test(ascii(0, 6))) return 'gif';
  if (b.length >= 4 && (ascii(0, 4) === 'II*\0' || ascii(0, 4) === 'MM\0*')) return 'tiff';
  if (b.length >= 12 && ascii(4, 8) === 'ftyp') return 'heif/avif';
  if (b.length >= 4 && ascii(0, 4) === '%PDF') return 'pdf';
  const head = ascii(0, Math.min(b.length, 256)).trimStart().toLowerCase();
  if (head.startsWith('<?xml') || head.startsWith('<svg')) return 'svg';
  return b.length === 0 ? 'no data (0 bytes)' : 'unknown data';
}

/** The error for an image whose header declares more pixels than allowed (its size read from the header alone). */
async function tooLarge(input: Buffer, limit: number, what: string, cause: unknown): Promise<TorchSaliencyError> {
  const meta = await sharp(input, { limitInputPixels: false })
    .metadata()
    .catch(() => undefined);
  const declared = meta?.width && meta?.height ? `${meta.width} x ${meta.height} = ${meta.width * meta.height} pixels` : 'more';
  return new TorchSaliencyError(
    'ERR_IMAGE_TOO_LARGE',
    `Expected an image of at most ${limit} pixels (options.limitInputPixels) for image but received ${declared} (${what})`,
    {
      argument: 'image',
      cause,
    },
  );
}

/** Interleaved 8-bit (H x W x K) -> planar floats (C x H x W). Grey input is repeated to RGB if asked. */
export function fromInterleaved(bytes: Uint8Array, height: number, width: number, stride: number, channels: number): Image {
  const plane = height * width;
  const data = new Float32Array(channels * plane);
  for (let c = 0; c < channels; c++) {
    const src = Math.min(c, stride - 1);
    const off = c * plane;
    for (let i = 0; i < plane; i++) data[off + i] = bytes[i * stride + src] / 255;
  }
  return { data, channels, height, width };
}

/** Planar floats in [0, 1] -> interleaved 8-bit RGB(A). */
export function toInterleaved(image: Image): Uint8Array {
  const { data, channels, height, width } = image;
  const plane = height * width;
  const out = new Uint8Array(plane * channels);
  for (let c = 0; c < channels; c++) {
    for (let i = 0; i < plane; i++) out[i * channels + c] = Math.round(Math.min(1, Math.max(0, data[c * plane + i])) * 255);
  }
  return out;
}

/** Checks a user-given Image (or { data, shape }) and returns it as an Image. */
export function checkImage(value: unknown, name = 'image'): Image {
  const o = value as Partial<Image> & { shape?: number[] };
  if (!o || typeof o !== 'object') throw invalidType(name, 'an Image ({ data: Float32Array, channels, height, width })', value);
  if (!(o.data instanceof Float32Array)) throw invalidType(`${name}.data`, 'a Float32Array', o.data);
  let channels: number, height: number, width: number;
  if (Array.isArray(o.shape)) {
    if (o.shape.length !== 3) {
      throw new TorchSaliencyError(
        'ERR_INPUT_SHAPE',
        `Expected a shape of rank 3 [channels, height, width] for ${name}.shape but received rank ${o.shape.length}`,
        {
          argument: `${name}.shape`,
        },
      );
    }
    [channels, height, width] = o.shape.map((s, i) => v.number(`${name}.shape[${i}]`, s, { integer: true, min: 1 }));
  } else {
    channels = v.number(`${name}.channels`, o.channels, { integer: true, min: 1 });
    height = v.number(`${name}.height`, o.height, { integer: true, min: 1 });
    width = v.number(`${name}.width`, o.width, { integer: true, min: 1 });
  }
  if (o.data.length !== channels * height * width) {
    throw new TorchSaliencyError(
      'ERR_INPUT_SHAPE',
      `Expected ${channels * height * width} values (${channels} x ${height} x ${width}) for ${name}.data but received ${o.data.length}`,
      { argument: `${name}.data` },
    );
  }
  return { data: o.data, channels, height, width };
}

/** Stacks images of one size into one N x C x H x W buffer. */
export function stack(images: Image[], name = 'images'): { data: Float32Array; shape: [number, number, number, number] } {
  const first = images[0];
  const per = first.channels * first.height * first.width;
  const check = (im: Image, i: number) => {
    if (im.channels !== first.channels || im.height !== first.height || im.width !== first.width) {
      throw new TorchSaliencyError(
        'ERR_INPUT_SHAPE',
        `Expected every image in one call to be ${first.channels} x ${first.height} x ${first.width} for ${name}[${i}] but received ${im.channels} x ${im.height} x ${im.width} (resize them with readImage(..., { size }))`,
        { argument: `${name}[${i}]` },
      );
    }
  };
  images.forEach(check);
  const shape: [number, number, number, number] = [images.length, first.channels, first.height, first.width];
  // The caller's arrays are read now, not when the native call starts (explain may await a prediction first,
  // predict may wait in the batcher): a caller that changes them after the call must not change its result.
  // Images that already lie one after another in one buffer (a single image, or the views a { data, shape }
  // batch is split into) are copied in one slice (32 images of 224 px, 19 MB: 29-52 ms on a busy 2-core machine).
  const buffer = first.data.buffer;
  const start = first.data.byteOffset;
  if (images.every((im, i) => im.data.buffer === buffer && im.data.byteOffset === start + i * per * 4)) {
    return { data: new Float32Array(buffer, start, per * images.length).slice(), shape };
  }
  const data = new Float32Array(per * images.length);
  images.forEach((im, i) => data.set(im.data, i * per));
  return { data, shape };
}
