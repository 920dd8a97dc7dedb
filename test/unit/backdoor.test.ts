import { describe, expect, it } from 'vitest';
import { anomalyIndices, peakRegion } from '../../lib/backdoor/index.js';

function map(height: number, width: number, cells: Record<string, number>, background = 0.1) {
  const data = new Float32Array(height * width).fill(background);
  for (const [key, value] of Object.entries(cells)) {
    const [y, x] = key.split(',').map(Number);
    data[y * width + x] = value;
  }
  return { data, height, width };
}

describe('peakRegion', () => {
  it('is the box of the connected component at the threshold that holds the peak', () => {
    // A 2 x 3 blob around the peak (rows 5-6, columns 2-4), a diagonal neighbour (7, 5) joined by
    // 8-connectivity, and a separate bright pixel far away that must not be included.
    const m = map(10, 10, { '5,2': 0.6, '5,3': 1, '5,4': 0.7, '6,2': 0.5, '6,3': 0.9, '6,4': 0.8, '7,5': 0.55, '0,9': 0.95 });
    expect(peakRegion(m, 0.5)).toEqual({ top: 5, left: 2, height: 3, width: 4 });
    // A higher threshold keeps only the pixels >= 0.75: (5,3), (6,3), (6,4).
    expect(peakRegion(m, 0.75)).toEqual({ top: 5, left: 3, height: 2, width: 2 });
  });

  it('is the whole image for a flat map', () => {
    expect(peakRegion(map(4, 6, {}), 0.5)).toEqual({ top: 0, left: 0, height: 4, width: 6 });
  });
});

describe('anomalyIndices', () => {
  it('are (x - median) / (1.4826 MAD)', () => {
    // median 3, absolute deviations [2, 1, 0, 1, 7] -> MAD 1.
    const a = anomalyIndices([1, 2, 3, 4, 10]);
    expect(a.map((x) => +x.toFixed(6))).toEqual([-2, -1, 0, 1, 7].map((d) => +(d / 1.4826).toFixed(6)));
  });

  it('floor the MAD so that a lone small score among zeros is not an infinite outlier', () => {
    const a = anomalyIndices([0, 0, 0, 0, 0.02]);
    expect(a[4]).toBeCloseTo(0.02 / (1.4826 * 0.01), 9);
    expect(anomalyIndices([0, 0, 0, 0, 0.02], 0.1)[4]).toBeCloseTo(0.02 / 0.14826, 9);
  });
});
