// The HTML report in a real browser: Debian's Chromium (/usr/bin/chromium, never downloaded) driven by
// playwright-core opens out/report.html from disk. Every picture decodes, every chart drew, the console is
// clean, nothing is fetched from the network, and file names that look like markup stay text.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { spawnSync } from 'node:child_process';
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { chromium, type Browser } from 'playwright-core';
import { ROOT } from './helpers.js';

const CHROMIUM = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';
const IMAGES = join(ROOT, 'examples', 'images');
// A name a careless report would turn into markup, and one that needs URL encoding.
const HOSTILE = `x"><img src=nowhere onerror="document.title='pwned'">&amp;.png`;

describe.skipIf(!existsSync(CHROMIUM))('report in Chromium', () => {
  let browser: Browser;
  let out: string;
  let inputs: string[];

  beforeAll(async () => {
    const dir = mkdtempSync(join(tmpdir(), 'ts-report-'));
    mkdirSync(join(dir, 'in'));
    inputs = [join(dir, 'in', HOSTILE), join(dir, 'in', '猫 #1.png'), join(dir, 'in', 'broken.png')];
    copyFileSync(join(IMAGES, 'disc.png'), inputs[0]);
    copyFileSync(join(IMAGES, 'cross.png'), inputs[1]);
    copyFileSync(join(ROOT, 'examples', 'model', 'labels.txt'), inputs[2]);
    out = join(dir, 'out');
    const args = ['--import', 'tsx', join(ROOT, 'lib', 'cli', 'index.ts'), 'explain', '--model', join(ROOT, 'examples/model/classifier.pt')];
    args.push('--labels', join(ROOT, 'examples/model/labels.txt'), '--method', 'grad-cam,extremal-perturbation,rise', '--grad-cam.layer', 'features.3');
    args.push('--areas', '0.1,0.2', '--max-iter', '30', '--num-masks', '200', '--curve-steps', '8', '--report', '--out', out, ...inputs);
    const r = spawnSync(process.execPath, args, { cwd: ROOT, encoding: 'utf8', timeout: 120_000 });
    // The unreadable image makes the run exit 1; the report is written all the same.
    expect(r.status, r.stderr).toBe(1);
    browser = await chromium.launch({ executablePath: CHROMIUM, headless: true });
  }, 180_000);

  afterAll(async () => {
    await browser?.close();
  });

  it('opens from disk with no console errors, no network, every picture decoded and every chart drawn', async () => {
    const page = await browser.newPage();
    const problems: string[] = [];
    page.on('console', (m) => {
      if (m.type() === 'error' || m.type() === 'warning') problems.push(`${m.type()}: ${m.text()}`);
    });
    page.on('pageerror', (e) => problems.push(`pageerror: ${e.message}`));
    page.on('requestfailed', (r) => problems.push(`failed: ${r.url()}`));
    const requests: string[] = [];
    page.on('request', (r) => requests.push(r.url()));
    await page.goto(pathToFileURL(join(out, 'report.html')).href, { waitUntil: 'load' });
    // Pictures are lazy: make them eager and wait until each has loaded or failed. (The page's code is text:
    // this project's type check has no DOM library.)
    await page.evaluate(`Promise.all(Array.from(document.images).map((img) => {
      img.loading = 'eager';
      return img.complete ? null : new Promise((done) => { img.onload = done; img.onerror = done; });
    }))`);
    const pictures = await page.evaluate<{ src: string | null; width: number }[]>(
      `Array.from(document.images).map((img) => ({ src: img.getAttribute('src'), width: img.naturalWidth }))`,
    );
    // Two images decoded: per image the photo, then per method its pictures (grad-cam 3, rise 3, EP 2 areas x 4).
    expect(pictures.length).toBe(2 * (1 + 3 + 3 + 8));
    for (const p of pictures) expect(p.width, p.src ?? '').toBeGreaterThan(0);
    // One chart per map (curves): 2 images x (1 + 1 + 2) maps, each with a deletion and an insertion line.
    const lines = await page.evaluate<number[]>(
      `Array.from(document.querySelectorAll('svg.chart polyline')).map((l) => l.getAttribute('points').split(' ').length)`,
    );
    expect(lines).toHaveLength(2 * 4 * 2);
    for (const n of lines) expect(n).toBe(9);
    expect(problems).toEqual([]);
    expect(requests.every((u) => u.startsWith('file://'))).toBe(true);
    await page.close();
  });

  it('shows file names as text: markup in a name is not run, and non-ASCII names link to their pictures', async () => {
    const page = await browser.newPage();
    await page.goto(pathToFileURL(join(out, 'report.html')).href, { waitUntil: 'load' });
    expect(await page.title()).not.toBe('pwned');
    expect(await page.locator('img[src="nowhere"]').count()).toBe(0);
    const headings = await page.locator('h2').allTextContents();
    expect(headings[0]).toContain(inputs[0]);
    expect(headings[1]).toContain(inputs[1]);
    // The unreadable image has its section with the decoder's complaint.
    expect(headings[2]).toContain('failed');
    expect(await page.locator('section.image').nth(2).textContent()).toContain('ERR_IMAGE_DECODE');
    const html = readFileSync(join(out, 'report.html'), 'utf8');
    expect(html).not.toContain('<img src=nowhere');
    expect(html).toContain(encodeURIComponent('猫_1'));
    await page.close();
  });
});
