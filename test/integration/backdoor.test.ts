// The backdoor scan (lib/backdoor/) on the trojaned and the clean fixture: flags, regions, pictures, errors.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { BACKDOOR as dir, backdoorFixture as fixture, BACKDOOR_SIZE as SIZE, BACKDOOR_FAST as FAST, FIXTURES, rejection } from './helpers.js';
import { loadModel, scanBackdoor, TorchSaliencyError, type BackdoorScan, type InputAgnosticClassScan, type Model } from '../../lib/index.js';

let trojan: Model;
let clean: Model;
let trojanScan: BackdoorScan<InputAgnosticClassScan>;
let cleanScan: BackdoorScan<InputAgnosticClassScan>;

beforeAll(async () => {
  trojan = await loadModel(join(dir, 'trojan_traced.pt'), { device: 'cpu', labels: join(dir, 'labels.txt') });
  clean = await loadModel(join(dir, 'clean_traced.pt'), { device: 'cpu', labels: join(dir, 'labels.txt') });
  trojanScan = await scanBackdoor(trojan, { size: SIZE, seed: 1, ...FAST });
  cleanScan = await scanBackdoor(clean, { size: SIZE, seed: 1, ...FAST });
}, 120_000);

afterAll(() => {
  trojan?.dispose();
  clean?.dispose();
});

function iou(a: { top: number; left: number; height: number; width: number }, b: typeof a): number {
  const h = Math.max(0, Math.min(a.top + a.height, b.top + b.height) - Math.max(a.top, b.top));
  const w = Math.max(0, Math.min(a.left + a.width, b.left + b.width) - Math.max(a.left, b.left));
  const inter = h * w;
  return inter / (a.height * a.width + b.height * b.width - inter);
}

describe('the fixtures', () => {
  it('are a working trojan and a clean model of the same architecture', () => {
    expect(fixture.clean.accuracy).toBeGreaterThan(0.9);
    expect(fixture.trojan.accuracy).toBeGreaterThan(0.9);
    expect(fixture.trojan.attackSuccess).toBeGreaterThan(0.9);
    expect(fixture.clean.attackSuccess).toBeLessThan(0.3);
  });
});

describe('scanBackdoor', () => {
  it("flags the trojaned model's target class, with the region on the trigger", () => {
    expect(trojanScan.flagged).toEqual([fixture.targetClass]);
    const c = trojanScan.classes.find((x) => x.class === fixture.targetClass)!;
    expect(c.label).toBe(fixture.classes[fixture.targetClass]);
    const t = fixture.trigger;
    const cy = c.box.top + c.box.height / 2;
    const cx = c.box.left + c.box.width / 2;
    expect(cy >= t.top && cy <= t.top + t.height && cx >= t.left && cx <= t.left + t.width).toBe(true);
    expect(iou(c.box, t)).toBeGreaterThan(0.15);
    expect(c.flipRate).toBeGreaterThan(0.8);
  });

  it('flags the same class with the l2 projection and Gaussian samples', async () => {
    const scan = await scanBackdoor(trojan, { size: SIZE, seed: 2, norm: 'l2', distribution: 'gaussian', ...FAST });
    expect(scan.flagged).toEqual([fixture.targetClass]);
    const c = scan.classes[fixture.targetClass];
    expect(iou(c.box, fixture.trigger)).toBeGreaterThan(0.15);
  });

  it('gives no signature to a region larger than maxArea, in every pass, and keeps its flip rates', async () => {
    // Every region holds at least one pixel (1/1024 of a 32 x 32 image): with maxArea below that, no pass of any
    // class may carry a trigger, whatever its flip rate.
    const scan = await scanBackdoor(trojan, { size: SIZE, seed: 1, ...FAST, maxArea: 0.0005 });
    expect(scan.flagged).toEqual([]);
    expect(scan.score).toBe(0);
    for (const c of scan.classes) {
      expect(c.specificFlipRate).toBe(0);
      expect(c.signature).toBe(0);
    }
    // The same passes as the default scan (same seed), so the target's stamp still flips as it did there.
    expect(scan.classes[fixture.targetClass].flipRate).toBeCloseTo(trojanScan.classes[fixture.targetClass].flipRate, 10);
  });

  it('does not flag the clean model', () => {
    expect(cleanScan.flagged).toEqual([]);
    expect(cleanScan.suspicious).toBe(false);
    expect(cleanScan.classes).toHaveLength(fixture.classes.length);
  });

  it('gives JSON with every class scored', () => {
    const json = JSON.parse(JSON.stringify(trojanScan)) as { suspicious: boolean; classes: { anomalyIndex: number; box: object }[] };
    expect(json.suspicious).toBe(true);
    // Pictures stay out of the JSON (they are read from details, and written by writePictures).
    expect(JSON.stringify(trojanScan.explanation)).not.toContain('visualizations');
    expect(json.classes).toHaveLength(fixture.classes.length);
    for (const c of json.classes) expect(Number.isFinite(c.anomalyIndex)).toBe(true);
  });

  it('writes a picture and a map per class, and the JSON', async () => {
    const out = mkdtempSync(join(tmpdir(), 'ia-scan-'));
    try {
      const paths = await trojanScan.writePictures(out, { scale: 2 });
      expect(paths).toHaveLength(2 * fixture.classes.length + 1);
      const png = readFileSync(paths[0]);
      expect(png.subarray(1, 4).toString()).toBe('PNG');
      expect(png.readUInt32BE(16)).toBe(2 * SIZE); // width in the IHDR chunk
      expect(JSON.parse(readFileSync(join(out, 'scan.json'), 'utf8')).flagged).toEqual([fixture.targetClass]);
    } finally {
      rmSync(out, { recursive: true, force: true });
    }
  });

  it('stops on abort', async () => {
    await expect(scanBackdoor(trojan, { size: SIZE, signal: AbortSignal.abort() })).rejects.toMatchObject({ code: 'ABORT_ERR' });
  });

  it('rejects bad options with typed errors', async () => {
    await expect(scanBackdoor(clean, {} as never)).rejects.toMatchObject({ code: 'ERR_INVALID_ARG_TYPE', argument: 'options.size' });
    await expect(scanBackdoor(clean, { size: SIZE, classes: [0, 1, 99] })).rejects.toMatchObject({ code: 'ERR_OUT_OF_RANGE', argument: 'options.classes[2]' });
    await expect(scanBackdoor(clean, { size: SIZE, classes: [0, 1] })).rejects.toMatchObject({ code: 'ERR_OUT_OF_RANGE', argument: 'options.classes' });
    await expect(scanBackdoor(clean, { size: SIZE, flipThreshold: 2 })).rejects.toMatchObject({ code: 'ERR_OUT_OF_RANGE', argument: 'options.flipThreshold' });
    await expect(scanBackdoor(clean, { size: SIZE, bogus: 1 } as never)).rejects.toBeInstanceOf(TorchSaliencyError);
  });

  it('without size: the size the model fixes (a ViT), the size of the given images, or a typed error up front', async () => {
    // bare_traced.pt: a ViT whose positional embedding (1 + 8 x 8 tokens) and 8 px patches fix 64 x 64.
    const vit = await loadModel(join(FIXTURES, 'vit', 'bare_traced.pt'));
    const scan = await scanBackdoor(vit, { seed: 1, samples: 2, iterations: 2, refineSteps: 1, seeds: 1, trials: 2 });
    expect(scan.maps.every((m) => m.height === 64 && m.width === 64)).toBe(true);
    expect(scan.classes.length).toBe(4);
    // A CNN whose parameters fix no size (no positional embedding, convolutions first): the error names options.size before anything runs.
    let progress = 0;
    const e = await rejection(scanBackdoor(clean, { onProgress: () => progress++ }));
    expect([e.code, e.argument]).toEqual(['ERR_INVALID_ARG_TYPE', 'options.size']);
    expect(e.message).toContain('fix none');
    expect(progress).toBe(0);
    // The hybrid ViT's parameters suggest 24 x 24 (its stem's conv times the tokens' width), on which it does not run.
    const hybrid = await loadModel(join(FIXTURES, 'vit', 'vit_traced.pt'));
    const h = await rejection(scanBackdoor(hybrid, {}));
    expect([h.code, h.argument]).toEqual(['ERR_INVALID_ARG_TYPE', 'options.size']);
    expect(h.message).toContain('does not run');
    // Clean images given: their size.
    const images = [0, 1].map(() => ({ data: new Float32Array(3 * SIZE * SIZE).fill(0.5), channels: 3, height: SIZE, width: SIZE }));
    const withImages = await scanBackdoor(clean, { images, seed: 1, ...FAST, seeds: 1, trials: 2 });
    expect(withImages.maps.every((m) => m.height === SIZE && m.width === SIZE)).toBe(true);
  });
});
