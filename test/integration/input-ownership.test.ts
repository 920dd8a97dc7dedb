// The input arrays are read when predict/explain is called: changing them afterwards, before the promise
// settles, does not change the result (explain awaits a prediction for 'top-k' targets and predict may wait
// in the batcher, so a view of the caller's array would be read late).
import { describe, expect, it } from 'vitest';
import { loadModel } from '../../lib/index.js';
import { goldenImage, model } from './helpers.js';

describe('input ownership', () => {
  it('explain and predict give the results of the arrays as they were at the call', async () => {
    await using m = await loadModel(model('tiny_cnn_traced.pt'), { device: 'cpu' });
    const expected = await m.explain(goldenImage(0), { method: 'gradient' });
    const expectedBatch = await m.explain(
      { data: Float32Array.from([...goldenImage(0).data, ...goldenImage(1).data]), shape: [2, 3, 32, 32] },
      { method: 'gradient' },
    );
    const expectedPrediction = await m.predict(goldenImage(0));

    const single = goldenImage(0);
    const p1 = m.explain(single, { method: 'gradient' });
    single.data.fill(0);
    const batch = { data: Float32Array.from([...goldenImage(0).data, ...goldenImage(1).data]), shape: [2, 3, 32, 32] as [number, number, number, number] };
    const p2 = m.explain(batch, { method: 'gradient' });
    batch.data.fill(1);
    const forPredict = goldenImage(0);
    const busy = m.predict(goldenImage(1)); // the batcher is busy: the next one waits
    const p3 = m.predict(forPredict);
    forPredict.data.fill(0.25);
    const [r1, r2, r3] = await Promise.all([p1, p2, p3, busy]);
    expect(Array.from(r1.maps[0].data)).toEqual(Array.from(expected.maps[0].data));
    expect(r2.maps.map((x) => Array.from(x.data))).toEqual(expectedBatch.maps.map((x) => Array.from(x.data)));
    expect(Array.from(r3.logits)).toEqual(Array.from(expectedPrediction.logits));
  });
});
