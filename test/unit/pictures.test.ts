// Pictures decode back (with sharp) to the right size and the pixel values worked out by hand.
import { describe, expect, it } from 'vitest';
import sharp from 'sharp';
import { TorchSaliencyError, heatmapPNG, imagePNG, maskPNG, overlayPNG, preservedPNG } from '../../lib/index.js';
import { COLORMAPS } from '../../lib/colormaps.js';

process.env.TORCH_SALIENCY_ADDON = '/nonexistent/torch_saliency.node'; // no addon needed here

async function decode(png: Buffer, grey = false) {
  expect(png.subarray(1, 4).toString()).toBe('PNG');
  const { data, info } = await (grey ? sharp(png).extractChannel(0) : sharp(png)).raw().toBuffer({ resolveWithObject: true });
  return { data, width: info.width, height: info.height, channels: info.channels };
}

// viridis ends, from matplotlib: #440154 (0) and #fde725 (1)
const VIRIDIS_0 = [0x44, 0x01, 0x54];
const VIRIDIS_1 = [0xfd, 0xe7, 0x25];

const map = (values: number[], height: number, width: number) => ({ data: Float32Array.from(values), height, width });
/** A planar RGB image of one colour. */
function solid(height: number, width: number, rgb: number[]) {
  const plane = height * width;
  const data = new Float32Array(3 * plane);
  rgb.forEach((v, c) => data.fill(v, c * plane, (c + 1) * plane));
  return { data, channels: 3, height, width };
}

describe('pictures', () => {
  it('heatmapPNG: the map stretched to [0, 1] through viridis, at the map size', async () => {
    const out = await decode(await heatmapPNG(map([2, 3, 4, 4, 2, 2], 2, 3)));
    expect([out.width, out.height, out.channels]).toEqual([3, 2, 3]);
    const px = (i: number) => Array.from(out.data.subarray(i * 3, i * 3 + 3));
    expect(px(0)).toEqual(VIRIDIS_0);
    expect(px(2)).toEqual(VIRIDIS_1);
    expect(px(1)).toEqual(Array.from(COLORMAPS.viridis.subarray(128 * 3, 128 * 3 + 3))); // 0.5 -> round(127.5) = 128
    const gray = await decode(await heatmapPNG(map([0, 0.5, 1], 1, 3), { colormap: 'gray', normalize: false }));
    expect(Array.from(gray.data)).toEqual([0, 0, 0, 128, 128, 128, 255, 255, 255]);
  });

  it('maskPNG: one grey channel, values clamped to [0, 1]', async () => {
    const png = await maskPNG(map([-1, 0.25, 0.5, 2], 2, 2));
    expect(png[25]).toBe(0); // IHDR colour type 0: greyscale
    const out = await decode(png, true);
    expect([out.width, out.height, out.channels]).toEqual([2, 2, 1]);
    expect(Array.from(out.data)).toEqual([0, 64, 128, 255]);
    const stretched = await decode(await maskPNG(map([10, 20], 1, 2), { normalize: true }), true);
    expect(Array.from(stretched.data)).toEqual([0, 255]);
  });

  it('overlayPNG: the heatmap resized to the image and blended with alpha', async () => {
    const image = solid(4, 6, [1, 0, 0]);
    const ones = map([1, 1, 1, 1], 2, 2);
    const half = await decode(await overlayPNG(ones, image, { normalize: false }));
    expect([half.width, half.height, half.channels]).toEqual([6, 4, 3]);
    // round(0.5 * 255 + 0.5 * 253) = 254, round(0.5 * 231) = 116, round(0.5 * 37) = 19
    for (let i = 0; i < 24; i++) expect(Array.from(half.data.subarray(i * 3, i * 3 + 3))).toEqual([254, 116, 19]);
    const none = await decode(await overlayPNG(ones, image, { alpha: 0 }));
    expect(Array.from(none.data.subarray(0, 3))).toEqual([255, 0, 0]);
    const full = await decode(await overlayPNG(map([0, 1], 1, 2), image, { alpha: 1 }));
    expect(Array.from(full.data.subarray(0, 3))).toEqual(VIRIDIS_0); // left column: the map's 0
    expect(Array.from(full.data.subarray(5 * 3, 6 * 3))).toEqual(VIRIDIS_1); // right column: its 1
  });

  it('preservedPNG keeps the image where the mask is 1 and blacks it out where it is 0', async () => {
    const image = solid(2, 2, [0.2, 0.4, 1]);
    const out = await decode(await preservedPNG(map([1, 0, 0.5, 1], 2, 2), image));
    expect(Array.from(out.data)).toEqual([51, 102, 255, 0, 0, 0, 26, 51, 128, 51, 102, 255]);
  });

  it('imagePNG writes the image itself; grey images become RGB', async () => {
    const out = await decode(await imagePNG({ data: Float32Array.from([0, 1]), channels: 1, height: 1, width: 2 }));
    expect(Array.from(out.data)).toEqual([0, 0, 0, 255, 255, 255]);
  });

  it('bad options are typed errors', () => {
    expect(() => heatmapPNG(map([0, 1], 1, 2), { colormap: 'jet' as never })).toThrow(
      expect.objectContaining({ code: 'ERR_INVALID_ARG_VALUE', argument: 'options.colormap' }),
    );
    expect(() => overlayPNG(map([0, 1], 1, 2), solid(1, 2, [0, 0, 0]), { alpha: 2 })).toThrow(TorchSaliencyError);
    expect(() => overlayPNG(map([0, 1], 1, 2), solid(1, 2, [0, 0, 0]), { alpha: 2 })).toThrow(
      /Expected a number >= 0 and <= 1 for options.alpha but received 2/,
    );
  });
});
