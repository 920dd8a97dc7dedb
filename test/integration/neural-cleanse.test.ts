// Neural Cleanse ('neural-cleanse', and scanBackdoor's method) on the trojaned fixture, whose answer is known by
// construction (test/fixtures/backdoor/backdoor.json: target class 2, a 5 x 5 checkerboard at rows and columns
// 25-29): the target's reversed mask is the smallest, it sits on the trigger, and the reversed trigger stamped
// on inputs the optimisation never saw sends them to the target.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { join } from 'node:path';
import { BACKDOOR as dir, backdoorFixture as fixture, BACKDOOR_SIZE as SIZE } from './helpers.js';
import { loadModel, scanBackdoor, type BackdoorScan, type Model, type NeuralCleanseClassScan } from '../../lib/index.js';
import { randomInputs } from '../../lib/backdoor/index.js';

const FAST = { steps: 150, inputs: 16 } as const;
let trojan: Model;
let scan: BackdoorScan<NeuralCleanseClassScan>;

beforeAll(async () => {
  trojan = await loadModel(join(dir, 'trojan_traced.pt'), { device: 'cpu', labels: join(dir, 'labels.txt') });
  scan = await scanBackdoor(trojan, { size: SIZE, method: 'neural-cleanse', seed: 1, ...FAST });
}, 240_000);

afterAll(() => trojan?.dispose());

describe('neural-cleanse on the trojaned fixture', () => {
  it('reverses the smallest mask for the target class, on the trigger', () => {
    const target = scan.classes.find((c) => c.class === fixture.targetClass)!;
    for (const c of scan.classes) if (c !== target) expect(target.norm, `class ${c.class}`).toBeLessThan(c.norm);
    expect(target.reached).toBe(true);
    // The mask's region: its centre inside the 5 x 5 trigger, its area at most twice the trigger's.
    const t = fixture.trigger;
    const cy = target.box.top + target.box.height / 2;
    const cx = target.box.left + target.box.width / 2;
    expect(cy >= t.top && cy <= t.top + t.height && cx >= t.left && cx <= t.left + t.width, JSON.stringify(target.box)).toBe(true);
    expect(target.norm * SIZE * SIZE).toBeLessThan(2 * t.height * t.width);
  });

  it('gives a trigger that, stamped on inputs it never saw, sends them to the target', async () => {
    const j = scan.classes.findIndex((c) => c.class === fixture.targetClass);
    const d = scan.explanation.details as { masks: { data: Float32Array }[]; patterns: { data: Float32Array }[] };
    const mask = d.masks[j].data;
    const pattern = d.patterns[j].data;
    const plane = SIZE * SIZE;
    // Another seed than the scan's inputs (seed 1): fresh uniform, grey and smooth random images.
    const fresh = randomInputs(30, 3, SIZE, SIZE, 12345);
    const stamped = fresh.map((im) => {
      const data = Float32Array.from(im.data, (x, i) => (1 - mask[i % plane]) * x + mask[i % plane] * pattern[i]);
      return { ...im, data };
    });
    const before = await trojan.predict(fresh, { top: 1 });
    const after = await trojan.predict(stamped, { top: 1 });
    const others = before.map((p, i) => i).filter((i) => before[i].top[0].index !== fixture.targetClass);
    const hits = others.filter((i) => after[i].top[0].index === fixture.targetClass).length;
    expect(others.length).toBeGreaterThan(10);
    expect(hits / others.length).toBeGreaterThanOrEqual(0.9);
  });

  it('returns one map per job, a mask in [0, 1], and JSON without the pictures', async () => {
    const images = randomInputs(4, 3, SIZE, SIZE, 3);
    const r = await trojan.explain(images, { method: 'neural-cleanse', target: [[2, 0], [], [], [2]], steps: 5 });
    expect(r.maps).toHaveLength(3);
    expect(r.details.norms).toHaveLength(3);
    // Jobs of the same class share one mask.
    expect(Array.from(r.maps[2].data)).toEqual(Array.from(r.maps[0].data));
    for (const m of r.maps) for (const x of m.data) expect(x >= 0 && x <= 1).toBe(true);
    expect(JSON.stringify(r)).not.toContain('patterns');
  });

  it('stops early once every class has converged, as NC, and runs every step with earlyStopPatience 0', async () => {
    const images = randomInputs(8, 3, SIZE, SIZE, 5);
    const early = await trojan.explain(images, { method: 'neural-cleanse', target: [[2], [], [], [], [], [], [], []], steps: 600 });
    const steps = early.details.lossHistory[0].length;
    expect(early.details.reached[0]).toBe(true);
    // Stopped before the last step, with lambda past its warm-up at 0; the history ends where the run did.
    expect(steps).toBeLessThan(600);
    expect(early.details.normHistory[0].length).toBe(steps);
    expect(early.details.cost[0]).toBeGreaterThan(0);
    const full = await trojan.explain(images, { method: 'neural-cleanse', target: [[2], [], [], [], [], [], [], []], steps: 40, earlyStopPatience: 0 });
    expect(full.details.lossHistory[0].length).toBe(40);
    await expect(trojan.explain(images, { method: 'neural-cleanse', target: 2, earlyStopPatience: -1 })).rejects.toMatchObject({
      code: 'ERR_OUT_OF_RANGE',
      argument: 'options.earlyStopPatience',
    });
  }, 120_000);

  it('stops on abort and rejects bad options with typed errors', async () => {
    await expect(scanBackdoor(trojan, { size: SIZE, method: 'neural-cleanse', signal: AbortSignal.abort() })).rejects.toMatchObject({ code: 'ABORT_ERR' });
    await expect(scanBackdoor(trojan, { size: SIZE, method: 'neural-cleanse', steps: 0 })).rejects.toMatchObject({
      code: 'ERR_OUT_OF_RANGE',
      argument: 'options.steps',
    });
    await expect(scanBackdoor(trojan, { size: SIZE, method: 'neural-cleanse', flipThreshold: 0.5 } as never)).rejects.toMatchObject({
      code: 'ERR_INVALID_ARG_VALUE',
    });
    await expect(trojan.explain(SIZE, { method: 'neural-cleanse', head: 'relu' } as never)).rejects.toMatchObject({ argument: 'options.head' });
  });
});
