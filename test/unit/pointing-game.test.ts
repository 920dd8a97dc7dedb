import { describe, expect, it } from 'vitest';
import { PointingGame, pointHits } from '../../lib/evaluate/pointing-game.js';

/** A map whose single maximum sits at (y, x). */
function peak(height: number, width: number, y: number, x: number) {
  const data = new Float32Array(height * width);
  data[y * width + x] = 1;
  return { data, height, width };
}

describe('pointing game', () => {
  it('counts a point inside a box, or within the tolerance of it, as a hit', () => {
    const box = { boxes: [[10, 20, 30, 40]] as [number, number, number, number][] };
    expect(pointHits([25, 15], box, 100, 100, 0)).toBe(true); // inside
    expect(pointHits([25, 30], box, 100, 100, 0)).toBe(false); // x1 is exclusive
    expect(pointHits([25, 29 + 14], box, 100, 100, 15)).toBe(true); // 14 px right of the last column
    expect(pointHits([25, 29 + 15], box, 100, 100, 15)).toBe(false); // 15 px: not closer than 15 (TorchRay's d^2 < 15^2)
    // diagonal: 9^2 + 12^2 = 15^2 from the corner (39, 29) misses; 8^2 + 12^2 < 15^2 hits
    expect(pointHits([39 + 9, 29 + 12], box, 100, 100, 15)).toBe(false);
    expect(pointHits([39 + 8, 29 + 12], box, 100, 100, 15)).toBe(true);
  });

  it('uses masks as well as boxes', () => {
    const mask = new Uint8Array(50 * 50);
    mask[10 * 50 + 10] = 1;
    expect(pointHits([10, 12], { mask }, 50, 50, 3)).toBe(true);
    expect(pointHits([10, 13], { mask }, 50, 50, 3)).toBe(false);
    expect(pointHits([10, 10], { mask }, 50, 50, 0)).toBe(true); // on the object hits even with no tolerance
  });

  it('averages per-class hit rates, so frequent classes do not dominate', () => {
    const game = new PointingGame(3, { tolerance: 0 });
    const box = { boxes: [[0, 0, 5, 5]] as [number, number, number, number][] };
    // class 0: 3 hits, 1 miss -> 0.75; class 1: 0 hits, 1 miss -> 0; class 2 never asked
    for (let i = 0; i < 3; i++) expect(game.evaluate(peak(10, 10, 2, 2), 0, box)).toBe(true);
    expect(game.evaluate(peak(10, 10, 8, 8), 0, box)).toBe(false);
    expect(game.evaluate(peak(10, 10, 8, 8), 1, box)).toBe(false);
    const s = game.summary();
    expect(s.accuracy).toBeCloseTo((0.75 + 0) / 2, 12);
    expect(s.overall).toBeCloseTo(3 / 5, 12);
    expect(s.trials).toBe(5);
    expect(Number.isNaN(s.perClass[2].rate)).toBe(true);
  });

  it('rejects bad arguments with typed errors', () => {
    expect(() => new PointingGame(0)).toThrow(expect.objectContaining({ code: 'ERR_OUT_OF_RANGE', argument: 'numClasses' }));
    const game = new PointingGame(2);
    expect(() => game.evaluate(peak(4, 4, 0, 0), 2, { boxes: [] })).toThrow(expect.objectContaining({ code: 'ERR_OUT_OF_RANGE', argument: 'target' }));
    expect(() => game.evaluate(peak(4, 4, 0, 0), 0, {} as never)).toThrow(expect.objectContaining({ code: 'ERR_INVALID_ARG_TYPE', argument: 'region' }));
  });
});
