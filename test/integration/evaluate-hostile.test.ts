// evaluate() and `torch-saliency evaluate` as a careless user drives them: images of several sizes, two methods of
// one name, options that scaled memory, folders that are not there, boxes that fall outside. Each case crashed,
// merged results silently, or exited 1 after the long run before.
import { spawn, spawnSync } from 'node:child_process';
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import sharp from 'sharp';
import { describe, expect, it } from 'vitest';
import { evaluate, fidelityCurve, loadModel, readImage, type EvaluationImage, type Model } from '../../lib/index.js';
import { FIXTURES, ROOT, rejection } from './helpers.js';

const SHAPES = join(FIXTURES, 'shapes');
const entries = JSON.parse(readFileSync(join(SHAPES, 'boxes.json'), 'utf8')) as { file: string; classIndex: number; box: [number, number, number, number] }[];
const open = () => loadModel(join(FIXTURES, 'models', 'shapes_traced.pt'), { device: 'cpu', labels: join(FIXTURES, 'models', 'shapes_labels.txt') });

async function item(k: number, size?: number): Promise<EvaluationImage> {
  const e = entries[k];
  const image = await readImage(join(SHAPES, e.file), size ? { size, fit: 'fill' } : {});
  const s = size ? size / 64 : 1;
  return {
    name: e.file,
    image,
    objects: [{ classIndex: e.classIndex, boxes: [e.box.map((x) => Math.round(x * s)) as unknown as [number, number, number, number]] }],
  };
}

describe('evaluate() on odd input', () => {
  it('images of several sizes are explained in batches of one size each; scores equal those of each size alone', async () => {
    await using model = await open();
    // Before: one explain call for the first batch of mixed sizes, ERR_INPUT_SHAPE.
    const mixed = [await item(0), await item(1, 96), await item(2), await item(3, 96), await item(4, 48)];
    const options = { methods: ['gradient' as const], scores: ['pointing-game' as const, 'sanity' as const], sanity: { images: 4, points: 2 } };
    const all = await evaluate(model, mixed, options);
    expect(all.pairs).toBe(5);
    // The same pairs one image at a time (batches of one cannot mix sizes): the same hits, the same sanity numbers.
    const alone = await evaluate(model, mixed, { ...options, batchSize: 1 });
    expect(all.methods[0].pointingGame!.hits).toEqual(alone.methods[0].pointingGame!.hits);
    const steps = (e: typeof all) => e.methods[0].sanity!.steps.map((s) => [s.layer, s.spearmanPerMap.map((x) => x.toFixed(5))]);
    expect(steps(all)).toEqual(steps(alone));
    expect(all.methods[0].sanity!.steps[0].spearmanPerMap).toHaveLength(4);
  }, 60_000);

  it('two methods of one name are refused (their timings and pictures merged silently); named apart they run', async () => {
    await using model = await open();
    const items = [await item(0), await item(1)];
    const e = await rejection(evaluate(model, items, { methods: ['gradient', 'gradient'], scores: ['pointing-game'] }));
    expect(e).toMatchObject({ code: 'ERR_INVALID_ARG_VALUE', argument: 'options.methods[1]' });
    const named = await evaluate(model, items, {
      methods: ['gradient', { method: 'gradient', name: 'gradient again' }],
      scores: ['pointing-game'],
    });
    expect(named.methods.map((m) => m.name)).toEqual(['gradient', 'gradient again']);
    expect(new Set(named.timings.map((t) => t.method))).toEqual(new Set(['gradient', 'gradient again']));
    // Options of the wrong kind are typed errors before any work.
    for (const [options, argument] of [
      [{ methods: ['gradient'], scores: 'pointing-game' }, 'options.scores'],
      [{ methods: ['gradient'], fidelity: { step: 3 } }, 'options.step'],
      [{ methods: ['gradient'], fidelity: { blurSigma: 1e6 } }, 'options.blurSigma'],
      [{ methods: ['gradient'], signal: 'stop' }, 'options.signal'],
      [{ methods: [{ method: 'gradient', name: 7 }] }, 'options.methods[0].name'],
    ] as const) {
      expect((await rejection(evaluate(model, items, options as never))).argument).toBe(argument);
    }
  });

  it('a box of NaN or with its ends swapped, and a sanity layers option that is not a list, are typed errors', async () => {
    await using model = await open();
    const good = await item(0);
    // Before: the NaN box scored a silent miss (and [0.1, 0.5] as boxes a TypeError from destructuring).
    for (const [boxes, argument] of [
      [[[NaN, 0, 10, 10]], 'images[0].objects[0].boxes[0]'],
      [[[20, 20, 10, 10]], 'images[0].objects[0].boxes[0]'],
      [[0.1, 0.5], 'images[0].objects[0].boxes[0]'],
    ] as const) {
      const bad = [{ ...good, objects: [{ classIndex: 0, boxes: boxes as never }] }];
      expect((await rejection(evaluate(model, bad, { methods: ['gradient'] }))).argument).toBe(argument);
    }
    expect((await rejection(evaluate(model, [{ ...good, name: 7 as never }], { methods: ['gradient'] }))).argument).toBe('images[0].name');
    const layers = await rejection(evaluate(model, [good], { methods: ['gradient'], sanity: { layers: 64 as never } }));
    expect(layers.argument).toBe('options.sanity.layers');
  });

  it('a labels file that is a pipe or a device is refused at once (a pipe waited forever)', async () => {
    const fifo = join(mkdtempSync(join(tmpdir(), 'ts-evaluate-hostile-')), 'labels.txt');
    expect(spawnSync('mkfifo', [fifo]).status).toBe(0);
    for (const labels of [fifo, '/dev/zero']) {
      const e = await rejection(loadModel(join(FIXTURES, 'models', 'shapes_traced.pt'), { device: 'cpu', labels }));
      expect(e).toMatchObject({ code: 'ERR_INVALID_ARG_VALUE', argument: 'options.labels', message: expect.stringMatching(/not a regular file/) });
    }
  });

  it('a deletion curve of many steps on a large image holds a bounded number of images at once', async () => {
    await using model = await open();
    const image = await readImage(join(SHAPES, 'shape_00.png'), { size: 384 });
    const map = (await model.explain(image, { method: 'gradient', target: 0 })).maps[0];
    // Before: all steps + 1 perturbed images were made first (4097 x 1.7 MB at 384 px with steps 4096), then predicted.
    const sizes: number[] = [];
    const spy = new Proxy(model, {
      get(target, key) {
        if (key === 'predict')
          return (images: unknown, o: unknown) => {
            sizes.push(Array.isArray(images) ? images.length : 1);
            return target.predict(images as never, o as never);
          };
        const value = Reflect.get(target, key);
        return typeof value === 'function' ? value.bind(target) : value;
      },
    }) as Model;
    const curve = await fidelityCurve(spy, image, map, 0, 'deletion', { steps: 40, batchSize: 100_000 });
    expect(curve.probabilities).toHaveLength(41);
    expect(sizes.reduce((a, b) => a + b, 0)).toBe(41);
    expect(Math.max(...sizes)).toBe(Math.floor(2 ** 24 / (3 * 384 * 384)));
    // The same curve as in one batch (the batching changes nothing but memory).
    const whole = await fidelityCurve(model, image, map, 0, 'deletion', { steps: 40, batchSize: 41 });
    expect(Array.from(curve.probabilities)).toEqual(Array.from(whole.probabilities));
  }, 60_000);
});

describe('evaluate command on odd input', () => {
  const cli = (...args: string[]) => {
    const r = spawnSync(process.execPath, ['--import', 'tsx', join(ROOT, 'lib', 'cli', 'index.ts'), 'evaluate', ...args], {
      cwd: ROOT,
      encoding: 'utf8',
      timeout: 120_000,
    });
    return { code: r.status, stdout: r.stdout, stderr: r.stderr };
  };
  const model = ['--model', 'test/fixtures/models/shapes_traced.pt', '--labels', 'test/fixtures/models/shapes_labels.txt', '--device', 'cpu'];
  const boxes = ['--boxes', 'test/fixtures/shapes/boxes.json'];

  it('usage errors exit 2 with one line, before the model is loaded or an image read', () => {
    const dir = mkdtempSync(join(tmpdir(), 'ts-evaluate-hostile-'));
    const file = join(dir, 'file.txt');
    writeFileSync(file, 'x');
    for (const [args, pattern] of [
      [[...boxes, '--images', join(dir, 'missing')], /--images/], // was a raw ENOENT, exit 1
      [[...boxes, '--images', file], /--images/], // was a raw ENOTDIR, exit 1
      [[...boxes, '--images', 'test/fixtures/shapes', '--methods', 'gradient,gradient'], /options\.methods\[1\]/],
      [[...boxes, '--images', 'test/fixtures/shapes', '--scores', 'pointing-game,bogus'], /options\.scores\[1\]/],
      [[...boxes, '--images', 'test/fixtures/shapes', '--fit', 'stretch'], /--fit/],
    ] as const) {
      const r = cli(...model, ...args);
      expect(r.code, r.stderr).toBe(2);
      expect(r.stderr.trim().split('\n'), r.stderr).toHaveLength(1);
      expect(r.stderr).toMatch(pattern);
    }
  }, 120_000);

  it('images of several sizes without --size run; missing images and boxes outside are said; all outside is exit 2', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'ts-evaluate-hostile-'));
    const images = join(dir, 'images');
    mkdirSync(images);
    for (const e of entries.slice(0, 3)) copyFileSync(join(SHAPES, e.file), join(images, e.file));
    await sharp(join(SHAPES, entries[3].file)).resize(96, 80).toFile(join(images, entries[3].file));
    // Before: ERR_INPUT_SHAPE from explain ("resize them with readImage"), though the pointing game needs no resize.
    const r = cli(...model, ...boxes, '--images', images, '--scores', 'pointing-game', '--json');
    expect(r.code, r.stderr).toBe(0);
    expect(JSON.parse(r.stdout).images).toBe(4);
    expect(r.stderr).toMatch(/12 annotated image\(s\) are not in/);
    const outside = join(dir, 'outside.json');
    writeFileSync(outside, JSON.stringify([{ file: entries[0].file, classIndex: 0, box: [100, 100, 120, 120] }]));
    // Before: "Expected a non-empty array of { name, image, objects } for images", which hid the reason.
    const o = cli(...model, '--boxes', outside, '--images', images, '--scores', 'pointing-game');
    expect(o.code).toBe(2);
    expect(o.stderr).toMatch(/1 box\(es\) lie outside their image/);
    expect(o.stderr).toMatch(/Every box .* lies outside its image.*ERR_ANNOTATIONS/);
  }, 120_000);

  it("boxes of a JPEG turned by its EXIF orientation are read in the picture's turned size", async () => {
    const dir = mkdtempSync(join(tmpdir(), 'ts-evaluate-hostile-'));
    mkdirSync(join(dir, 'images'));
    // Stored 100 wide x 60 tall, orientation 6: shown (and decoded by readImage) 60 wide x 100 tall.
    await sharp(join(SHAPES, entries[0].file))
      .resize(100, 60, { fit: 'fill' })
      .jpeg()
      .withMetadata({ orientation: 6 })
      .toFile(join(dir, 'images', 'turned.jpg'));
    writeFileSync(join(dir, 'boxes.json'), JSON.stringify([{ file: 'turned.jpg', classIndex: 0, box: [10, 50, 30, 90] }]));
    const r = cli(...model, '--boxes', join(dir, 'boxes.json'), '--images', join(dir, 'images'), '--scores', 'pointing-game', '--out', join(dir, 'out'));
    // Before: the box was scaled from the stored 60 x 100 (h x w) to the decoded 100 x 60 and fell outside (exit 2).
    expect(r.code, r.stderr).toBe(0);
    expect(readFileSync(join(dir, 'out', 'evaluation.html'), 'utf8')).toContain('<rect x="10" y="50" width="20" height="40" class="box"/>');
  }, 60_000);

  /** Runs the command, sends SIGINT `after` ms once it says it is evaluating, and resolves with its exit and stderr. */
  const interrupted = (after: number, ...args: string[]) =>
    new Promise<{ code: number | null; signal: string | null; stderr: string }>((resolve) => {
      const child = spawn(process.execPath, ['--import', 'tsx', join(ROOT, 'lib', 'cli', 'index.ts'), 'evaluate', ...args], { cwd: ROOT });
      let stderr = '';
      let sent = false;
      child.stderr.on('data', (d) => {
        stderr += String(d);
        if (!sent && stderr.includes('evaluating')) {
          sent = true;
          setTimeout(() => child.kill('SIGINT'), after);
        }
      });
      child.on('exit', (code, signal) => resolve({ code, signal, stderr }));
    });

  it('SIGINT exits 130 with one line; an earlier evaluation in --out stays whole, or is gone once this run writes', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'ts-evaluate-hostile-'));
    const earlier = '{"earlier": true}\n';
    const images = ['--images', 'test/fixtures/shapes'];
    // During the explain phase (extremal perturbation at its 800 steps): nothing of this run is written yet.
    writeFileSync(join(dir, 'evaluation.json'), earlier);
    const a = await interrupted(500, ...model, ...boxes, ...images, '--methods', 'extremal-perturbation', '--out', dir);
    // Before: no handler, the process died of the signal.
    expect([a.code, a.signal], a.stderr).toEqual([130, null]);
    expect(a.stderr).toMatch(/interrupted \(SIGINT\): nothing written/);
    expect(readFileSync(join(dir, 'evaluation.json'), 'utf8')).toBe(earlier);
    // During the deletion curves, after this run's pictures: the earlier evaluation.json (which named other pictures) is gone.
    const b = await interrupted(3000, ...model, ...boxes, ...images, '--scores', 'deletion', '--steps', '4096', '--out', dir);
    expect([b.code, b.signal], b.stderr).toEqual([130, null]);
    expect(b.stderr).toMatch(/no evaluation\.json/);
    expect(existsSync(join(dir, 'evaluation.json'))).toBe(false);
    expect(existsSync(join(dir, 'pictures', 'm0-pair0.png'))).toBe(true);
    expect(readdirSync(join(dir, 'pictures')).filter((f) => f.endsWith('.tmp'))).toEqual([]);
  }, 120_000);
});
