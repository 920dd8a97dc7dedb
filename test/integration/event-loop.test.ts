// A long forward runs off the event loop: a 10 ms timer keeps firing on time while it runs.
import { describe, expect, it } from 'vitest';
import { loadModel } from '../../lib/index.js';
import { model } from './helpers.js';

const PERIOD = 10;

/** Runs `work` while a PERIOD ms interval timer ticks; returns the largest lateness of a tick, in ms. */
async function lagDuring(work: () => Promise<unknown>): Promise<{ maxLag: number; ticks: number; elapsed: number }> {
  let ticks = 0;
  let maxLag = 0;
  const start = performance.now();
  let last = start;
  const timer = setInterval(() => {
    const now = performance.now();
    maxLag = Math.max(maxLag, now - last - PERIOD);
    last = now;
    ticks++;
  }, PERIOD);
  try {
    await work();
  } finally {
    clearInterval(timer);
  }
  const end = performance.now();
  maxLag = Math.max(maxLag, end - last - PERIOD); // the gap between the last tick and the end counts too
  return { maxLag, ticks, elapsed: end - start };
}

describe('event loop', () => {
  it('a timer keeps firing (max lag under 50 ms) during a long forward', async () => {
    // A big batch through the benchmark's ResNet-like model (about 60 M multiply-adds per image) makes the
    // forward long while its input stays small (1.5 MB): the check is about the forward, not the copy of
    // the input, which happens on the calling thread (about 1 ms per MB on a busy machine).
    await using m = await loadModel(model('bench_resnet_traced.pt'), { device: 'cpu' });
    const [c, h, w] = [3, 64, 64];
    const make = (count: number) => Float32Array.from({ length: count * c * h * w }, (_, i) => (i % 251) / 251);
    await m.predict({ data: make(1), shape: [1, c, h, w] }); // warm up
    // Grow the batch until one forward takes at least 600 ms on this machine, whatever its speed today (later
    // forwards of the same batch ran up to twice as fast, on a warm allocator).
    let n = 32;
    for (;;) {
      const t = performance.now();
      await m.predict({ data: make(n), shape: [n, c, h, w] });
      if (performance.now() - t >= 600 || n >= 2048) break;
      n *= 2;
    }
    let data = make(n);

    // A blocked event loop shows a lag as long as the forward (hundreds of ms) every time. A machine shared
    // with other busy processes adds scheduling delays of its own: those are measured on an idle window of
    // the same length, and up to five attempts are made. An attempt whose forward came out shorter than
    // 150 ms (the machine's speed swings several-fold under load) proves nothing: the batch is doubled
    // and it does not count.
    const attempts: { busy: number; idle: number; elapsed: number }[] = [];
    const ok = (a: { busy: number; idle: number; elapsed: number }) => a.elapsed > 150 && (a.busy < 50 || a.busy < 50 + a.idle);
    for (let attempt = 0; attempt < 5; attempt++) {
      let out: unknown[] = [];
      const busy = await lagDuring(async () => {
        out = await m.predict({ data, shape: [n, c, h, w] });
      });
      const idle = await lagDuring(() => new Promise((r) => setTimeout(r, busy.elapsed)));
      expect(out).toHaveLength(n);
      // The timer must have run while the forward did.
      expect(busy.ticks).toBeGreaterThanOrEqual(Math.floor(busy.elapsed / (PERIOD + 50 + idle.maxLag)));
      attempts.push({ busy: busy.maxLag, idle: idle.maxLag, elapsed: busy.elapsed });
      if (ok(attempts[attempt])) break;
      if (busy.elapsed <= 150 && n < 4096) {
        n *= 2;
        data = make(n);
      }
    }
    const report = attempts.map((a) => `forward ${a.elapsed.toFixed(0)} ms: max lag ${a.busy.toFixed(1)} ms (idle window: ${a.idle.toFixed(1)} ms)`);
    expect(ok(attempts[attempts.length - 1]), report.join('; ')).toBe(true);
  });
});
