/**
 * One map per (image, class) job from an explanation: methods that give several maps per job (extremal
 * perturbation gives one per area) are summed, as TorchRay's pointing-game setting sums its masks.
 */
import type { MapData } from '../map.js';

export interface JobMap extends MapData {
  image: number;
  target: number;
}

export function jobMaps(maps: readonly (MapData & { image: number; target: number })[]): JobMap[] {
  const out: JobMap[] = [];
  const index = new Map<string, number>();
  for (const m of maps) {
    const key = `${m.image}:${m.target}`;
    const at = index.get(key);
    if (at === undefined) {
      index.set(key, out.length);
      out.push({ data: Float32Array.from(m.data), height: m.height, width: m.width, image: m.image, target: m.target });
    } else {
      const sum = out[at].data;
      for (let i = 0; i < sum.length; i++) sum[i] += m.data[i];
    }
  }
  return out;
}
