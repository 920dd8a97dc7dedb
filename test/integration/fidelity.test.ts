import { describe, expect, it } from 'vitest';
import { join } from 'node:path';
import { loadModel } from '../../lib/index.js';
import { fidelity } from '../../lib/evaluate/fidelity.js';

const root = join(__dirname, '..', 'fixtures');

describe('deletion and insertion fidelity', () => {
  it('starts and ends at the probabilities of the original and of the baseline images', async () => {
    const model = await loadModel(join(root, 'models', 'tiny_cnn_traced.pt'), { device: 'cpu' });
    const [h, w] = [32, 32];
    const data = Float32Array.from({ length: 3 * h * w }, (_, i) => 0.5 + 0.5 * Math.sin(0.1 * i));
    const image = { data, channels: 3, height: h, width: w };
    const map = { data: Float32Array.from({ length: h * w }, (_, i) => i % 7), height: h, width: w };
    const target = 2;
    const r = await fidelity(model, image, map, target, { steps: 8, deletionBaseline: 'zero', insertionBaseline: 'zero' });
    const original = (await model.predict(image)).probabilities[target];
    const black = (await model.predict({ ...image, data: new Float32Array(data.length) })).probabilities[target];
    expect(r.deletion.probabilities[0]).toBeCloseTo(original, 5);
    expect(r.deletion.probabilities[8]).toBeCloseTo(black, 5);
    expect(r.insertion.probabilities[0]).toBeCloseTo(black, 5);
    expect(r.insertion.probabilities[8]).toBeCloseTo(original, 5);
    // The area is the trapezoid rule over the curve.
    const p = r.deletion.probabilities;
    let area = 0;
    for (let i = 1; i < p.length; i++) area += (p[i] + p[i - 1]) / 2 / 8;
    expect(r.deletion.auc).toBeCloseTo(area, 6);
    model.dispose();
  });
});
