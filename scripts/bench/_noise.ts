import type { Image } from '../../lib/index.js';

/** A seeded uniform-noise RGB image (a linear congruential generator): the same pixels for the same seed. */
export function noiseImage(seed: number, size: number): Image {
  const data = new Float32Array(3 * size * size);
  let s = seed * 2654435761;
  for (let i = 0; i < data.length; i++) {
    s = (s * 1103515245 + 12345) >>> 0;
    data[i] = (s >>> 8) / 2 ** 24;
  }
  return { data, channels: 3, height: size, width: size };
}
