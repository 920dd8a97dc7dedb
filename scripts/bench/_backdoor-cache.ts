/**
 * Developer tool: caches the input-agnostic explanations of the trojan benchmark's models (fast settings, one
 * file per model and seed) so that scoring rules can be tried without recomputing the maps.
 *   npx tsx scripts/bench/_backdoor-cache.ts --split dev --out /tmp/bd2-cache [--seeds 0,1]
 */
import { existsSync, mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { loadModel, setThreads } from '../../lib/index.js';

const dir = join(__dirname, '..', '..', 'test', 'fixtures', 'backdoor-bench');
function arg(name: string, fallback: string): string {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 && i + 1 < process.argv.length ? process.argv[i + 1] : fallback;
}

async function main(): Promise<void> {
  setThreads(1);
  const manifest = JSON.parse(readFileSync(join(dir, 'manifest.json'), 'utf8')) as {
    models: { id: string; split: string; pair: string; file: string; imageSize: number }[];
  };
  const split = arg('split', 'dev');
  const pairs = arg('pairs', '');
  const out = arg('out', '/tmp/bd2-cache');
  const seeds = arg('seeds', '0,1').split(',').map(Number);
  mkdirSync(out, { recursive: true });
  for (const e of manifest.models.filter((m) => (split === 'all' || m.split === split) && (pairs === '' || pairs.split(',').includes(m.pair)))) {
    for (const seed of seeds) {
      const file = join(out, `${e.id}-s${seed}.bin`);
      if (existsSync(file)) continue;
      const model = await loadModel(join(dir, e.file), { device: 'cpu' });
      const t0 = performance.now();
      const r = await model.explain([e.imageSize, e.imageSize], {
        method: 'input-agnostic',
        target: [0, 1, 2, 3, 4, 5, 6, 7],
        channels: 3,
        resize: true,
        seed,
        samples: 8,
        iterations: 32,
        refineSteps: 10,
      });
      const ms = performance.now() - t0;
      const d = r.details;
      const parts: Float32Array[] = [];
      for (let j = 0; j < 8; j++) parts.push(r.maps[j].data, d.perturbations[j].data, d.visualizations[j].data);
      const total = parts.reduce((s, p) => s + p.length, 0);
      const buf = new Float32Array(total);
      let o = 0;
      for (const p of parts) {
        buf.set(p, o);
        o += p.length;
      }
      writeFileSync(file + '.tmp', Buffer.from(buf.buffer));
      writeFileSync(join(out, `${e.id}-s${seed}.json`), JSON.stringify({ fidelity: d.fidelity, ms, lossHistory: d.lossHistory }));
      renameSync(file + '.tmp', file);
      model.dispose();
      console.log(`${e.id} seed ${seed} ${(ms / 1000).toFixed(1)} s`);
    }
  }
}
main().catch((e) => {
  console.error(e);
  process.exit(1);
});
