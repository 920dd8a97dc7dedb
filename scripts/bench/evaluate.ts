// evaluate benchmark: what each score costs next to the explanations it scores, on the shapes model
// (16 images, 64 x 64) and the methods gradient and Grad-CAM. The same evaluate() call times its parts
// (result.timings); this prints each score's time as a multiple of the method's explain time for all 16
// images, and the per-pair costs. Run: npx tsx scripts/bench/evaluate.ts (TS_BENCH_ROUNDS, default 3).
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { evaluate, loadModel, readImage, type EvaluationImage } from '../../lib/index.js';

const root = join(__dirname, '..', '..');
const SHAPES = join(root, 'test', 'fixtures', 'shapes');
const ROUNDS = Math.max(1, Number(process.env.TS_BENCH_ROUNDS ?? 3));

const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
};

async function main() {
  const model = await loadModel(join(root, 'test', 'fixtures', 'models', 'shapes_traced.pt'), { device: 'cpu' });
  const entries = JSON.parse(readFileSync(join(SHAPES, 'boxes.json'), 'utf8')) as { file: string; classIndex: number; box: [number, number, number, number] }[];
  const items: EvaluationImage[] = await Promise.all(
    entries.map(async (e) => ({ name: e.file, image: await readImage(join(SHAPES, e.file)), objects: [{ classIndex: e.classIndex, boxes: [e.box] }] })),
  );
  const methods = [{ method: 'gradient' as const }, { method: 'grad-cam' as const, layer: 'features.9', name: 'grad-cam' }];
  const runs: Record<string, Record<string, number[]>> = {};
  for (let r = 0; r < ROUNDS; r++) {
    const e = await evaluate(model, items, { methods, fidelity: { steps: 32 }, sanity: { images: 16 } });
    for (const t of e.timings) ((runs[t.method] ??= {})[t.score] ??= []).push(t.ms);
  }
  console.log(`16 images x 1 class, 64 x 64; deletion/insertion 33 images per curve; sanity: 5 layers on all 16 images; median of ${ROUNDS}`);
  console.log('method      score          ms      x explain');
  for (const [method, scores] of Object.entries(runs)) {
    const explain = median(scores.explain);
    for (const [score, times] of Object.entries(scores)) {
      const ms = median(times);
      console.log(`${method.padEnd(11)} ${score.padEnd(14)} ${ms.toFixed(1).padStart(8)} ${(ms / explain).toFixed(1).padStart(10)}`);
    }
  }
  model.dispose();
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
