// Inputs and options that scale memory are capped with typed errors before anything large is allocated:
// decoded pixels (readImage's limitInputPixels), map size (resize), the number of areas; and a call with
// no target at all is a typed error, not a raw libtorch one.
import { deflateSync } from 'node:zlib';
import { describe, expect, it } from 'vitest';
import { loadModel, readImage } from '../../lib/index.js';
import { expectClose, goldenImage, model, rejection } from './helpers.js';

function crc32(bytes: Buffer): number {
  let c = ~0;
  for (const b of bytes) {
    c ^= b;
    for (let k = 0; k < 8; k++) c = (c >>> 1) ^ (0xedb88320 & -(c & 1));
  }
  return ~c >>> 0;
}

function chunk(type: string, data: Buffer): Buffer {
  const body = Buffer.concat([Buffer.from(type, 'latin1'), data]);
  const out = Buffer.alloc(12 + data.length);
  out.writeUInt32BE(data.length, 0);
  body.copy(out, 4);
  out.writeUInt32BE(crc32(body), 8 + data.length);
  return out;
}

/** A grey 8-bit PNG of width x height; `rows` rows of pixel data (all of them for a valid image, fewer for a header that lies). */
export function greyPNG(width: number, height: number, rows = height): Buffer {
  const ihdr = Buffer.alloc(13);
  ihdr.writeUInt32BE(width, 0);
  ihdr.writeUInt32BE(height, 4);
  ihdr[8] = 8; // bit depth
  ihdr[9] = 0; // grey
  const raw = Buffer.alloc(rows * (width + 1), 0x80);
  for (let y = 0; y < rows; y++) raw[y * (width + 1)] = 0; // filter: none
  return Buffer.concat([
    Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]),
    chunk('IHDR', ihdr),
    chunk('IDAT', deflateSync(raw)),
    chunk('IEND', Buffer.alloc(0)),
  ]);
}

describe('decoded pixels', () => {
  it('a 16000 x 16000 PNG header is ERR_IMAGE_TOO_LARGE at the default limit, saying the limit and its option', async () => {
    const e = await rejection(readImage(greyPNG(16000, 16000, 4)));
    expect(e.code).toBe('ERR_IMAGE_TOO_LARGE');
    expect(e.message).toContain('16000 x 16000');
    expect(e.message).toContain('50000000 pixels (options.limitInputPixels)');
  });

  it('7100 x 7100 (50.4 megapixels) is refused by default and decodes, resized while decoding, with the limit raised', async () => {
    const png = greyPNG(7100, 7100);
    expect((await rejection(readImage(png, { size: 32 }))).code).toBe('ERR_IMAGE_TOO_LARGE');
    const im = await readImage(png, { size: 32, limitInputPixels: 60_000_000 });
    expect([im.channels, im.height, im.width]).toEqual([3, 32, 32]);
    expect(Math.abs(im.data[0] - 0x80 / 255)).toBeLessThan(0.01);
  });
});

describe('options that scale memory', () => {
  it('resize above the image and above 4096 x 4096 pixels is ERR_OUT_OF_RANGE before the run', async () => {
    await using m = await loadModel(model('tiny_cnn_traced.pt'), { device: 'cpu' });
    for (const resize of [[16384, 16384], 5000] as const) {
      const e = await rejection(m.explain(goldenImage(0), { method: 'gradient', target: 0, resize }));
      expect(e.code).toBe('ERR_OUT_OF_RANGE');
      expect(e.argument).toBe('options.resize');
      expect(e.message).toContain('4096 x 4096');
    }
    const r = await m.explain(goldenImage(0), { method: 'gradient', target: 0, resize: 64 });
    expect([r.maps[0].height, r.maps[0].width]).toEqual([64, 64]);
  });

  it('more than 64 areas is ERR_OUT_OF_RANGE', async () => {
    await using m = await loadModel(model('tiny_cnn_traced.pt'), { device: 'cpu' });
    const areas = Array.from({ length: 1000 }, (_, i) => 0.01 + (0.9 * i) / 1000);
    const e = await rejection(m.explain(goldenImage(0), { method: 'extremal-perturbation', target: 0, maxIter: 1, areas }));
    expect(e.code).toBe('ERR_OUT_OF_RANGE');
    expect(e.argument).toBe('options.areas');
  });
});

describe('targets', () => {
  it('no target at all (target: [] or one empty list per image) is ERR_INVALID_ARG_VALUE, not ERR_TORCH', async () => {
    await using m = await loadModel(model('tiny_cnn_traced.pt'), { device: 'cpu' });
    for (const [input, target] of [
      [goldenImage(0), []],
      [
        [goldenImage(0), goldenImage(1)],
        [[], []],
      ],
    ] as const) {
      for (const method of ['gradient', 'rise', 'extremal-perturbation'] as const) {
        const e = await rejection(
          m.explain(input as never, { method, target: target as never, ...(method === 'extremal-perturbation' ? { maxIter: 1 } : {}) }),
        );
        expect(e.code, e.message).toBe('ERR_INVALID_ARG_VALUE');
        expect(e.argument).toBe('options.target');
      }
    }
  });
});

describe('inputs too small for the model', () => {
  it("an image smaller than the model's pooling is ERR_INPUT_SHAPE (the caller's), keeping libtorch's sizes", async () => {
    await using m = await loadModel(model('tiny_cnn_traced.pt'), { device: 'cpu' });
    const tiny = { data: new Float32Array(3), channels: 3, height: 1, width: 1 };
    for (const call of [() => m.predict(tiny), () => m.explain(tiny, { method: 'gradient', target: 0 })]) {
      const e = await rejection(call());
      expect(e.code, e.message).toBe('ERR_INPUT_SHAPE');
      expect(e.argument).toBe('image');
      expect(e.message).toContain('Output size is too small');
      expect(e.message).toContain('Given input size');
    }
  });
});

describe('pixels into the model', () => {
  it("an image over loadModel's maxInputPixels (default 2048 x 2048) is ERR_IMAGE_TOO_LARGE before the model; the option sets it", async () => {
    await using m = await loadModel(model('tiny_cnn_traced.pt'), { device: 'cpu' });
    const big = { data: new Float32Array(3 * 2049 * 2048), channels: 3, height: 2049, width: 2048 };
    for (const call of [() => m.predict(big), () => m.explain(big, { method: 'gradient', target: 0 }), () => m.layerShapes([4000, 4000])]) {
      const e = await rejection(call());
      expect(e.code, e.message).toBe('ERR_IMAGE_TOO_LARGE');
      expect(e.message).toContain('maxInputPixels');
    }
    await using small = await loadModel(model('tiny_cnn_traced.pt'), { device: 'cpu', maxInputPixels: 100 });
    expect((await small.predict(goldenImage(0, 3, 10, 10))).logits.length).toBe(5);
    expect((await rejection(small.predict(goldenImage(0, 3, 11, 10)))).code).toBe('ERR_IMAGE_TOO_LARGE');
    await expect(loadModel(model('tiny_cnn_traced.pt'), { maxInputPixels: 0 })).rejects.toMatchObject({
      code: 'ERR_OUT_OF_RANGE',
      argument: 'options.maxInputPixels',
    });
  });
});

describe('many images in one call', () => {
  // Without batchSize a call's images go through the model in parts, so that the model's activations do not
  // grow with the number of images; the results are those of one image at a time.
  it('predict sends at most 32 images (fewer for large ones) to the model at once, with the per-image logits', async () => {
    await using m = await loadModel(model('tiny_cnn_traced.pt'), { device: 'cpu' });
    const images = Array.from({ length: 70 }, (_, i) => goldenImage(i % 2));
    const native = m.handle();
    const real = native.predict.bind(native);
    const batches: number[] = [];
    const spy: typeof real = (data, shape) => (batches.push(shape[0]), real(data, shape));
    Object.defineProperty(native, 'predict', { value: spy });
    const all = await m.predict(images, { top: 0 });
    expect(batches.reduce((a, b) => a + b, 0)).toBe(70);
    expect(Math.max(...batches)).toBeLessThanOrEqual(32);
    for (const b of [0, 1]) expectClose(all[b + 68].logits, (await m.predict(goldenImage(b), { top: 0 })).logits);
    batches.length = 0;
    // 512 x 512 images: 2^21 pixels make 8 rows.
    await m.predict(
      Array.from({ length: 10 }, () => goldenImage(0, 3, 512, 512)),
      { top: 0 },
    );
    expect(batches).toEqual([8, 2]);
  });

  it('explain without batchSize runs about 2^21 input pixels per batch and gives the maps of one batch', async () => {
    await using m = await loadModel(model('tiny_cnn_traced.pt'), { device: 'cpu' });
    const images = Array.from({ length: 5 }, (_, i) => goldenImage(i % 2, 3, 400, 400));
    const parts = await m.explain(images, { method: 'gradient', target: 0 });
    expect(parts.options.batchSize).toBe(13); // 2,097,152 / 160,000
    const whole = await m.explain(images, { method: 'gradient', target: 0, batchSize: 0 });
    expect(whole.options.batchSize).toBe(0);
    for (let i = 0; i < 5; i++) expectClose(parts.maps[i].data, whole.maps[i].data);
  });
});
