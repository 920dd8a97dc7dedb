/**
 * Input-agnostic saliency and backdoor scanning against the bare model, in one run:
 *   - one class map (defaults: 16 samples x 64 steps, 20 refinement steps) against the same batches through
 *     build/ts_bench_baseline (forward + backward of 16 images x 64, then of 1 image x 21);
 *   - a whole-model scan (6 classes in one batch of 96, plus the flip test's forwards; one pass, seeds: 1) against the same.
 * Both sides run on one core (the baseline binary and this script under `taskset -c 0`, setThreads(1)), in three
 * interleaved rounds; each figure is the minimum over the rounds: on a shared machine the least disturbed one.
 * Run: npx tsx scripts/bench/input-agnostic.ts [--device cpu|cuda] [--json]
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { loadModel, scanBackdoor, setThreads } from '../../lib/index.js';

const root = join(__dirname, '..', '..');
const modelPath = join(root, 'test', 'fixtures', 'backdoor', 'trojan_traced.pt');
const baselineBin = join(root, 'build', 'ts_bench_baseline');
const device = (process.argv.includes('--device') ? process.argv[process.argv.indexOf('--device') + 1] : 'cpu') as 'cpu' | 'cuda';
const SIZE = 32;
const SAMPLES = 16;
const ITERATIONS = 64;
const REFINE = 20;
const TRIALS = 32;

function baseline(mode: 'forward' | 'fwdbwd', batch: number, iters: number, repeats = 3): number {
  if (!existsSync(baselineBin)) throw new Error(`${baselineBin} is missing: npm run build:native`);
  let best = Infinity;
  for (let r = 0; r < repeats; r++) {
    const out = execFileSync('taskset', ['-c', '0', baselineBin, modelPath, mode, String(batch), String(SIZE), String(iters)], { encoding: 'utf8' });
    best = Math.min(best, (JSON.parse(out.trim().split('\n').pop()!) as { msPerIter: number }).msPerIter);
  }
  return best;
}

async function time(fn: () => Promise<unknown>, repeats: number): Promise<number> {
  let best = Infinity;
  for (let i = 0; i < repeats; i++) {
    const t0 = performance.now();
    await fn();
    best = Math.min(best, performance.now() - t0);
  }
  return best;
}

async function main(): Promise<void> {
  setThreads(1);
  const model = await loadModel(modelPath, { device, threads: 1 });
  const classes = (await model.predict({ data: new Float32Array(3 * SIZE * SIZE), channels: 3, height: SIZE, width: SIZE })).logits.length;
  const options = { method: 'input-agnostic', samples: SAMPLES, iterations: ITERATIONS, refineSteps: REFINE } as const;

  const one = () => model.explain(SIZE, { ...options, target: 2 });
  const scan = () => scanBackdoor(model, { size: SIZE, samples: SAMPLES, iterations: ITERATIONS, refineSteps: REFINE, trials: TRIALS, seeds: 1 });
  // The same batches through the bare model. Each baseline figure runs as many iterations as the method runs
  // steps of that batch, so both sides are timed over spans of the same length.
  const oneBare = () => ITERATIONS * baseline('fwdbwd', SAMPLES, ITERATIONS, 1) + REFINE * baseline('fwdbwd', 1, REFINE, 1) + baseline('forward', 1, REFINE, 1);
  const scanBare = () =>
    ITERATIONS * baseline('fwdbwd', SAMPLES * classes, ITERATIONS, 1) +
    REFINE * baseline('fwdbwd', classes, REFINE, 1) +
    baseline('forward', classes, REFINE, 1) +
    (1 + 3 * classes) * baseline('forward', TRIALS, REFINE, 1) + // the inputs, then per class the stamp and its two controls
    2 * baseline('forward', 1, REFINE, 1);
  // Interleaved rounds, the minimum of each side: load that comes and goes hits both alike.
  await one();
  await scan();
  let [oneMs, oneBase, scanMs, scanBase] = [Infinity, Infinity, Infinity, Infinity];
  for (let round = 0; round < 3; round++) {
    oneMs = Math.min(oneMs, await time(one, 1));
    oneBase = Math.min(oneBase, oneBare());
    scanMs = Math.min(scanMs, await time(scan, 1));
    scanBase = Math.min(scanBase, scanBare());
  }
  model.dispose();
  const rows = [
    { case: `one class map (${SAMPLES} samples x ${ITERATIONS} steps + ${REFINE} refinement)`, ms: oneMs, bareMs: oneBase, ratio: oneMs / oneBase },
    {
      case: `whole-model scan (${classes} classes, batch ${SAMPLES * classes}, flip test ${TRIALS} inputs)`,
      ms: scanMs,
      bareMs: scanBase,
      ratio: scanMs / scanBase,
    },
  ];
  if (process.argv.includes('--json')) {
    console.log(JSON.stringify({ bench: 'input-agnostic', device, size: SIZE, rows }));
    return;
  }
  console.log(`input-agnostic on ${device}, ${SIZE} x ${SIZE}, trojan fixture (${classes} classes)`);
  for (const r of rows) console.log(`  ${r.case}: ${r.ms.toFixed(1)} ms, bare forward+backward ${r.bareMs.toFixed(1)} ms, ratio ${r.ratio.toFixed(2)}`);
}

// Pin this process to one core as the baseline is, so both sides see the same machine.
if (!process.env.TS_BENCH_PINNED && spawnSync('taskset', ['-V']).status === 0) {
  const r = spawnSync('taskset', ['-c', '0', process.execPath, ...process.execArgv, ...process.argv.slice(1)], {
    stdio: 'inherit',
    env: { ...process.env, TS_BENCH_PINNED: '1' },
  });
  process.exit(r.status ?? 1);
} else
  main().catch((e) => {
    console.error(e);
    process.exit(1);
  });
