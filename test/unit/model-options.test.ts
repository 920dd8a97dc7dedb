// loadModel, predict and explain checks that fail before any native call, and the JS half of predict and
// of target resolution, run against a fake native model: no addon is needed (and none may be loaded).
import { afterAll, describe, expect, it } from 'vitest';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Model, TorchSaliencyError, loadModel } from '../../lib/index.js';
import type { NativeModel, NativeTensor } from '../../lib/native.js';

// Should anything reach for the addon, it fails loudly instead of silently using a build.
process.env.TORCH_SALIENCY_ADDON = '/nonexistent/torch_saliency.node';

async function rejection(p: Promise<unknown>): Promise<TorchSaliencyError> {
  const e = await p.then(
    () => {
      throw new Error('expected a rejection');
    },
    (err: unknown) => err,
  );
  expect(e).toBeInstanceOf(TorchSaliencyError);
  return e as TorchSaliencyError;
}

// A file that exists (loadModel refuses a path naming no file before the native call) and is never read.
const MODEL_DIR = mkdtempSync(join(tmpdir(), 'ts-model-options-'));
const MODEL = join(MODEL_DIR, 'never-read.pt');
writeFileSync(MODEL, '');
afterAll(() => rmSync(MODEL_DIR, { recursive: true, force: true }));

describe('loadModel option errors (before the native call)', () => {
  const cases: [string, unknown, unknown, string, string][] = [
    ['a number as the model', 42, {}, 'ERR_INVALID_ARG_TYPE', 'model'],
    ['an empty path', '', {}, 'ERR_INVALID_ARG_TYPE', 'model'],
    ['a path naming no file', join(MODEL_DIR, 'missing.pt'), {}, 'ERR_MODEL_NOT_FOUND', 'model'],
    ['a folder as the model', MODEL_DIR, {}, 'ERR_MODEL_NOT_FOUND', 'model'],
    ['options not an object', MODEL, 'cpu', 'ERR_INVALID_ARG_TYPE', 'options'],
    ['a misspelt option', MODEL, { devise: 'cpu' }, 'ERR_INVALID_ARG_VALUE', 'options.devise'],
    ['an unknown device', MODEL, { device: 'tpu' }, 'ERR_INVALID_ARG_VALUE', 'options.device'],
    ['a device of the wrong type', MODEL, { device: 0 }, 'ERR_INVALID_ARG_VALUE', 'options.device'],
    ['fractional threads', MODEL, { threads: 1.5 }, 'ERR_OUT_OF_RANGE', 'options.threads'],
    ['negative threads', MODEL, { threads: -1 }, 'ERR_OUT_OF_RANGE', 'options.threads'],
    ['mean without std', MODEL, { mean: [0.5, 0.5, 0.5] }, 'ERR_INVALID_ARG_VALUE', 'options.std'],
    ['std without mean', MODEL, { std: [0.5, 0.5, 0.5] }, 'ERR_INVALID_ARG_VALUE', 'options.mean'],
    ['mean and std of different lengths', MODEL, { mean: [0.5, 0.5, 0.5], std: [0.2] }, 'ERR_INVALID_ARG_VALUE', 'options.std'],
    ['a zero std', MODEL, { mean: [0, 0, 0], std: [1, 0, 1] }, 'ERR_OUT_OF_RANGE', 'options.std[1]'],
    ['a non-number in mean', MODEL, { mean: [0, 'a', 0], std: [1, 1, 1] }, 'ERR_INVALID_ARG_TYPE', 'options.mean[1]'],
    ['labels of the wrong type', MODEL, { labels: 3 }, 'ERR_INVALID_ARG_TYPE', 'options.labels'],
    ['an empty label', MODEL, { labels: ['a', ''] }, 'ERR_INVALID_ARG_TYPE', 'options.labels[1]'],
    ['a missing labels file', MODEL, { labels: '/nonexistent/labels.txt' }, 'ERR_INVALID_ARG_VALUE', 'options.labels'],
  ];
  for (const [what, source, options, code, argument] of cases) {
    it(`rejects ${what}`, async () => {
      const e = await rejection(loadModel(source as string, options as object));
      expect([e.code, e.argument]).toEqual([code, argument]);
      if (code !== 'ERR_INVALID_ARG_VALUE' || argument !== 'options.labels')
        expect(e.message).toMatch(new RegExp(`^Expected .+ for ${argument.replace(/[[\]]/g, '\\$&')} but received `));
    });
  }
});

/** A fake native model with 4 classes whose logits for image i are [i, 0, 3 - i, 1]. */
function fakeNative(calls: { jobImage?: number[]; jobTarget?: number[]; predictShapes: number[][] }): NativeModel {
  return {
    async predict(data: Float32Array, shape: number[]): Promise<NativeTensor> {
      calls.predictShapes.push(shape);
      const out = new Float32Array(shape[0] * 4);
      for (let i = 0; i < shape[0]; i++) out.set([i, 0, 3 - i, 1], i * 4);
      return { data: out, shape: [shape[0], 4] };
    },
    async explain(_options, _data, shape, jobImage, jobTarget) {
      calls.jobImage = jobImage;
      calls.jobTarget = jobTarget;
      const maps = new Float32Array(jobImage.length * shape[2] * shape[3]);
      return { maps: { data: maps, shape: [jobImage.length, shape[2], shape[3]] }, outputs: {} };
    },
    layerShapes: async () => [],
    layers: () => ['features'],
    info: () => ({ device: 'cpu', inputChannels: 3, parameters: 1, torchVersion: 'fake' }),
    requiresGrad: () => [],
    parameterLayers: () => [],
    cloneReinitialized: async () => fakeNative(calls),
    dispose() {},
    disposed: false,
  };
}

const image = (k = 0) => ({ data: new Float32Array(3 * 2 * 2).fill(k), channels: 3, height: 2, width: 2 });

describe('predict and explain in JS (fake native model)', () => {
  it('predict turns logits into probabilities and a ranked top list with labels', async () => {
    const calls = { predictShapes: [] as number[][] };
    const model = new Model(fakeNative(calls), ['a', 'b', 'c', 'd']);
    const [p0, p1] = await model.predict([image(), image()], { top: 2 });
    expect(calls.predictShapes).toEqual([[2, 3, 2, 2]]);
    expect(Array.from(p0.logits)).toEqual([0, 0, 3, 1]);
    const z = 2 + Math.exp(3) + Math.exp(1);
    expect(p0.probabilities[2]).toBeCloseTo(Math.exp(3) / z, 6);
    expect(p0.probabilities.reduce((s, x) => s + x, 0)).toBeCloseTo(1, 6);
    expect(p0.top.map((t) => [t.index, t.label])).toEqual([
      [2, 'c'],
      [3, 'd'],
    ]);
    expect(p1.top[0].index).toBe(2); // logits [1, 0, 2, 1]
    const single = await model.predict(image());
    expect(single.top).toHaveLength(4); // default 5, capped at the number of classes
    const raw = await model.predict({ data: new Float32Array(2 * 3 * 2 * 2), shape: [2, 3, 2, 2] });
    expect(raw).toHaveLength(2);
  });

  it('predict rejects bad input before the native call', async () => {
    const calls = { predictShapes: [] as number[][] };
    const model = new Model(fakeNative(calls));
    const cases: [unknown, unknown, string, string][] = [
      [image(), { top: -1 }, 'ERR_OUT_OF_RANGE', 'options.top'],
      [image(), { tpo: 1 }, 'ERR_INVALID_ARG_VALUE', 'options.tpo'],
      [[], {}, 'ERR_INVALID_ARG_VALUE', 'image'],
      [{ data: [1, 2, 3], channels: 3, height: 1, width: 1 }, {}, 'ERR_INVALID_ARG_TYPE', 'image.data'],
      [{ data: new Float32Array(12), channels: 3, height: 2, width: 3 }, {}, 'ERR_INPUT_SHAPE', 'image.data'],
      [{ data: new Float32Array(12), shape: [12] }, {}, 'ERR_INPUT_SHAPE', 'image.shape'],
      [{ data: new Float32Array(12), shape: [1, 3, 2, 3] }, {}, 'ERR_INPUT_SHAPE', 'image.data'],
      [[image(), { data: new Float32Array(3), channels: 3, height: 1, width: 1 }], {}, 'ERR_INPUT_SHAPE', 'image[1]'],
      [null, {}, 'ERR_INVALID_ARG_TYPE', 'image'],
    ];
    for (const [input, options, code, argument] of cases) {
      const e = await rejection(model.predict(input as never, options as never));
      expect([e.code, e.argument], JSON.stringify({ options, code })).toEqual([code, argument]);
    }
    const rank = await rejection(model.predict({ data: new Float32Array(12), shape: [12] }));
    expect(rank.message).toBe('Expected a shape of rank 3 [channels, height, width] for image.shape but received rank 1');
    const size = await rejection(model.predict([image(), { data: new Float32Array(3), channels: 3, height: 1, width: 1 }]));
    expect(size.message).toMatch(/^Expected every image in one call to be 3 x 2 x 2 for image\[1\] but received 3 x 1 x 1/);
    expect(calls.predictShapes).toEqual([]);
  });

  it('explain resolves targets once, in JS: indices, labels, top-1 and top-k from one prediction of the images', async () => {
    const calls: { jobImage?: number[]; jobTarget?: number[]; predictShapes: number[][] } = { predictShapes: [] };
    const model = new Model(fakeNative(calls), ['a', 'b', 'c', 'd']);
    const method = 'gradient';
    await model.explain(image(), { method });
    expect([calls.jobImage, calls.jobTarget]).toEqual([[0], [2]]); // logits [0, 0, 3, 1]
    expect(calls.predictShapes).toEqual([[1, 3, 2, 2]]);
    await model.explain(image(), { method, target: [1, 'd'] }); // several targets for one image
    expect([calls.jobImage, calls.jobTarget]).toEqual([
      [0, 0],
      [1, 3],
    ]);
    // Explicit targets need no prediction once the number of classes is known.
    expect(calls.predictShapes).toHaveLength(1);
    await model.explain([image(), image()], { method, target: ['b', [0, 'top-1']] }); // one entry per image
    expect([calls.jobImage, calls.jobTarget]).toEqual([
      [0, 1, 1],
      [1, 0, 2],
    ]);
    expect(calls.predictShapes.at(-1)).toEqual([2, 3, 2, 2]);
    const r = await model.explain([image(), image()], { method, target: 'top-2' });
    // logits: image 0 [0, 0, 3, 1] -> 2, 3; image 1 [1, 0, 2, 1] -> 2 then 0 or 3 (tie at 1, stable order keeps 0)
    expect([calls.jobImage, calls.jobTarget]).toEqual([
      [0, 0, 1, 1],
      [2, 3, 2, 0],
    ]);
    expect(r.targets.map((t) => t.label)).toEqual(['c', 'd', 'c', 'a']);
    expect(r.maps).toHaveLength(4);
    // In chunks of batchSize when it is set.
    calls.predictShapes.length = 0;
    await model.explain([image(), image(), image()], { method, target: 'top-1', batchSize: 2 });
    expect(calls.predictShapes).toEqual([
      [2, 3, 2, 2],
      [1, 3, 2, 2],
    ]);
  });

  it('explain asks for the number of classes once, with one image, when every target is a class index', async () => {
    const calls = { predictShapes: [] as number[][] };
    const model = new Model(fakeNative(calls));
    await model.explain([image(), image()], { method: 'gradient', target: [1, 2] });
    await model.explain([image(), image()], { method: 'gradient', target: 3 });
    expect(calls.predictShapes).toEqual([[1, 3, 2, 2]]);
    const e = await rejection(model.explain(image(), { method: 'gradient', target: 4 }));
    expect([e.code, e.argument, e.message]).toEqual([
      'ERR_OUT_OF_RANGE',
      'options.target',
      'Expected a class index in [0, 3] for options.target but received 4',
    ]);
  });

  it('explain rejects bad targets and options with the argument named', async () => {
    const calls = { predictShapes: [] as number[][] };
    const model = new Model(fakeNative(calls), ['a', 'b', 'c', 'd']);
    const unlabelled = new Model(fakeNative(calls));
    const method = 'gradient';
    const cases: [Model, unknown, Record<string, unknown>, string, string, RegExp?][] = [
      [
        model,
        image(),
        { method, target: -1 },
        'ERR_OUT_OF_RANGE',
        'options.target',
        /^Expected a class index \(an integer >= 0\) for options.target but received -1$/,
      ],
      [model, image(), { method, target: 1.5 }, 'ERR_OUT_OF_RANGE', 'options.target'],
      [model, image(), { method, target: 'zebra' }, 'ERR_INVALID_ARG_VALUE', 'options.target', /one of the model's 4 labels/],
      [unlabelled, image(), { method, target: 'zebra' }, 'ERR_INVALID_ARG_VALUE', 'options.target', /the model has no labels/],
      [model, image(), { method, target: 'top-0' }, 'ERR_OUT_OF_RANGE', 'options.target'],
      [model, image(), { method, target: 'top-9' }, 'ERR_OUT_OF_RANGE', 'options.target', /k <= 4/],
      [model, image(), { method, target: true }, 'ERR_INVALID_ARG_TYPE', 'options.target'],
      [model, image(), { method, target: [0, 'zebra'] }, 'ERR_INVALID_ARG_VALUE', 'options.target[1]'],
      [model, [image(), image()], { method, target: [0, [1, 'zebra']] }, 'ERR_INVALID_ARG_VALUE', 'options.target[1][1]'],
      [model, [image(), image()], { method, target: [0, 1, 2] }, 'ERR_INVALID_ARG_VALUE', 'options.target'],
      [model, [image(), image()], { method, target: [0, -2] }, 'ERR_OUT_OF_RANGE', 'options.target[1]'],
      [model, image(), { method: 'no-such-method' }, 'ERR_INVALID_ARG_VALUE', 'options.method'],
      [model, image(), {}, 'ERR_INVALID_ARG_TYPE', 'options.method'],
      [model, image(), { method, batchSize: -1 }, 'ERR_OUT_OF_RANGE', 'options.batchSize'],
      [model, image(), { method, smooth: 2 }, 'ERR_OUT_OF_RANGE', 'options.smooth'],
      [model, image(), { method, resize: 0 }, 'ERR_OUT_OF_RANGE', 'options.resize'],
      [model, image(), { method, signal: {} }, 'ERR_INVALID_ARG_TYPE', 'options.signal'],
      [model, image(), { method, onProgress: 3 }, 'ERR_INVALID_ARG_TYPE', 'options.onProgress'],
      [model, image(), { method, bogus: 1 }, 'ERR_INVALID_ARG_VALUE', 'options.bogus'],
    ];
    for (const [m, input, options, code, argument, message] of cases) {
      const e = await rejection(m.explain(input as never, options as never));
      expect([e.code, e.argument], JSON.stringify(options)).toEqual([code, argument]);
      if (message) expect(e.message).toMatch(message);
    }
  });

  it('an aborted signal rejects with ABORT_ERR before the native call', async () => {
    const calls: { jobImage?: number[]; predictShapes: number[][] } = { predictShapes: [] };
    const model = new Model(fakeNative(calls));
    const e = await rejection(model.explain(image(), { method: 'gradient', target: 0, signal: AbortSignal.abort('stop') }));
    expect([e.code, e.name]).toEqual(['ABORT_ERR', 'AbortError']);
    expect(calls.jobImage).toBeUndefined();
  });

  it('dispose is idempotent and later calls get ERR_DISPOSED', async () => {
    const model = new Model(fakeNative({ predictShapes: [] }));
    model.dispose();
    model.dispose();
    expect(model.disposed).toBe(true);
    const e = await rejection(model.predict(image()));
    expect(e.code).toBe('ERR_DISPOSED');
    expect(() => model.layers()).toThrow(expect.objectContaining({ code: 'ERR_DISPOSED' }));
    expect(() => model.info()).toThrow(expect.objectContaining({ code: 'ERR_DISPOSED' }));
  });

  it('labels come from a file, one per line, blank lines skipped', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'ts-labels-'));
    try {
      writeFileSync(join(dir, 'labels.txt'), 'cat\r\ndog\n\n  bird \n');
      // The labels are read before the native load, which then fails (no addon here): the labels error
      // would have come first, so reaching ERR_NATIVE_LOAD proves the file was accepted.
      const e = await rejection(loadModel(MODEL, { labels: join(dir, 'labels.txt') }));
      expect(e.code).toBe('ERR_NATIVE_LOAD');
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

afterAll(() => {
  delete process.env.TORCH_SALIENCY_ADDON;
});
