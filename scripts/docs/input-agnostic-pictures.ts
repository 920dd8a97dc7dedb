/**
 * Pictures and numbers for docs/methods/input-agnostic.md: scans the clean and the trojaned fixture and the
 * shapes classifier with the default options (seed 1) and writes docs/methods/img/input-agnostic-{trojan,
 * clean,shapes}.png (per class: the picture with the region's box, above its saliency map) and prints each
 * class's scores as JSON.
 * Run: npx tsx scripts/docs/input-agnostic-pictures.ts
 */
import sharp from 'sharp';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadModel, scanBackdoor } from '../../lib/index.js';

const root = join(__dirname, '..', '..');
const fixtures = join(root, 'test', 'fixtures', 'backdoor');
const out = join(root, 'docs', 'methods', 'img');
const GAP = 4;
const MODELS = [
  { name: 'trojan', path: join(fixtures, 'trojan_traced.pt'), labels: join(fixtures, 'labels.txt'), size: 32, scale: 3 },
  { name: 'clean', path: join(fixtures, 'clean_traced.pt'), labels: join(fixtures, 'labels.txt'), size: 32, scale: 3 },
  {
    name: 'shapes',
    path: join(root, 'test', 'fixtures', 'models', 'shapes_traced.pt'),
    labels: join(root, 'test', 'fixtures', 'models', 'shapes_labels.txt'),
    size: 64,
    scale: 2,
  },
];

async function main(): Promise<void> {
  for (const { name, path, labels, size, scale } of MODELS) {
    const TILE = size * scale;
    const model = await loadModel(path, { device: 'cpu', labels });
    const scan = await scanBackdoor(model, { size, seed: 1 });
    const dir = await mkdtemp(join(tmpdir(), 'ia-doc-'));
    await scan.writePictures(dir, { scale });
    const n = scan.classes.length;
    const tiles = scan.classes.flatMap((c, j) => [
      { input: join(dir, `class-${c.class}-picture.png`), left: j * (TILE + GAP), top: 0 },
      { input: join(dir, `class-${c.class}-map.png`), left: j * (TILE + GAP), top: TILE + GAP },
    ]);
    await sharp({ create: { width: n * (TILE + GAP) - GAP, height: 2 * TILE + GAP, channels: 3, background: { r: 255, g: 255, b: 255 } } })
      .composite(tiles)
      .png()
      .toFile(join(out, `input-agnostic-${name}.png`));
    await rm(dir, { recursive: true });
    const round = (x: number) => Math.round(x * 1000) / 1000;
    console.log(
      JSON.stringify({
        model: name,
        flagged: scan.flagged,
        mapsMs: Math.round(scan.timings.methodMs),
        classes: scan.classes.map((c) => ({
          class: c.class,
          label: c.label,
          box: c.box,
          concentration: round(c.concentration),
          areaFraction: round(c.areaFraction),
          flipRate: round(c.flipRate),
          signature: round(c.signature),
          anomalyIndex: round(c.anomalyIndex),
          fidelity: round(c.fidelity),
          fidelityInitial: round((scan.explanation.details as { fidelityInitial: number[] }).fidelityInitial[c.class]),
        })),
      }),
    );
    model.dispose();
  }
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
