/**
 * How alike two saliency maps are, for the model-randomisation sanity check (Adebayo et al., 2018): the
 * Spearman rank correlation of their pixels and the structural similarity (SSIM) of the two pictures. Both
 * are computed in float64 as SciPy's spearmanr and scikit-image's structural_similarity compute them
 * (the reference test compares them with Quantus, which calls those).
 */
import { invalidValue, outOfRange } from '../errors.js';

/** Ranks 1..n, ties sharing their average rank (SciPy's rankdata 'average'). */
export function ranks(values: ArrayLike<number>): Float64Array {
  const n = values.length;
  const order = Array.from({ length: n }, (_, i) => i).sort((a, b) => values[a] - values[b]);
  const out = new Float64Array(n);
  for (let i = 0; i < n;) {
    let j = i;
    while (j + 1 < n && values[order[j + 1]] === values[order[i]]) j++;
    const rank = (i + j) / 2 + 1;
    for (let k = i; k <= j; k++) out[order[k]] = rank;
    i = j + 1;
  }
  return out;
}

/** Pearson correlation; NaN when either side is constant. */
export function pearson(a: ArrayLike<number>, b: ArrayLike<number>): number {
  if (a.length !== b.length) throw invalidValue('b', `an array of ${a.length} values (as many as a)`, b);
  const n = a.length;
  let ma = 0;
  let mb = 0;
  for (let i = 0; i < n; i++) {
    ma += a[i];
    mb += b[i];
  }
  ma /= n;
  mb /= n;
  let sab = 0;
  let saa = 0;
  let sbb = 0;
  for (let i = 0; i < n; i++) {
    const da = a[i] - ma;
    const db = b[i] - mb;
    sab += da * db;
    saa += da * da;
    sbb += db * db;
  }
  return saa > 0 && sbb > 0 ? sab / Math.sqrt(saa * sbb) : NaN;
}

/** Spearman rank correlation: the Pearson correlation of the ranks. NaN when a map is constant. */
export function spearman(a: ArrayLike<number>, b: ArrayLike<number>): number {
  if (a.length !== b.length) throw invalidValue('b', `an array of ${a.length} values (as many as a)`, b);
  return pearson(ranks(a), ranks(b));
}

export interface SsimOptions {
  /** Side of the square window (odd, default 7, as scikit-image). */
  winSize?: number;
  /** The values' range; default the range of both maps together (as Quantus gives scikit-image). */
  dataRange?: number;
}

/**
 * Mean structural similarity of two height x width maps (Wang et al., 2004), as scikit-image's
 * structural_similarity with its defaults: a uniform win x win window, sample covariances, K1 0.01,
 * K2 0.03, the mean over the pixels at least (win - 1) / 2 from the border.
 */
export function ssim(a: ArrayLike<number>, b: ArrayLike<number>, height: number, width: number, options: SsimOptions = {}): number {
  const win = options.winSize ?? 7;
  if (!Number.isInteger(win) || win < 3 || win % 2 === 0) throw outOfRange('options.winSize', 'an odd integer >= 3', win);
  if (a.length !== height * width || b.length !== height * width) throw invalidValue('b', `two maps of ${height} x ${width} values`, b);
  if (height < win || width < win) throw outOfRange('options.winSize', `a window no larger than the map (${height} x ${width})`, win);
  let range = options.dataRange;
  if (range === undefined) {
    let lo = Infinity;
    let hi = -Infinity;
    for (let i = 0; i < a.length; i++) {
      lo = Math.min(lo, a[i], b[i]);
      hi = Math.max(hi, a[i], b[i]);
    }
    range = hi - lo;
  }
  const c1 = (0.01 * range) ** 2;
  const c2 = (0.03 * range) ** 2;
  const np = win * win;
  const covNorm = np / (np - 1);
  const pad = (win - 1) / 2;
  // Window sums from summed-area tables of x, y, x^2, y^2, xy (float64).
  const w1 = width + 1;
  const tables = [0, 1, 2, 3, 4].map(() => new Float64Array((height + 1) * w1));
  const [sx, sy, sxx, syy, sxy] = tables;
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) {
      const i = y * width + x;
      const va = a[i];
      const vb = b[i];
      const values = [va, vb, va * va, vb * vb, va * vb];
      const o = (y + 1) * w1 + x + 1;
      for (let t = 0; t < 5; t++) tables[t][o] = values[t] + tables[t][o - 1] + tables[t][o - w1] - tables[t][o - w1 - 1];
    }
  }
  const box = (t: Float64Array, y: number, x: number) => {
    const y0 = y - pad;
    const x0 = x - pad;
    const y1 = y + pad + 1;
    const x1 = x + pad + 1;
    return (t[y1 * w1 + x1] - t[y0 * w1 + x1] - t[y1 * w1 + x0] + t[y0 * w1 + x0]) / np;
  };
  let total = 0;
  let count = 0;
  for (let y = pad; y < height - pad; y++) {
    for (let x = pad; x < width - pad; x++) {
      const ux = box(sx, y, x);
      const uy = box(sy, y, x);
      const vx = covNorm * (box(sxx, y, x) - ux * ux);
      const vy = covNorm * (box(syy, y, x) - uy * uy);
      const vxy = covNorm * (box(sxy, y, x) - ux * uy);
      total += ((2 * ux * uy + c1) * (2 * vxy + c2)) / ((ux * ux + uy * uy + c1) * (vx + vy + c2));
      count++;
    }
  }
  return total / count;
}
