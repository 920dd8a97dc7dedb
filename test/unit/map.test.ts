import { describe, expect, it } from 'vitest';
import { normalizeMap, resizeMap } from '../../lib/index.js';
import { argmax2d } from '../../lib/map.js';

/** A map with value f(y, x). */
function mapOf(height: number, width: number, f: (y: number, x: number) => number) {
  const data = new Float32Array(height * width);
  for (let y = 0; y < height; y++) for (let x = 0; x < width; x++) data[y * width + x] = f(y, x);
  return { data, height, width };
}

describe('map helpers', () => {
  it('resizeMap upsamples bilinearly with align_corners = false (as F.interpolate)', () => {
    // 2 x 2 map f = 2y + x. Output pixel centres map to source (i + 0.5) / 2 - 0.5 = -0.25, 0.25, 0.75, 1.25,
    // clamped to [0, 1]; bilinear interpolation of a linear function is exact.
    const out = resizeMap(
      mapOf(2, 2, (y, x) => 2 * y + x),
      4,
      4,
    );
    const s = [0, 0.25, 0.75, 1];
    expect([out.height, out.width]).toEqual([4, 4]);
    for (let y = 0; y < 4; y++) for (let x = 0; x < 4; x++) expect(out.data[y * 4 + x]).toBeCloseTo(2 * s[y] + s[x], 6);
  });

  it('resizeMap downsamples by sampling between source pixels', () => {
    // 4 x 4 map f = 4y + x to 2 x 2: source points (0.5, 0.5), (0.5, 2.5), (2.5, 0.5), (2.5, 2.5)
    const out = resizeMap(
      mapOf(4, 4, (y, x) => 4 * y + x),
      2,
      2,
    );
    expect(Array.from(out.data)).toEqual([2.5, 4.5, 10.5, 12.5]);
  });

  it('resizeMap to another aspect and back to the same size', () => {
    // 1 x 3 [0, 3, 6] to 2 x 2: x sources (i + 0.5) * 1.5 - 0.5 = 0.25, 1.75 -> 0.75, 5.25
    const out = resizeMap({ data: Float32Array.from([0, 3, 6]), height: 1, width: 3 }, 2, 2);
    expect(Array.from(out.data)).toEqual([0.75, 5.25, 0.75, 5.25]);
    const same = mapOf(3, 3, (y, x) => y * x);
    expect(resizeMap(same, 3, 3)).toBe(same);
  });

  it('normalizeMap stretches to [0, 1]; a constant map becomes zeros', () => {
    const n = normalizeMap({ data: Float32Array.from([2, 4, 3, 2]), height: 2, width: 2 });
    expect(Array.from(n.data)).toEqual([0, 1, 0.5, 0]);
    expect(Array.from(normalizeMap({ data: new Float32Array(4).fill(7), height: 2, width: 2 }).data)).toEqual([0, 0, 0, 0]);
  });

  it('argmax2d returns [y, x] of the first maximum', () => {
    expect(argmax2d(mapOf(3, 4, (y, x) => (y === 2 && x === 1 ? 5 : 0)))).toEqual([2, 1]);
    expect(argmax2d(mapOf(2, 2, () => 1))).toEqual([0, 0]);
  });
});
