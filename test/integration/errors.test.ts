// Every bad input gets a TorchSaliencyError with its code and argument, never a crash, and the model
// stays usable after a failed call.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadModel, readImage, runtime, type Model } from '../../lib/index.js';
import { expectClose, golden, goldenImage, model, rejection, ROOT } from './helpers.js';

const dir = mkdtempSync(join(tmpdir(), 'ts-errors-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('loadModel errors', () => {
  it('a missing file', async () => {
    const e = await rejection(loadModel(join(dir, 'missing.pt'), { device: 'cpu' }));
    expect([e.code, e.argument]).toEqual(['ERR_MODEL_NOT_FOUND', 'model']);
    expect(e.message).toMatch(/missing\.pt': the file does not exist/);
    // A folder is no model file either.
    expect((await rejection(loadModel(dir, { device: 'cpu' }))).code).toBe('ERR_MODEL_NOT_FOUND');
  });

  it('a file that is not a TorchScript archive', async () => {
    const e = await rejection(loadModel(join(ROOT, 'package.json'), { device: 'cpu' }));
    expect([e.code, e.argument]).toEqual(['ERR_MODEL_LOAD', 'model']);
    expect(e.message).toMatch(/not a TorchScript archive/);
  });

  it('a truncated archive, from a file and from a Buffer', async () => {
    const bytes = readFileSync(model('tiny_cnn_traced.pt'));
    const half = join(dir, 'half.pt');
    writeFileSync(half, bytes.subarray(0, bytes.length >> 1));
    for (const source of [half, bytes.subarray(0, bytes.length >> 1)]) {
      const e = await rejection(loadModel(source, { device: 'cpu' }));
      expect([e.code, e.argument]).toEqual(['ERR_MODEL_LOAD', 'model']);
      expect(e.message).toMatch(/truncated or corrupt/);
    }
  });

  it('a corrupt archive (bytes overwritten in the middle)', async () => {
    const bytes = Buffer.from(readFileSync(model('tiny_cnn_traced.pt')));
    bytes.fill(0x5a, bytes.length - 200, bytes.length - 40); // the zip's central directory
    const e = await rejection(loadModel(bytes, { device: 'cpu' }));
    expect([e.code, e.argument]).toEqual(['ERR_MODEL_LOAD', 'model']);
  });

  it('a torch.save() checkpoint, with the way to export instead', async () => {
    const e = await rejection(loadModel(model('checkpoint_state_dict.pth'), { device: 'cpu' }));
    expect([e.code, e.argument]).toEqual(['ERR_MODEL_LOAD', 'model']);
    expect(e.message).toMatch(/torch\.save\(\) checkpoint, not a TorchScript export \(use torch\.jit\.trace or torch\.jit\.script/);
  });

  it('an unknown device', async () => {
    for (const device of ['tpu', 'cuda:x', 'CPU']) {
      const e = await rejection(loadModel(model('tiny_cnn_traced.pt'), { device: device as never }));
      expect([e.code, e.argument]).toEqual(['ERR_INVALID_ARG_VALUE', 'options.device']);
    }
  });

  it('CUDA asked where there is none: ERR_CUDA_UNAVAILABLE (or a device index out of range on a GPU machine)', async () => {
    if (!runtime().cudaAvailable) {
      for (const device of ['cuda', 'cuda:0'] as const) {
        const e = await rejection(loadModel(model('tiny_cnn_traced.pt'), { device }));
        expect([e.code, e.argument]).toEqual(['ERR_CUDA_UNAVAILABLE', 'options.device']);
        expect(e.message).toMatch(/use device 'cpu' or 'auto'/);
      }
      await using auto = await loadModel(model('tiny_cnn_traced.pt'), { device: 'auto' });
      expect(auto.device).toBe('cpu');
    } else {
      const e = await rejection(loadModel(model('tiny_cnn_traced.pt'), { device: `cuda:${runtime().cudaDevices}` }));
      expect([e.code, e.argument]).toEqual(['ERR_OUT_OF_RANGE', 'options.device']);
    }
  });

  it('an image given as the model', async () => {
    const png = join(ROOT, 'test', 'fixtures', 'models', 'checkpoint_state_dict.pth');
    expect((await rejection(loadModel(Buffer.from('\x89PNG\r\n\x1a\n not really'), { device: 'cpu' }))).code).toBe('ERR_MODEL_LOAD');
    expect((await rejection(readImage(png))).code).toBe('ERR_IMAGE_DECODE');
  });
});

describe('input errors on a loaded model', () => {
  let m: Model;
  let mlp: Model;
  beforeAll(async () => {
    m = await loadModel(model('tiny_cnn_traced.pt'), { device: 'cpu' });
    mlp = await loadModel(model('fixed_mlp_traced.pt'), { device: 'cpu' });
  });
  afterAll(() => {
    m.dispose();
    mlp.dispose();
  });

  async function stillWorks() {
    expectClose((await m.predict(goldenImage(0))).logits, golden.logits[0]);
  }

  it('wrong rank: expected and got in the message', async () => {
    const e = await rejection(m.predict({ data: new Float32Array(3 * 32), shape: [3, 32] }));
    expect([e.code, e.argument]).toEqual(['ERR_INPUT_SHAPE', 'image.shape']);
    expect(e.message).toBe('Expected a shape of rank 3 [channels, height, width] for image.shape but received rank 2');
    await stillWorks();
  });

  it('wrong channels: expected and got in the message', async () => {
    const e = await rejection(m.predict(goldenImage(0, 1, 32, 32)));
    expect([e.code, e.argument]).toEqual(['ERR_INPUT_SHAPE', 'image']);
    expect(e.message).toMatch(/expected 3 channels but received 1/);
    await stillWorks();
    await using normed = await loadModel(model('tiny_cnn_traced.pt'), { device: 'cpu', mean: golden.mean, std: golden.std });
    const n = await rejection(normed.predict(goldenImage(0, 4, 32, 32)));
    expect([n.code, n.argument]).toEqual(['ERR_INPUT_SHAPE', 'image']);
    expect(n.message).toMatch(/Expected 3 channels .* but received 4/);
  });

  it('wrong size for a fixed-size model: the shape given and the mismatch in the message', async () => {
    const e = await rejection(mlp.predict(goldenImage(0, 3, 32, 32)));
    expect([e.code, e.argument]).toEqual(['ERR_INPUT_SHAPE', 'image']);
    expect(e.message).toMatch(/\[1, 3, 32, 32\]/);
    expect(e.message).toMatch(/768/); // the 3 x 16 x 16 features the model expects
    expectClose((await mlp.predict(goldenImage(0, 3, 16, 16))).logits, golden.fixedMlp.logits[0]);
  });

  it('data that does not match the stated size, and mixed sizes in one call', async () => {
    const e = await rejection(m.predict({ data: new Float32Array(10), channels: 3, height: 32, width: 32 }));
    expect([e.code, e.argument]).toEqual(['ERR_INPUT_SHAPE', 'image.data']);
    expect(e.message).toBe('Expected 3072 values (3 x 32 x 32) for image.data but received 10');
    const mixed = await rejection(m.predict([goldenImage(0), goldenImage(0, 3, 16, 16)]));
    expect([mixed.code, mixed.argument]).toEqual(['ERR_INPUT_SHAPE', 'image[1]']);
    await stillWorks();
  });

  it('a Buffer that is not an image', async () => {
    const e = await rejection(readImage(readFileSync(model('tiny_cnn_traced.pt'))));
    expect([e.code, e.argument]).toEqual(['ERR_IMAGE_DECODE', 'image']);
  });

  it('many failed calls in a row, concurrently with good ones, leave the model working', async () => {
    const bad = Array.from({ length: 8 }, () =>
      m.predict(goldenImage(0, 1, 32, 32)).then(
        () => 'resolved',
        (e) => e.code,
      ),
    );
    const good = Array.from({ length: 8 }, (_, i) => m.predict(goldenImage(i % 4)));
    expect(await Promise.all(bad)).toEqual(Array(8).fill('ERR_INPUT_SHAPE'));
    (await Promise.all(good)).forEach((p, i) => expectClose(p.logits, golden.logits[i % 4]));
  });
});
