/**
 * Single-channel maps (MapData: H x W floats, what a SaliencyMap holds) and the pixel helpers the pictures
 * and the evaluation share: bilinear resize, normalisation to [0, 1], the peak's position.
 */

export interface MapData {
  data: Float32Array;
  height: number;
  width: number;
}

/** Bilinear resize of a single-channel map (align_corners = false, as PyTorch's default). */
export function resizeMap(map: MapData, height: number, width: number): MapData {
  if (map.height === height && map.width === width) return map;
  const out = new Float32Array(height * width);
  const sy = map.height / height;
  const sx = map.width / width;
  for (let y = 0; y < height; y++) {
    const fy = Math.min(Math.max((y + 0.5) * sy - 0.5, 0), map.height - 1);
    const y0 = Math.floor(fy);
    const y1 = Math.min(y0 + 1, map.height - 1);
    const wy = fy - y0;
    for (let x = 0; x < width; x++) {
      const fx = Math.min(Math.max((x + 0.5) * sx - 0.5, 0), map.width - 1);
      const x0 = Math.floor(fx);
      const x1 = Math.min(x0 + 1, map.width - 1);
      const wx = fx - x0;
      const a = map.data[y0 * map.width + x0] * (1 - wx) + map.data[y0 * map.width + x1] * wx;
      const b = map.data[y1 * map.width + x0] * (1 - wx) + map.data[y1 * map.width + x1] * wx;
      out[y * width + x] = a * (1 - wy) + b * wy;
    }
  }
  return { data: out, height, width };
}

/** Min-max normalisation to [0, 1] (a constant map becomes zeros). */
export function normalizeMap(map: MapData): MapData {
  let lo = Infinity;
  let hi = -Infinity;
  for (const v of map.data) {
    if (v < lo) lo = v;
    if (v > hi) hi = v;
  }
  const span = hi - lo;
  const out = new Float32Array(map.data.length);
  if (span > 0 && Number.isFinite(span)) for (let i = 0; i < out.length; i++) out[i] = (map.data[i] - lo) / span;
  return { data: out, height: map.height, width: map.width };
}

/** Index of the maximum (first one on ties) as [y, x]. */
export function argmax2d(map: MapData): [number, number] {
  let best = 0;
  for (let i = 1; i < map.data.length; i++) if (map.data[i] > map.data[best]) best = i;
  return [Math.floor(best / map.width), best % map.width];
}
