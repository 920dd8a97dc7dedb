// Run by fork-safety.test.ts in its own process, so that a hang can be killed from outside: extremal
// perturbations on the bench ResNet (threaded BLAS-sized convolutions) while the event loop spawns a
// short-lived child every 5 ms. Prints one JSON line {"runs","spawns"} and exits 0 when all runs finished.
import { spawn } from 'node:child_process';
import { join } from 'node:path';
import { loadModel } from '../../../lib/index.js';

const ROOT = join(__dirname, '..', '..', '..');
const RUNS = Number(process.argv[2] ?? 4);

async function main() {
  await using m = await loadModel(join(ROOT, 'test', 'fixtures', 'models', 'bench_resnet_traced.pt'), { device: 'cpu' });
  const size = 64;
  const data = Float32Array.from({ length: 3 * size * size }, (_, i) => 0.5 + 0.5 * Math.sin(0.05 * i));
  const image = { data, channels: 3, height: size, width: size };
  let spawns = 0;
  let stop = false;
  const spawner = (async () => {
    while (!stop) {
      await new Promise<void>((resolve, reject) => {
        const child = spawn('true', [], { stdio: 'ignore' });
        child.on('error', reject);
        child.on('exit', () => resolve());
      });
      spawns++;
      await new Promise((r) => setTimeout(r, 5));
    }
  })();
  for (let run = 0; run < RUNS; run++) {
    await m.explain(image, { method: 'extremal-perturbation', target: 0, areas: [0.1, 0.2], maxIter: 60 });
  }
  stop = true;
  await spawner;
  console.log(JSON.stringify({ runs: RUNS, spawns }));
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
