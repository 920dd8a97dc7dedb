// Rank correlation and SSIM by construction and by hand; against Quantus (SciPy, scikit-image) in evaluate-reference.test.ts.
import { describe, expect, it } from 'vitest';
import { pearson, ranks, spearman, ssim } from '../../lib/evaluate/similarity.js';

describe('spearman', () => {
  it('is 1 under any increasing transform and -1 under a decreasing one', () => {
    const a = Float32Array.from({ length: 100 }, (_, i) => Math.sin(i * 1.7));
    expect(
      spearman(
        a,
        a.map((x) => Math.exp(3 * x)),
      ),
    ).toBeCloseTo(1, 12);
    expect(
      spearman(
        a,
        a.map((x) => -x * x * x),
      ),
    ).toBeCloseTo(-1, 12);
  });

  it('gives ties their average rank, as SciPy does', () => {
    expect([...ranks([10, 20, 20, 5])]).toEqual([2, 3.5, 3.5, 1]);
    // by hand: ranks a = [1, 2.5, 2.5, 4], b = [1, 2, 3, 4]; centred a = [-1.5, 0, 0, 1.5], b = [-1.5, -0.5, 0.5, 1.5]
    // sum ab = 4.5, sum aa = 4.5, sum bb = 5 -> 4.5 / sqrt(22.5)
    expect(spearman([1, 2, 2, 3], [1, 2, 3, 4])).toBeCloseTo(4.5 / Math.sqrt(22.5), 12);
  });

  it('is NaN for a constant map and rejects maps of different sizes', () => {
    expect(spearman([1, 1, 1], [1, 2, 3])).toBeNaN();
    expect(pearson([1, 2], [2, 4])).toBeCloseTo(1, 12);
    expect(() => spearman([1, 2], [1, 2, 3])).toThrow(expect.objectContaining({ code: 'ERR_INVALID_ARG_VALUE' }));
  });
});

describe('ssim', () => {
  const h = 12;
  const w = 10;
  const a = Float64Array.from({ length: h * w }, (_, i) => Math.cos(i * 0.37) + 1);

  it('is 1 for equal maps and falls for noise', () => {
    expect(ssim(a, a, h, w)).toBeCloseTo(1, 12);
    const b = a.map((x, i) => x + 0.5 * Math.sin(i * 12.9898));
    const s = ssim(a, b, h, w);
    expect(s).toBeLessThan(0.9);
    expect(s).toBeGreaterThan(-1);
  });

  it('equals the formula written out for one 7 x 7 window', () => {
    // A 7 x 7 map has one window, centred: SSIM is the formula on all 49 values (sample covariances).
    const x = Array.from({ length: 49 }, (_, i) => (i * 7) % 11);
    const y = Array.from({ length: 49 }, (_, i) => (i * 5) % 13);
    const mean = (v: number[]) => v.reduce((s, t) => s + t, 0) / v.length;
    const [mx, my] = [mean(x), mean(y)];
    const cov = (u: number[], mu: number, z: number[], mz: number) => u.reduce((s, t, i) => s + (t - mu) * (z[i] - mz), 0) / 48;
    const range = Math.max(...x, ...y) - Math.min(...x, ...y);
    const [c1, c2] = [(0.01 * range) ** 2, (0.03 * range) ** 2];
    const expected = ((2 * mx * my + c1) * (2 * cov(x, mx, y, my) + c2)) / ((mx * mx + my * my + c1) * (cov(x, mx, x, mx) + cov(y, my, y, my) + c2));
    expect(ssim(x, y, 7, 7)).toBeCloseTo(expected, 12);
  });

  it('rejects a window larger than the map or even', () => {
    expect(() => ssim([1, 2, 3, 4], [1, 2, 3, 4], 2, 2)).toThrow(expect.objectContaining({ code: 'ERR_OUT_OF_RANGE' }));
    expect(() => ssim(a, a, h, w, { winSize: 4 })).toThrow(expect.objectContaining({ code: 'ERR_OUT_OF_RANGE', argument: 'options.winSize' }));
  });
});
