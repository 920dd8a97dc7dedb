/**
 * The backdoor scan on the trojan benchmark (test/fixtures/backdoor-bench: trojans and their clean twins, made
 * by scripts/backdoor-bench/make_bench.py): per split (dev for tuning, held-out for reporting) and per trigger
 * family, the detection rate, the false-positive rate on the clean twins, the ROC AUC of the scan's model-level
 * score, how often the first flagged class is the target, and how well its region covers the trigger (mean
 * IoU, pointing: the region's centre inside the trigger; only triggers with a fixed box count).
 *
 * Run: npm run bench -- backdoor             (both methods, both splits, --fast settings: about an hour
 *                                             on the shared 2-core machine under load; subsample with --split/--pairs)
 *      npx tsx scripts/bench/backdoor.ts [--method input-agnostic|neural-cleanse|all] [--split dev|heldout|all]
 *        [--pairs d01,h03] [--full] [--with-images] [--seed N] [--json out.json] [--classes] [--window-regions]
 *        [--whole-image] [--trojans-only]
 * Input-agnostic scans use fewer steps than the defaults (FAST below) unless --full is given (Neural Cleanse
 * always runs at its defaults); --with-images gives the scan the benchmark's committed clean
 * images of the model's size and head (16 at 32 and 64 px, 8 at 224 px); --classes prints every class's scores;
 * --window-regions scores, in place of each flagged class's region, the window of its size holding the most
 * map mass (a variant measured in docs/dev/backdoor-scan.md); --whole-image turns on the input-agnostic scan's
 * whole-image test for blended triggers (`wholeImage: true`), and prints which of the two tests flagged.
 */
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { loadModel, readImage, scanBackdoor, setThreads, type BackdoorScan, type Image, type InputAgnosticClassScan } from '../../lib/index.js';
import { formatSummary, manifestBox, summarise, summariseBy, type Box, type Outcome } from './_backdoor-metrics.js';

const dir = join(__dirname, '..', '..', 'test', 'fixtures', 'backdoor-bench');

interface Entry {
  id: string;
  pair: string;
  split: string;
  file: string;
  imageSize: number;
  head: 'softmax' | 'sigmoid';
  trojaned: boolean;
  targetClass: number | null;
  trigger: Trigger | null;
  pairTrigger: (Trigger & { targetClass: number }) | null;
}
interface Trigger {
  kind: string;
  placement: string;
  box: [number, number, number, number] | 'random';
}

function arg(name: string, fallback: string): string {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 && i + 1 < process.argv.length ? process.argv[i + 1] : fallback;
}

// Neural Cleanse runs at its defaults either way: its schedule (a warm-up at lambda 0, then lambda doubled or
// lowered every 5 steps) needs its steps, and its early stop ends a run that has converged.
const FAST = { input: { samples: 8, iterations: 32, refineSteps: 10 }, nc: {} };

async function main(): Promise<void> {
  setThreads(Math.max(1, Number(process.env.TS_BENCH_THREADS ?? 2)));
  const manifest = JSON.parse((await import('node:fs')).readFileSync(join(dir, 'manifest.json'), 'utf8')) as { models: Entry[] };
  const images = JSON.parse((await import('node:fs')).readFileSync(join(dir, 'images.json'), 'utf8')) as {
    sets: Record<string, { images: { file: string }[] }>;
  };
  const split = arg('split', 'all');
  const method = arg('method', 'all');
  const pairs = arg('pairs', '');
  const fast = !process.argv.includes('--full');
  const methods = (method === 'all' ? ['input-agnostic', 'neural-cleanse'] : [method]) as ('input-agnostic' | 'neural-cleanse')[];
  const entries = manifest.models.filter((m) => (split === 'all' || m.split === split) && (pairs === '' || pairs.split(',').includes(m.pair)));

  const all: Record<string, Outcome[]> = {};
  const regionOnly: Outcome[] = [];
  for (const m of methods) {
    const outcomes: Outcome[] = [];
    for (const e of entries) {
      const trigger = (e.trigger ?? e.pairTrigger)!;
      const target = e.targetClass ?? e.pairTrigger!.targetClass;
      const model = await loadModel(join(dir, e.file), { device: 'cpu' });
      let clean: Image[] | undefined;
      if (process.argv.includes('--with-images')) {
        clean = await Promise.all(images.sets[`${e.imageSize}/${e.head}`].images.map((im) => readImage(join(dir, im.file))));
      }
      const t0 = performance.now();
      const scan: BackdoorScan = await scanBackdoor(model, {
        size: e.imageSize,
        method: m,
        head: e.head,
        seed: Number(arg('seed', '0')),
        ...(clean ? { images: clean } : {}),
        ...(fast ? (m === 'input-agnostic' ? FAST.input : FAST.nc) : {}),
        ...(m === 'input-agnostic' && process.argv.includes('--whole-image') ? { wholeImage: true } : {}),
      });
      const ms = performance.now() - t0;
      model.dispose();
      const outcome: Outcome = {
        id: e.id,
        split: e.split,
        family: trigger.kind,
        trojaned: e.trojaned,
        target,
        trigger: manifestBox(trigger.box, trigger.placement),
        flagged: [...scan.flagged],
        score: scan.score,
        regions: scan.flagged.map((c) => scan.classes.find((x) => x.class === c)!.box),
        ms,
      };
      if (process.argv.includes('--window-regions')) {
        // Developer's variant (docs/dev/backdoor-scan.md): the window of the region's size that holds the most
        // map mass, in place of the region grown around the map's peak.
        outcome.regions = scan.flagged.map((c) => {
          const j = scan.classes.findIndex((x) => x.class === c);
          return heaviestWindow(scan.maps[j], scan.classes[j].box.height, scan.classes[j].box.width);
        });
      }
      outcomes.push(outcome);
      const top = scan.classes.reduce((a, b) => (b.anomalyIndex > a.anomalyIndex ? b : a));
      console.log(
        `  ${m} ${e.id.padEnd(11)} target ${target} flagged [${scan.flagged.join(',')}] score ${scan.score.toFixed(2)} top class ${top.class}` +
          ` (${(ms / 1000).toFixed(1)} s)`,
      );
      const byWhole = scan.classes.filter((c) => 'wholeImageFlagged' in c && c.wholeImageFlagged).map((c) => c.class);
      if (scan.classes.some((c) => 'opacity' in c)) {
        const ia = scan.classes as readonly InputAgnosticClassScan[];
        // The region test alone, from the same scan: its own rule and score, as the scan without wholeImage.
        const byRegion = ia.filter((c) => c.anomalyIndex >= scan.thresholds.anomaly && c.specificFlipRate >= scan.thresholds.flip);
        regionOnly.push({
          ...outcome,
          flagged: byRegion.sort((a, b) => b.anomalyIndex - a.anomalyIndex).map((c) => c.class),
          score: Math.max(...ia.map((c) => c.anomalyIndex)),
          regions: byRegion.map((c) => c.box),
        });
        console.log(
          `      region test: flagged [${regionOnly[regionOnly.length - 1].flagged.join(',')}]; whole-image: flagged [${byWhole.join(',')}] opacity ${ia.map((c) => `${c.class === target ? '*' : ''}${c.opacity!.toFixed(3)}${c.opacityReached ? '' : '?'}`).join(' ')}` +
            ` index ${ia.map((c) => c.opacityIndex!.toFixed(1)).join(' ')}`,
        );
      }
      if (process.argv.includes('--classes')) {
        for (const c of scan.classes) console.log(`      ${JSON.stringify(c, (k, v) => (typeof v === 'number' ? +v.toFixed(3) : v))}`);
      }
    }
    all[m] = outcomes;
  }

  if (regionOnly.length > 0) all['input-agnostic, region test alone (the same scans)'] = regionOnly;
  for (const m of Object.keys(all)) {
    const outcomes = all[m];
    console.log(`\n${m}${fast ? ' (--fast)' : ''}, ${outcomes.length} models`);
    for (const [name, s] of summariseBy(outcomes, (o) => o.split)) console.log('  ' + formatSummary(name, s));
    console.log('  ' + formatSummary('all', summarise(outcomes)));
    for (const [name, s] of summariseBy(outcomes, (o) => o.family)) console.log('  ' + formatSummary(name, s));
  }
  const out = arg('json', '');
  if (out) writeFileSync(out, JSON.stringify(all, null, 1) + '\n');
}

/** The h x w window of the map with the largest sum (an integral image; the first such window on ties). */
function heaviestWindow(map: { data: Float32Array; height: number; width: number }, h: number, w: number): Box {
  const { data, height, width } = map;
  const integral = new Float64Array((height + 1) * (width + 1));
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) {
      integral[(y + 1) * (width + 1) + x + 1] =
        data[y * width + x] + integral[y * (width + 1) + x + 1] + integral[(y + 1) * (width + 1) + x] - integral[y * (width + 1) + x];
    }
  }
  let best = { top: 0, left: 0, height: h, width: w };
  let most = -Infinity;
  for (let y = 0; y + h <= height; y++) {
    for (let x = 0; x + w <= width; x++) {
      const sum =
        integral[(y + h) * (width + 1) + x + w] - integral[y * (width + 1) + x + w] - integral[(y + h) * (width + 1) + x] + integral[y * (width + 1) + x];
      if (sum > most) {
        most = sum;
        best = { top: y, left: x, height: h, width: w };
      }
    }
  }
  return best;
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
