/**
 * The parts of a class's trigger signature that need no model: the region around the map's peak, the
 * outlier test across classes.
 */

export interface Box {
  top: number;
  left: number;
  height: number;
  width: number;
}

/** The connected component (8-neighbours) of pixels >= threshold * peak that holds the peak, as a box. */
export function peakRegion(map: { data: Float32Array; height: number; width: number }, threshold: number): Box {
  const { data, height, width } = map;
  let peak = 0;
  for (let i = 1; i < data.length; i++) if (data[i] > data[peak]) peak = i;
  const level = threshold * data[peak];
  const seen = new Uint8Array(data.length);
  const stack = [peak];
  seen[peak] = 1;
  let [top, left, bottom, right] = [height, width, -1, -1];
  while (stack.length > 0) {
    const i = stack.pop()!;
    const y = Math.floor(i / width);
    const x = i % width;
    top = Math.min(top, y);
    bottom = Math.max(bottom, y);
    left = Math.min(left, x);
    right = Math.max(right, x);
    for (let dy = -1; dy <= 1; dy++) {
      for (let dx = -1; dx <= 1; dx++) {
        const yy = y + dy;
        const xx = x + dx;
        if (yy < 0 || yy >= height || xx < 0 || xx >= width) continue;
        const k = yy * width + xx;
        if (!seen[k] && data[k] >= level) {
          seen[k] = 1;
          stack.push(k);
        }
      }
    }
  }
  return { top, left, height: bottom - top + 1, width: right - left + 1 };
}

/**
 * Robust z-scores: (x - median) / (1.4826 MAD). The MAD is floored at `floor` so that when most classes
 * score exactly 0 (no region of theirs flips anything) a small score is not an infinite outlier.
 */
export function anomalyIndices(values: readonly number[], floor = 0.01): number[] {
  const median = (xs: number[]) => {
    const s = [...xs].sort((a, b) => a - b);
    const m = s.length >> 1;
    return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
  };
  const med = median([...values]);
  const mad = median(values.map((x) => Math.abs(x - med)));
  const scale = 1.4826 * Math.max(mad, floor);
  return values.map((x) => (x - med) / scale);
}
