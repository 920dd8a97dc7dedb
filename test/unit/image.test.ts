// readImage on images made on the fly with sharp: formats, EXIF orientation, resizing, layout, errors.
import { afterAll, describe, expect, it } from 'vitest';
import sharp from 'sharp';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { TorchSaliencyError, fromInterleaved, readImage, toInterleaved } from '../../lib/index.js';

process.env.TORCH_SALIENCY_ADDON = '/nonexistent/torch_saliency.node'; // no addon needed here

const dir = mkdtempSync(join(tmpdir(), 'ts-image-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** An RGB image from a per-pixel colour function, as raw bytes for sharp. */
function raw(width: number, height: number, color: (y: number, x: number) => [number, number, number]) {
  const bytes = Buffer.alloc(width * height * 3);
  for (let y = 0; y < height; y++) for (let x = 0; x < width; x++) bytes.set(color(y, x), (y * width + x) * 3);
  return sharp(bytes, { raw: { width, height, channels: 3 } });
}

/** [r, g, b] of pixel (y, x) of a planar image. */
function pixel(im: { data: Float32Array; height: number; width: number }, y: number, x: number): number[] {
  const plane = im.height * im.width;
  return [0, 1, 2].map((c) => im.data[c * plane + y * im.width + x]);
}

const RED: [number, number, number] = [255, 0, 0];
const GREEN: [number, number, number] = [0, 255, 0];
const BLUE: [number, number, number] = [0, 0, 255];

async function rejection(p: Promise<unknown>): Promise<TorchSaliencyError> {
  const e = await p.then(
    () => new Error('expected a rejection'),
    (err: unknown) => err,
  );
  expect(e).toBeInstanceOf(TorchSaliencyError);
  return e as TorchSaliencyError;
}

describe('readImage', () => {
  it('decodes a PNG into planar RGB floats in [0, 1] with the exact pixel values', async () => {
    const colors: [number, number, number][][] = [
      [
        [255, 0, 0],
        [0, 128, 0],
      ],
      [
        [0, 0, 64],
        [10, 20, 30],
      ],
    ];
    const png = await raw(2, 2, (y, x) => colors[y][x])
      .png()
      .toBuffer();
    const im = await readImage(png);
    expect([im.channels, im.height, im.width]).toEqual([3, 2, 2]);
    expect(im.data).toBeInstanceOf(Float32Array);
    // R plane, then G plane, then B plane, each row-major
    const expected = [255, 0, 0, 10, 0, 128, 0, 20, 0, 0, 64, 30].map((b) => Math.fround(b / 255));
    expect(Array.from(im.data)).toEqual(expected);
  });

  it('reads a file path, and drops the alpha channel of RGBA images', async () => {
    const rgba = Buffer.from([255, 0, 0, 0, 0, 255, 0, 128]);
    const path = join(dir, 'rgba.png');
    writeFileSync(
      path,
      await sharp(rgba, { raw: { width: 2, height: 1, channels: 4 } })
        .png()
        .toBuffer(),
    );
    const im = await readImage(path);
    expect([im.channels, im.height, im.width]).toEqual([3, 1, 2]);
    expect(pixel(im, 0, 0)).toEqual([1, 0, 0]);
    expect(pixel(im, 0, 1)).toEqual([0, 1, 0]);
  });

  it('decodes lossless WebP exactly and JPEG within compression error', async () => {
    const stripes = (y: number, x: number) => (x < 8 ? RED : BLUE);
    const webp = await readImage(await raw(16, 8, stripes).webp({ lossless: true }).toBuffer());
    expect(pixel(webp, 3, 2)).toEqual([1, 0, 0]);
    expect(pixel(webp, 3, 13)).toEqual([0, 0, 1]);
    const jpeg = await readImage(await raw(16, 8, stripes).jpeg({ quality: 100, chromaSubsampling: '4:4:4' }).toBuffer());
    expect([jpeg.height, jpeg.width]).toEqual([8, 16]);
    pixel(jpeg, 4, 2).forEach((v, c) => expect(v).toBeCloseTo([1, 0, 0][c], 1));
    pixel(jpeg, 4, 13).forEach((v, c) => expect(v).toBeCloseTo([0, 0, 1][c], 1));
  });

  it('applies the EXIF orientation (6: rotate 90 degrees clockwise)', async () => {
    // Stored 32 wide x 16 tall, left half red, right half blue. Turned clockwise, the left edge becomes the top.
    const jpeg = await raw(32, 16, (y, x) => (x < 16 ? RED : BLUE))
      .jpeg({ quality: 100, chromaSubsampling: '4:4:4' })
      .withMetadata({ orientation: 6 })
      .toBuffer();
    expect((await sharp(jpeg).metadata()).orientation).toBe(6);
    const im = await readImage(jpeg);
    expect([im.height, im.width]).toEqual([32, 16]);
    const top = pixel(im, 4, 8);
    const bottom = pixel(im, 27, 8);
    expect(top[0]).toBeGreaterThan(0.9);
    expect(top[2]).toBeLessThan(0.1);
    expect(bottom[2]).toBeGreaterThan(0.9);
    expect(bottom[0]).toBeLessThan(0.1);
  });

  describe('resizing a 24 x 8 image of three vertical stripes (red, green, blue) to 8 x 8', () => {
    const stripes = () =>
      raw(24, 8, (y, x) => (x < 8 ? RED : x < 16 ? GREEN : BLUE))
        .png()
        .toBuffer();

    it("'cover' (default) scales to fill and crops the centre: only the green stripe remains", async () => {
      const png = await stripes();
      for (const im of [await readImage(png, { size: 8 }), await readImage(png, { size: [8, 8], fit: 'cover' })]) {
        expect([im.height, im.width]).toEqual([8, 8]);
        for (let y = 0; y < 8; y++) for (let x = 0; x < 8; x++) expect(pixel(im, y, x)).toEqual([0, 1, 0]);
      }
    });

    it("'fill' squashes: red on the left, green in the middle, blue on the right", async () => {
      const im = await readImage(await stripes(), { size: [8, 8], fit: 'fill' });
      expect([im.height, im.width]).toEqual([8, 8]);
      const dominant = (p: number[]) => p.indexOf(Math.max(...p));
      for (let y = 0; y < 8; y++) {
        expect(dominant(pixel(im, y, 0))).toBe(0);
        expect(dominant(pixel(im, y, 4))).toBe(1);
        expect(dominant(pixel(im, y, 7))).toBe(2);
      }
    });

    it("'contain' fits the whole image and pads with black above and below", async () => {
      const im = await readImage(await stripes(), { size: [8, 8], fit: 'contain' });
      expect([im.height, im.width]).toEqual([8, 8]);
      for (const y of [0, 1, 6, 7]) for (let x = 0; x < 8; x++) expect(pixel(im, y, x)).toEqual([0, 0, 0]);
      const middle = [pixel(im, 4, 0), pixel(im, 4, 4), pixel(im, 4, 7)];
      expect(middle.map((p) => p.indexOf(Math.max(...p)))).toEqual([0, 1, 2]);
    });

    it('a [height, width] size gives that shape', async () => {
      const im = await readImage(await stripes(), { size: [4, 6], fit: 'fill' });
      expect([im.channels, im.height, im.width, im.data.length]).toEqual([3, 4, 6, 3 * 4 * 6]);
    });
  });

  it('channels: 1 gives one grey plane', async () => {
    const grey = await sharp(Buffer.from([0, 51, 255, 102]), { raw: { width: 2, height: 2, channels: 1 } })
      .png()
      .toBuffer();
    const im = await readImage(grey, { channels: 1 });
    expect(im.channels).toBe(1);
    expect(Array.from(im.data)).toEqual([0, 51, 255, 102].map((b) => Math.fround(b / 255)));
    const rgb = await readImage(grey); // grey input read as RGB: three equal planes
    expect(Array.from(rgb.data)).toEqual([...im.data, ...im.data, ...im.data]);
  });

  it('a Buffer that is not an image, or a missing file, is ERR_IMAGE_DECODE on argument image', async () => {
    const e = await rejection(readImage(Buffer.from('this is not an image at all')));
    expect([e.code, e.argument]).toEqual(['ERR_IMAGE_DECODE', 'image']);
    expect(e.message).toMatch(/^Cannot decode image from a Buffer of 27 bytes: .*\(expected JPEG, PNG or WebP\)$/);
    const truncated = (
      await raw(16, 16, () => RED)
        .png()
        .toBuffer()
    ).subarray(0, 40);
    expect((await rejection(readImage(truncated))).code).toBe('ERR_IMAGE_DECODE');
    const missing = await rejection(readImage(join(dir, 'missing.png')));
    expect([missing.code, missing.argument]).toEqual(['ERR_IMAGE_DECODE', 'image']);
    expect(missing.message).toContain('missing.png');
    const uint8 = await readImage(
      new Uint8Array(
        await raw(1, 1, () => GREEN)
          .png()
          .toBuffer(),
      ),
    );
    expect(pixel(uint8, 0, 0)).toEqual([0, 1, 0]);
  });

  it('bad options and sources are typed errors naming the argument', async () => {
    const png = await raw(2, 2, () => RED)
      .png()
      .toBuffer();
    const cases: [unknown, unknown, string, string][] = [
      [42, {}, 'ERR_INVALID_ARG_TYPE', 'image'],
      [png, { fit: 'stretch' }, 'ERR_INVALID_ARG_VALUE', 'options.fit'],
      [png, { size: 0 }, 'ERR_OUT_OF_RANGE', 'options.size'],
      [png, { size: [2] }, 'ERR_INVALID_ARG_TYPE', 'options.size'],
      [png, { channels: 2 }, 'ERR_INVALID_ARG_VALUE', 'options.channels'],
      [png, { sise: 3 }, 'ERR_INVALID_ARG_VALUE', 'options.sise'],
      [png, 'big', 'ERR_INVALID_ARG_TYPE', 'options'],
    ];
    for (const [source, options, code, argument] of cases) {
      const e = await rejection(readImage(source as Buffer, options as object));
      expect([e.code, e.argument]).toEqual([code, argument]);
    }
  });

  it('fromInterleaved and toInterleaved are inverse on 8-bit values', () => {
    const bytes = Uint8Array.from({ length: 2 * 3 * 3 }, (_, i) => (i * 37) % 256);
    const im = fromInterleaved(bytes, 2, 3, 3, 3);
    expect(im.data[0]).toBeCloseTo(bytes[0] / 255, 7);
    expect(im.data[6]).toBeCloseTo(bytes[1] / 255, 7); // G plane starts after H*W = 6 values
    expect(Array.from(toInterleaved(im))).toEqual(Array.from(bytes));
  });
});

describe('formats', () => {
  it('only JPEG, PNG and WebP reach the decoder: SVG (with a file reference), GIF, TIFF and PDF are ERR_IMAGE_DECODE naming the format', async () => {
    const svg = Buffer.from('<svg xmlns="http://www.w3.org/2000/svg" width="4" height="4"><image href="file:///etc/passwd" width="4" height="4"/></svg>');
    const gif = await raw(2, 2, () => RED)
      .gif()
      .toBuffer();
    const tiff = await raw(2, 2, () => RED)
      .tiff()
      .toBuffer();
    const cases: [Buffer, string][] = [
      [svg, 'svg'],
      [Buffer.concat([Buffer.from('<?xml version="1.0"?>\n'), svg]), 'svg'],
      [gif, 'gif'],
      [tiff, 'tiff'],
      [Buffer.from('%PDF-1.4\n'), 'pdf'],
    ];
    for (const [bytes, format] of cases) {
      const e = await rejection(readImage(bytes));
      expect([e.code, e.argument]).toEqual(['ERR_IMAGE_DECODE', 'image']);
      expect(e.message).toContain(`its first bytes say ${format}`);
    }
    for (const make of [
      (s: ReturnType<typeof raw>) => s.png(),
      (s: ReturnType<typeof raw>) => s.jpeg(),
      (s: ReturnType<typeof raw>) => s.webp({ lossless: true }),
    ]) {
      const im = await readImage(await make(raw(2, 2, () => RED)).toBuffer());
      expect([im.height, im.width]).toEqual([2, 2]);
    }
  });

  it('a path to a pipe, a device or a folder is ERR_IMAGE_DECODE at once (a pipe waited forever, /dev/zero grew to GBs)', async () => {
    const fifo = join(dir, 'pipe.png');
    expect(spawnSync('mkfifo', [fifo]).status).toBe(0);
    for (const path of [fifo, '/dev/zero', tmpdir()]) {
      await expect(readImage(path)).rejects.toMatchObject({
        code: 'ERR_IMAGE_DECODE',
        argument: 'image',
        message: expect.stringMatching(/not a regular file/),
      });
    }
  });
});
