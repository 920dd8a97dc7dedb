/**
 * Screenshots of the evaluation page and the scan page for the docs (docs/images/evaluation-page.jpg,
 * docs/images/scan-page.jpg): runs `torch-saliency evaluate` on the bundled model and photos (gradient and
 * Grad-CAM, 16-step curves, sanity check on 2 photos at 6 layers) and `torch-saliency scan` on the trojaned
 * fixture (defaults, seed 1), opens each page in Debian's Chromium through playwright-core, and saves the
 * whole page as JPEG. A few minutes on a 2-core CPU.
 * Run: npx tsx scripts/docs/page-screenshots.ts
 */
import { spawnSync } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { chromium } from 'playwright-core';
import sharp from 'sharp';

const root = join(__dirname, '..', '..');
const CHROMIUM = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';

function cli(args: string[]): void {
  const r = spawnSync(process.execPath, ['--import', 'tsx', join(root, 'lib', 'cli', 'index.ts'), ...args], {
    cwd: root,
    stdio: ['ignore', 'ignore', 'inherit'],
  });
  if (r.status !== 0) throw new Error(`torch-saliency ${args[0]} exited ${r.status}`);
}

async function shoot(page: string, target: string): Promise<void> {
  const browser = await chromium.launch({ executablePath: CHROMIUM, headless: true });
  try {
    const tab = await browser.newPage({ viewport: { width: 1200, height: 800 } });
    await tab.goto(pathToFileURL(page).href, { waitUntil: 'load' });
    await tab.evaluate(`Promise.all(Array.from(document.images).map((img) => {
      img.loading = 'eager';
      return img.complete ? null : new Promise((done) => { img.onload = done; img.onerror = done; });
    }))`);
    const png = await tab.screenshot({ fullPage: true });
    await sharp(png).jpeg({ quality: 72, mozjpeg: true }).toFile(target);
    console.log(`wrote ${target}`);
  } finally {
    await browser.close();
  }
}

async function main(): Promise<void> {
  const dir = await mkdtemp(join(tmpdir(), 'ts-page-shots-'));
  try {
    const evaluation = join(dir, 'evaluation');
    cli([
      ...['evaluate', '--model', 'examples/model/efficientnet_lite0.pt', '--labels', 'examples/model/imagenet_labels.txt'],
      ...['--images', 'examples/photos', '--boxes', 'examples/photos/boxes.json', '--size', '224'],
      ...['--methods', 'gradient,grad-cam:layer=_conv_head', '--steps', '16', '--sanity-images', '2', '--sanity-points', '6'],
      ...['--heatmaps', '3', '--device', 'cpu', '--out', evaluation],
    ]);
    await shoot(join(evaluation, 'evaluation.html'), join(root, 'docs', 'images', 'evaluation-page.jpg'));
    const scan = join(dir, 'scan');
    const backdoor = join('test', 'fixtures', 'backdoor');
    cli(['scan', '--model', join(backdoor, 'trojan_traced.pt'), '--labels', join(backdoor, 'labels.txt'), '--size', '32', '--seed', '1', '--out', scan]);
    await shoot(join(scan, 'scan.html'), join(root, 'docs', 'images', 'scan-page.jpg'));
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

main().catch((e) => {
  console.error(e);
  process.exitCode = 1;
});
