// The evaluation page (evaluate --out DIR: DIR/evaluation.html) and the scan page (scan --out DIR: DIR/scan.html)
// in a real browser: Debian's Chromium (/usr/bin/chromium, never downloaded) driven by playwright-core opens each
// from disk. As for the explain report: no console errors, nothing fetched from the network, every picture
// decoded, every chart drawn with its points; and names that look like markup stay text.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { spawnSync } from 'node:child_process';
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { chromium, type Browser, type Page } from 'playwright-core';
import { BACKDOOR, backdoorFixture, ROOT } from './helpers.js';

const CHROMIUM = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';
const SHAPES = join(ROOT, 'test', 'fixtures', 'shapes');
// An image name a careless page would turn into markup.
const HOSTILE = `x"><img src=nowhere onerror="document.title='pwned'">.png`;

function cli(command: string, args: string[]) {
  const r = spawnSync(process.execPath, ['--import', 'tsx', join(ROOT, 'lib', 'cli', 'index.ts'), command, ...args], {
    cwd: ROOT,
    encoding: 'utf8',
    timeout: 120_000,
  });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

/** Opens a page from disk, makes its pictures eager and waits for each; returns what went wrong and what was fetched. */
async function open(browser: Browser, file: string): Promise<{ page: Page; problems: string[]; requests: string[] }> {
  const page = await browser.newPage();
  const problems: string[] = [];
  const requests: string[] = [];
  page.on('console', (m) => {
    if (m.type() === 'error' || m.type() === 'warning') problems.push(`${m.type()}: ${m.text()}`);
  });
  page.on('pageerror', (e) => problems.push(`pageerror: ${e.message}`));
  page.on('requestfailed', (r) => problems.push(`failed: ${r.url()}`));
  page.on('request', (r) => requests.push(r.url()));
  await page.goto(pathToFileURL(file).href, { waitUntil: 'load' });
  // The page's code is text: this project's type check has no DOM library.
  await page.evaluate(`Promise.all(Array.from(document.images).map((img) => {
    img.loading = 'eager';
    return img.complete ? null : new Promise((done) => { img.onload = done; img.onerror = done; });
  }))`);
  return { page, problems, requests };
}

async function pictures(page: Page): Promise<{ src: string | null; width: number }[]> {
  return page.evaluate(`Array.from(document.images).map((img) => ({ src: img.getAttribute('src'), width: img.naturalWidth }))`);
}

/** Per chart (svg.chart, in page order), the number of points of each of its lines. */
async function chartLines(page: Page): Promise<number[][]> {
  return page.evaluate(`Array.from(document.querySelectorAll('svg.chart')).map((svg) =>
    Array.from(svg.querySelectorAll('polyline')).map((l) => l.getAttribute('points').trim().split(' ').length))`);
}

describe.skipIf(!existsSync(CHROMIUM))('evaluation and scan pages in Chromium', () => {
  let browser: Browser;
  let dir: string;

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'ts-pages-'));
    browser = await chromium.launch({ executablePath: CHROMIUM, headless: true });
  });

  afterAll(async () => {
    await browser?.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('evaluation.html: the scores table, mean curves, sanity plots, time split and maps', async () => {
    // Three shapes images, the first under a hostile name, with their boxes.
    const images = join(dir, 'images');
    mkdirSync(images);
    const boxes = JSON.parse(readFileSync(join(SHAPES, 'boxes.json'), 'utf8')).slice(0, 3) as { file: string }[];
    for (const [i, b] of boxes.entries()) {
      const name = i === 0 ? HOSTILE : b.file;
      copyFileSync(join(SHAPES, b.file), join(images, name));
      b.file = name;
    }
    writeFileSync(join(dir, 'boxes.json'), JSON.stringify(boxes));
    const out = join(dir, 'evaluation');
    const model = ['--model', 'test/fixtures/models/shapes_traced.pt', '--labels', 'test/fixtures/models/shapes_labels.txt', '--device', 'cpu'];
    const r = cli('evaluate', [
      ...model,
      ...['--images', images, '--boxes', join(dir, 'boxes.json'), '--methods', 'gradient,grad-cam:layer=features.9'],
      ...['--steps', '4', '--sanity-images', '1', '--heatmaps', '3', '--out', out],
    ]);
    expect(r.code, r.stderr).toBe(0);
    const json = JSON.parse(readFileSync(join(out, 'evaluation.json'), 'utf8'));
    const layers = json.methods[0].sanity.steps.length as number;
    expect(layers).toBeGreaterThan(1);

    const { page, problems, requests } = await open(browser, join(out, 'evaluation.html'));
    // Pictures: the 3 images, each with the 2 methods' maps.
    const pics = await pictures(page);
    expect(pics).toHaveLength(3 * (1 + 2));
    for (const p of pics) expect(p.width, p.src ?? '').toBe(64);
    // Charts: deletion and insertion (a line of steps + 1 points per method), Spearman and SSIM (the trained model,
    // then each layer; a step where every map was constant has no rank correlation and no point).
    const points = (measure: 'spearman' | 'ssim') =>
      json.methods.map((m: { sanity: { steps: Record<string, number | null>[] } }) => 1 + m.sanity.steps.filter((s) => s[measure] !== null).length);
    expect(await chartLines(page)).toEqual([[5, 5], [5, 5], points('spearman'), points('ssim')]);
    expect(points('ssim')).toEqual([layers + 1, layers + 1]);
    // The scores table: the baseline and each method, with the numbers of evaluation.json.
    const rows = await page.locator('table.scores').first().locator('tbody tr').allTextContents();
    expect(rows).toHaveLength(3);
    expect(rows[0]).toContain('centre baseline');
    expect(rows[2]).toContain('grad-cam:layer=features.9');
    expect(rows[2]).toContain(json.methods[1].deletion.auc.toFixed(3));
    // The time split: one bar per method, one part per timed score.
    const parts = await page.evaluate<number[]>(`Array.from(document.querySelectorAll('.timebars .bar')).map((b) => b.children.length)`);
    expect(parts).toEqual([5, 5]);
    expect(problems).toEqual([]);
    expect(requests.every((u) => u.startsWith('file://'))).toBe(true);
    expect(await page.title()).not.toBe('pwned');
    expect(await page.locator('img[src="nowhere"]').count()).toBe(0);
    expect(await page.locator('figcaption').allTextContents()).toContainEqual(expect.stringContaining(HOSTILE));
    await page.close();
  }, 180_000);

  it('scan.html: the verdict, the per-class table and every class picture and map with its region', async () => {
    const out = join(dir, 'scan');
    const r = cli('scan', [
      ...['--model', join(BACKDOOR, 'trojan_traced.pt'), '--labels', join(BACKDOOR, 'labels.txt'), '--size', '32'],
      ...['--samples', '8', '--iterations', '32', '--refine-steps', '10', '--seed', '1', '--scale', '2', '--out', out],
    ]);
    expect(r.code, r.stderr).toBe(0);
    const scan = JSON.parse(readFileSync(join(out, 'scan.json'), 'utf8'));
    const classes = backdoorFixture.classes.length;

    const { page, problems, requests } = await open(browser, join(out, 'scan.html'));
    const pics = await pictures(page);
    expect(pics).toHaveLength(2 * classes);
    for (const p of pics) expect(p.width, p.src ?? '').toBe(64);
    await expect(page.locator('.verdict').textContent()).resolves.toMatch(/^Suspicious/);
    const rows = page.locator('table.scores tbody tr');
    expect(await rows.count()).toBe(classes);
    expect(await page.locator('tr.flagged').count()).toBe(scan.flagged.length);
    const target = backdoorFixture.targetClass;
    expect(await page.locator('tr.flagged').first().textContent()).toContain(backdoorFixture.classes[target]);
    // Each class's map carries its region as a rectangle in the picture's pixels, as scan.json gives it.
    const region = await page.evaluate<{ x: string; y: string; w: string; h: string }>(
      `(() => { const r = document.querySelector('#class-${target} rect');
        return { x: r.getAttribute('x'), y: r.getAttribute('y'), w: r.getAttribute('width'), h: r.getAttribute('height') }; })()`,
    );
    const box = scan.classes[target].box;
    expect(region).toEqual({ x: String(box.left), y: String(box.top), w: String(box.width), h: String(box.height) });
    expect(await page.locator('.class svg rect').count()).toBe(classes);
    expect(problems).toEqual([]);
    expect(requests.every((u) => u.startsWith('file://'))).toBe(true);
    await page.close();
  }, 180_000);

  it('scan.html of Neural Cleanse: its own columns, the reversed triggers, the verdict scan.json gives', async () => {
    const out = join(dir, 'scan-nc');
    const r = cli('scan', [
      ...['--model', join(BACKDOOR, 'trojan_traced.pt'), '--size', '32', '--method', 'neural-cleanse'],
      ...['--steps', '30', '--inputs', '8', '--seed', '1', '--scale', '2', '--out', out],
    ]);
    expect(r.code, r.stderr).toBe(0);
    const scan = JSON.parse(readFileSync(join(out, 'scan.json'), 'utf8'));
    const classes = backdoorFixture.classes.length;
    const { page, problems, requests } = await open(browser, join(out, 'scan.html'));
    const pics = await pictures(page);
    expect(pics).toHaveLength(2 * classes);
    for (const p of pics) expect(p.width, p.src ?? '').toBe(64);
    await expect(page.locator('.verdict').textContent()).resolves.toMatch(scan.suspicious ? /^Suspicious/ : /^No trigger found/);
    const head = await page.locator('table.scores thead th').allTextContents();
    expect(head).toEqual(expect.arrayContaining(['mask norm', 'attack success', 'reached']));
    expect(head).not.toContain('flip rate');
    // The first class's mask norm as scan.json gives it (shown to 3 decimals).
    const norm = head.indexOf('mask norm');
    const shown = Number(await page.locator('table.scores tbody tr').first().locator('td').nth(norm).textContent());
    expect(shown).toBeCloseTo(scan.classes[0].norm, 3);
    expect(await page.locator('figcaption').first().textContent()).toContain('reversed trigger');
    expect(problems).toEqual([]);
    expect(requests.every((u) => u.startsWith('file://'))).toBe(true);
    await page.close();
  }, 180_000);
});
