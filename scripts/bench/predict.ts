// predict benchmark: the addon against a bare libtorch C++ loop (build/ts_bench_baseline) on the same model,
// measured side by side in one run.
//   1. throughput at batch 1, 8, 32 on a small ResNet-like model (3 x 64 x 64; scripts/fixtures/make_bench_model.py);
//   2. per-call overhead on a tiny model (fixed_mlp: a linear layer on 3 x 16 x 16): addon call time minus
//      the bare forward time.
// Rounds alternate addon and bare so that load changes on a shared machine hit both; medians are reported.
// TS_BENCH_ROUNDS (default 5) sets the rounds. Run: npx tsx scripts/bench/predict.ts
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { loadModel, runtime, type Model } from '../../lib/index.js';

// OpenMP threads spin while they wait for work; where the cores are shared with other busy processes that
// spinning makes both sides erratic (10x swings run to run on a loaded 2-core machine). Both sides run
// with the same OpenMP settings: passive waiting unless the caller chose (set before the addon, and
// with it libgomp, is loaded; the baseline inherits the environment).
process.env.OMP_WAIT_POLICY ??= 'PASSIVE';

const root = join(__dirname, '..', '..');
const baseline = join(root, 'build', 'ts_bench_baseline');
const BIG = join(root, 'test', 'fixtures', 'models', 'bench_resnet_traced.pt');
const TINY = join(root, 'test', 'fixtures', 'models', 'fixed_mlp_traced.pt');
const ROUNDS = Math.max(1, Number(process.env.TS_BENCH_ROUNDS ?? 5));

const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
};

/** ms per forward of the bare libtorch loop (3 warm-up forwards inside, then `iters` timed). */
function bare(model: string, batch: number, size: number, iters: number): number {
  const out = execFileSync(baseline, [model, 'forward', String(batch), String(size), String(iters)], { encoding: 'utf8' });
  return JSON.parse(out.trim().split('\n').pop()!).msPerIter;
}

/** ms per predict call of the addon (after `warmup` calls), same input shape. */
async function addon(model: Model, batch: number, size: number, iters: number, warmup: number): Promise<number> {
  const data = Float32Array.from({ length: batch * 3 * size * size }, () => Math.random());
  const input = { data, shape: [batch, 3, size, size] };
  for (let i = 0; i < warmup; i++) await model.predict(input);
  const t = performance.now();
  for (let i = 0; i < iters; i++) await model.predict(input);
  return (performance.now() - t) / iters;
}

async function main() {
  if (!existsSync(baseline)) throw new Error(`${baseline} is missing: build with npm run build:native`);
  const rt = runtime();
  const omp = process.env.OMP_WAIT_POLICY;
  console.log(`libtorch ${rt.torchVersion}, ${rt.threads} intra-op threads, ${rt.availableCores} cores, OMP_WAIT_POLICY=${omp}, ${ROUNDS} rounds, medians`);
  const results: Record<string, unknown> = { torch: rt.torchVersion, threads: rt.threads, ompWaitPolicy: omp, rounds: ROUNDS };

  // 1. Throughput
  const big = await loadModel(BIG, { device: 'cpu' });
  const size = 64;
  const rows: { batch: number; addonMs: number; bareMs: number; ratio: number }[] = [];
  for (const batch of [1, 8, 32]) {
    const iters = batch === 1 ? 10 : batch === 8 ? 3 : 2;
    const a: number[] = [];
    const b: number[] = [];
    for (let r = 0; r < ROUNDS; r++) {
      a.push(await addon(big, batch, size, iters, r === 0 ? 2 : 1));
      b.push(bare(BIG, batch, size, iters));
    }
    const [addonMs, bareMs] = [median(a), median(b)];
    rows.push({ batch, addonMs, bareMs, ratio: bareMs / addonMs });
  }
  big.dispose();
  console.log('\nthroughput, bench_resnet (3 x 64 x 64, 10 classes):');
  console.log('batch   addon img/s   bare img/s   addon/bare');
  for (const r of rows) {
    console.log(
      `${String(r.batch).padStart(5)}   ${((1000 * r.batch) / r.addonMs).toFixed(1).padStart(11)}   ${((1000 * r.batch) / r.bareMs).toFixed(1).padStart(10)}   ${r.ratio.toFixed(3).padStart(10)}`,
    );
  }
  results.throughput = rows;

  // 2. Per-call overhead
  const tiny = await loadModel(TINY, { device: 'cpu' });
  const calls = 1000;
  const a: number[] = [];
  const n: number[] = [];
  const b: number[] = [];
  const native = tiny.handle();
  const x = Float32Array.from({ length: 3 * 16 * 16 }, () => Math.random());
  for (let r = 0; r < ROUNDS; r++) {
    // After the baseline process of the previous round the first calls run cold: warm up every round.
    a.push(await addon(tiny, 1, 16, calls, 300));
    // the native call alone (no JS validation, batching, softmax or top-k)
    for (let i = 0; i < 100; i++) await native.predict(x, [1, 3, 16, 16]);
    const t = performance.now();
    for (let i = 0; i < calls; i++) await native.predict(x, [1, 3, 16, 16]);
    n.push((performance.now() - t) / calls);
    b.push(bare(TINY, 1, 16, 5000));
  }
  tiny.dispose();
  const [callUs, nativeUs, bareUs] = [median(a) * 1000, median(n) * 1000, median(b) * 1000];
  console.log('\nper-call overhead, fixed_mlp (3 x 16 x 16, one linear layer), sequential awaited calls:');
  console.log(`  bare libtorch forward      ${bareUs.toFixed(1).padStart(8)} us`);
  console.log(`  addon native predict       ${nativeUs.toFixed(1).padStart(8)} us   (overhead ${(nativeUs - bareUs).toFixed(1)} us)`);
  console.log(`  model.predict (public API) ${callUs.toFixed(1).padStart(8)} us   (overhead ${(callUs - bareUs).toFixed(1)} us; aim < 100 us)`);
  results.overhead = { bareUs, nativeUs, callUs, overheadUs: callUs - bareUs, nativeOverheadUs: nativeUs - bareUs };

  mkdirSync(join(root, 'bench-out'), { recursive: true });
  writeFileSync(join(root, 'bench-out', 'predict.json'), JSON.stringify(results, null, 2) + '\n');
  console.log(`\n${JSON.stringify(results)}`);
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
