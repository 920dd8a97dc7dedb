import { describe, expect, it } from 'vitest';
import { anomalyIndices, peakRegion } from '../../lib/backdoor/index.js';
import { randomInputs, says } from '../../lib/backdoor/inputs.js';
import { boxBlur } from '../../lib/backdoor/scores.js';

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

describe('boxBlur', () => {
  it('averages over the box inside the map', () => {
    // 1 x 4 map [0, 3, 0, 6], radius 1: [(0+3)/2, (0+3+0)/3, (3+0+6)/3, (0+6)/2]; rows of one pixel stay.
    const out = boxBlur({ data: Float32Array.from([0, 3, 0, 6]), height: 1, width: 4 }, 1);
    expect(Array.from(out.data)).toEqual([1.5, 1, 3, 3]);
    // 3 x 3 with a single 9 in the centre, radius 1: every pixel averages its in-map neighbours (corners 4, edges 6, centre 9).
    const c = boxBlur({ data: Float32Array.from([0, 0, 0, 0, 9, 0, 0, 0, 0]), height: 3, width: 3 }, 1);
    expect(Array.from(c.data)).toEqual([9 / 4, 9 / 6, 9 / 4, 9 / 6, 1, 9 / 6, 9 / 4, 9 / 6, 9 / 4]);
  });
});

describe('randomInputs and says', () => {
  it('are seeded images in [0, 1] of each kind in turn', () => {
    const a = randomInputs(6, 3, 8, 8, 5);
    const b = randomInputs(6, 3, 8, 8, 5);
    expect(a.map((im) => Array.from(im.data))).toEqual(b.map((im) => Array.from(im.data)));
    for (const im of a) {
      expect([im.channels, im.height, im.width]).toEqual([3, 8, 8]);
      for (const x of im.data) expect(x >= 0 && x <= 1).toBe(true);
    }
    // 'grey' (the second kind) has a small spread; 'uniform' a wide one.
    const sd = (d: Float32Array) => Math.sqrt(d.reduce((s, x) => s + x * x, 0) / d.length - (d.reduce((s, x) => s + x, 0) / d.length) ** 2);
    expect(sd(a[1].data)).toBeLessThan(0.12);
    expect(randomInputs(1, 1, 4, 4, 6)[0].data).not.toEqual(randomInputs(1, 1, 4, 4, 5)[0].data);
  });

  it('read a class by the head: the argmax, or a positive logit', () => {
    expect(says([0.1, 2, -1], 1, 'softmax')).toBe(true);
    expect(says([0.1, 2, -1], 0, 'softmax')).toBe(false);
    expect(says([0.1, 2, -1], 0, 'sigmoid')).toBe(true);
    expect(says([0.1, 2, -1], 2, 'sigmoid')).toBe(false);
  });
});
