/** The scan's pictures: a class's picture with the suspected trigger's box drawn on it, magnified. */
import sharp from 'sharp';
import type { Image } from '../image.js';
import { rgbOf } from '../pictures.js';
import type { Box } from './scores.js';

export function withBox(image: Image, box: Box): Uint8Array {
  const { height, width } = image;
  const out = rgbOf(image);
  // The box's outline just outside the region where there is room, so the region itself stays visible.
  const y0 = Math.max(0, box.top - 1);
  const x0 = Math.max(0, box.left - 1);
  const y1 = Math.min(height - 1, box.top + box.height);
  const x1 = Math.min(width - 1, box.left + box.width);
  for (let y = y0; y <= y1; y++) {
    for (let x = x0; x <= x1; x++) {
      if (y === y0 || y === y1 || x === x0 || x === x1) out.set([255, 0, 0], (y * width + x) * 3);
    }
  }
  return out;
}

export function magnified(rgb: Uint8Array, height: number, width: number, scale: number): Promise<Buffer> {
  return sharp(rgb, { raw: { width, height, channels: 3 } })
    .resize({ width: width * scale, height: height * scale, kernel: 'nearest' })
    .png()
    .toBuffer();
}
