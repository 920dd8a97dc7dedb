// The contract between lib/ and the native binding: the methods both sides know, layer shapes as their own
// call, options the binding cannot carry refused, and a key a method reads but the call lacks reported.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadModel, methods, runtime, type Model } from '../../lib/index.js';
import { goldenImage, model as fixture } from './helpers.js';

let model: Model;
beforeAll(async () => {
  model = await loadModel(fixture('tiny_cnn_traced.pt'), { device: 'cpu' });
});
afterAll(() => model.dispose());

// The options a 'gradient' call sends (result.options): every key its native side reads.
const gradient = { method: 'gradient', batchSize: 0, progressEvery: 10, resize: null, smooth: 0, layer: null, layout: 'auto', prefixTokens: null, grid: null };
const image = goldenImage(0);
const shape = [1, image.channels, image.height, image.width];

describe('the native binding', () => {
  it('knows the same methods as lib/methods, and nothing else', () => {
    expect(runtime().methods).toEqual(methods());
  });

  it('gives layer shapes through a call of their own', async () => {
    const shapes = await model.layerShapes([32, 32]);
    expect(shapes.map((s) => s.name)).toEqual(model.layers().filter((name) => shapes.some((s) => s.name === name)));
    expect(shapes.length).toBeGreaterThan(0);
    for (const { shape } of shapes) expect(shape[0]).toBe(1);
  });

  it('runs a method from the normalised options alone', async () => {
    const r = await model.handle().explain(gradient, image.data, shape, [0], [1]);
    expect(r.maps.shape).toEqual([1, 32, 32]);
    expect(r.outputs).toEqual({});
  });

  it('refuses an option value it cannot carry, naming it', async () => {
    for (const value of [new Float32Array(2), { a: 1 }, [1, 'a'], undefined, () => 1]) {
      const options = { ...gradient, extra: value } as never;
      // Thrown when the call is made, before any work is queued.
      expect(() => model.handle().explain(options, image.data, shape, [0], [1]), String(value)).toThrow(
        expect.objectContaining({
          code: 'ERR_INVALID_ARG_TYPE',
          argument: 'options.extra',
        }),
      );
    }
  });

  it('reports an option the method reads but the call lacks as an internal error, not a default', async () => {
    const { smooth, ...withoutSmooth } = gradient;
    expect(smooth).toBe(0);
    const e = await model
      .handle()
      .explain(withoutSmooth, image.data, shape, [0], [1])
      .catch((err: unknown) => err);
    expect(e).toMatchObject({ code: 'ERR_NATIVE' });
    expect((e as Error).message).toMatch(/option 'smooth'/);
    const wrongType = await model
      .handle()
      .explain({ ...gradient, smooth: 'none' }, image.data, shape, [0], [1])
      .catch((err: unknown) => err);
    expect(wrongType).toMatchObject({ code: 'ERR_NATIVE' });
  });
});
