// `torch-saliency scan` on the trojaned and the clean fixture (test/fixtures/backdoor: target class 2, a 5 x 5
// checkerboard at rows and columns 25-29, known by construction): the verdict, the per-class table, the
// pictures, and exit code 2 for bad usage.
import { describe, expect, it } from 'vitest';
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadModel, scanBackdoor } from '../../lib/index.js';
import { BACKDOOR, BACKDOOR_FAST, backdoorFixture as fixture, rejection, ROOT } from './helpers.js';

function cli(...args: string[]) {
  const r = spawnSync(process.execPath, ['--import', 'tsx', join(ROOT, 'lib', 'cli', 'index.ts'), 'scan', ...args], {
    cwd: ROOT,
    encoding: 'utf8',
    timeout: 180_000,
  });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

const FAST = ['--samples', '8', '--iterations', '32', '--refine-steps', '10', '--seed', '1'];
const trojan = ['--model', join(BACKDOOR, 'trojan_traced.pt'), '--labels', join(BACKDOOR, 'labels.txt'), '--size', '32'];

describe('torch-saliency scan', () => {
  it('flags the trojan on its target, boxes the trigger, and writes scan.json and the pictures', () => {
    const out = mkdtempSync(join(tmpdir(), 'ts-scan-'));
    try {
      const r = cli(...trojan, ...FAST, '--json', '--out', out, '--scale', '2');
      expect(r.code, r.stderr).toBe(0);
      const verdict = JSON.parse(r.stdout);
      expect(verdict).toMatchObject({ method: 'input-agnostic', suspicious: true, flagged: [fixture.targetClass] });
      expect(JSON.parse(readFileSync(join(out, 'scan.json'), 'utf8'))).toEqual(verdict);
      const c = verdict.classes.find((x: { class: number }) => x.class === fixture.targetClass);
      expect(c.label).toBe(fixture.classes[fixture.targetClass]);
      const t = fixture.trigger;
      const cy = c.box.top + c.box.height / 2;
      const cx = c.box.left + c.box.width / 2;
      expect(cy >= t.top && cy <= t.top + t.height && cx >= t.left && cx <= t.left + t.width, JSON.stringify(c.box)).toBe(true);
      expect(verdict.classes).toHaveLength(fixture.classes.length);
      for (let k = 0; k < fixture.classes.length; k++) {
        for (const kind of ['picture', 'map']) expect(existsSync(join(out, `class-${k}-${kind}.png`)), `${k} ${kind}`).toBe(true);
      }
      expect(readFileSync(join(out, 'class-2-picture.png')).readUInt32BE(16)).toBe(64);
    } finally {
      rmSync(out, { recursive: true, force: true });
    }
  }, 200_000);

  it('finds nothing in the clean model and prints the per-class table', () => {
    const out = mkdtempSync(join(tmpdir(), 'ts-scan-'));
    try {
      const r = cli('--model', join(BACKDOOR, 'clean_traced.pt'), '--size', '32', ...FAST, '--out', out);
      expect(r.code, r.stderr).toBe(0);
      expect(r.stdout).toMatch(/^no trigger found: flagged \[\]/);
      expect(r.stdout.trim().split('\n')).toHaveLength(2 + fixture.classes.length);
    } finally {
      rmSync(out, { recursive: true, force: true });
    }
  }, 200_000);

  it('says what is wrong with exit code 2', () => {
    const cases: [string[], RegExp][] = [
      [['--size', '32'], /--model/],
      [['--model', 'm.pt', '--size', 'big'], /--size/],
      // Without --size, a model whose parameters fix no input size (a CNN): the scan asks for it.
      [['--model', join(BACKDOOR, 'clean_traced.pt')], /--size N or HxW.*fix none/],
      [[...trojan, '--bogus', '1'], /bogus/],
      [[...trojan, '--steps', '5'], /--steps is an option of --method neural-cleanse/],
      [[...trojan, '--method', 'magic'], /--method/],
      [[...trojan, '--classes', '1,x'], /--classes/],
      [[...trojan, '--flip-threshold', 'high'], /--flip-threshold/],
      [[...trojan, '--flip-threshold', '2'], /options.flipThreshold/],
      [[...trojan, '--head', 'relu'], /options.head/],
    ];
    for (const [args, message] of cases) {
      const r = cli(...args);
      expect(r.code, args.join(' ')).toBe(2);
      expect(r.stderr, args.join(' ')).toMatch(message);
    }
    const help = cli('--help');
    expect(help.code).toBe(0);
    expect(help.stdout).toContain('torch-saliency scan --model m.pt --size 32');
  }, 200_000);
});

describe('torch-saliency scan --whole-image', () => {
  it("on the benchmark's d04 blend trojan (target 0) with its clean images: flagged by the whole-image test, whose opacity and index the table, scan.json and the page show", () => {
    const bench = join(ROOT, 'test', 'fixtures', 'backdoor-bench');
    const sets = JSON.parse(readFileSync(join(bench, 'images.json'), 'utf8')) as { sets: Record<string, { images: { file: string }[] }> };
    const images = sets.sets['32/softmax'].images.map((im) => join(bench, im.file));
    const out = mkdtempSync(join(tmpdir(), 'ts-scan-'));
    try {
      const r = cli('--model', join(bench, 'models', 'd04-trojan.pt'), ...FAST, '--whole-image', '--out', out, ...images);
      expect(r.code, r.stderr).toBe(0);
      const lines = r.stdout.trim().split('\n');
      expect(lines[1].split('\t')).toEqual(['class', 'label', 'anomaly', 'opacity', 'opacity index', 'flagged', 'box (top,left,h x w)']);
      const scan = JSON.parse(readFileSync(join(out, 'scan.json'), 'utf8')) as {
        flagged: number[];
        classes: { class: number; opacity: number; opacityIndex: number; wholeImageFlagged: boolean; flagged: boolean }[];
      };
      const target = scan.classes[0];
      expect(target.wholeImageFlagged).toBe(true);
      expect(scan.flagged).toContain(0);
      // The target's opacity is the smallest of the eight classes.
      expect(Math.min(...scan.classes.map((c) => c.opacity))).toBe(target.opacity);
      for (const c of scan.classes) {
        const row = lines[2 + c.class].split('\t');
        expect(Number(row[3])).toBeCloseTo(c.opacity, 3);
        expect(Number(row[4])).toBeCloseTo(c.opacityIndex, 2);
        expect(row[5]).toBe(c.flagged ? 'yes' : '');
      }
      const page = readFileSync(join(out, 'scan.html'), 'utf8');
      expect(page).toContain('whole-image opacity');
      expect(page).toContain('flagged by the whole-image test');
    } finally {
      rmSync(out, { recursive: true, force: true });
    }
  }, 300_000);

  it('--whole-image belongs to the input-agnostic scan', () => {
    const r = cli(...trojan, '--method', 'neural-cleanse', '--whole-image');
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/--whole-image is an option of --method input-agnostic/);
  }, 60_000);
});

describe('torch-saliency scan as a careless user', () => {
  it('--out and --scale are checked before the model is loaded; a class given twice is refused', () => {
    const dir = mkdtempSync(join(tmpdir(), 'ts-scan-'));
    try {
      const file = join(dir, 'file');
      writeFileSync(file, 'x');
      // A model that is not there: the flags' errors come first. Before, --out and --scale were checked after the scan.
      const missing = ['--model', join(dir, 'missing.pt'), '--size', '32'];
      for (const [args, message] of [
        [[...missing, '--out', file], /for --out but .* has a file/],
        [[...missing, '--out', join(file, 'sub')], /for --out/],
        [[...missing, '--scale', '0'], /from 1 to 32 for --scale/],
        [[...missing, '--scale', '33'], /from 1 to 32 for --scale/],
        // Class 0 three times was scanned three times, compared with itself, and its pictures overwritten.
        [[...trojan, '--classes', '0,1,1', '--out', join(dir, 'o')], /options\.classes\[2\]/],
      ] as const) {
        const r = cli(...args);
        expect(r.code, `${args.join(' ')}: ${r.stderr}`).toBe(2);
        expect(
          r.stderr
            .trim()
            .split('\n')
            .filter((l) => !l.includes('scanning')),
        ).toHaveLength(1);
        expect(r.stderr).toMatch(message);
      }
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  }, 120_000);

  it('SIGINT during the scan exits 130 with one line and leaves the folder as it was', async () => {
    const out = mkdtempSync(join(tmpdir(), 'ts-scan-'));
    try {
      writeFileSync(join(out, 'scan.json'), '{"earlier": true}\n');
      // The defaults: a scan of many seconds.
      const child = spawn(process.execPath, ['--import', 'tsx', join(ROOT, 'lib', 'cli', 'index.ts'), 'scan', ...trojan, '--out', out], { cwd: ROOT });
      let stderr = '';
      let sent = false;
      child.stderr.on('data', (d) => {
        stderr += String(d);
        // One SIGINT: a second one, sent when the "interrupted" line arrived, could kill the exiting process.
        if (stderr.includes('scanning') && !sent) {
          sent = true;
          setTimeout(() => child.kill('SIGINT'), 500);
        }
      });
      const [code, signal] = await new Promise<[number | null, string | null]>((resolve) => child.on('exit', (c, s) => resolve([c, s])));
      // Before: no handler, so the process died of the signal (code null) whatever it was doing.
      expect([code, signal], stderr).toEqual([130, null]);
      expect(stderr).toMatch(/interrupted \(SIGINT\) before anything was written/);
      expect(readdirSync(out)).toEqual(['scan.json']);
      expect(readFileSync(join(out, 'scan.json'), 'utf8')).toBe('{"earlier": true}\n');
    } finally {
      rmSync(out, { recursive: true, force: true });
    }
  }, 60_000);

  it('writePictures interrupted leaves no scan.json of an earlier scan beside the new pictures', async () => {
    const out = mkdtempSync(join(tmpdir(), 'ts-scan-'));
    try {
      await using model = await loadModel(join(BACKDOOR, 'trojan_traced.pt'), { device: 'cpu' });
      const scan = await scanBackdoor(model, { size: 32, classes: [0, 1, 2], ...BACKDOOR_FAST, samples: 2, iterations: 4, refineSteps: 2 });
      writeFileSync(join(out, 'scan.json'), '{"earlier": true}\n');
      writeFileSync(join(out, 'scan.html'), '<p>earlier</p>');
      const controller = new AbortController();
      controller.abort();
      expect((await rejection(scan.writePictures(out, { signal: controller.signal }))).code).toBe('ABORT_ERR');
      expect(readdirSync(out)).toEqual([]);
      const written = await scan.writePictures(out, { scale: 1 });
      expect(written.at(-1)).toBe(join(out, 'scan.json'));
      expect(JSON.parse(readFileSync(join(out, 'scan.json'), 'utf8')).classes).toHaveLength(3);
      expect(readdirSync(out).filter((f) => f.endsWith('.tmp'))).toEqual([]);
    } finally {
      rmSync(out, { recursive: true, force: true });
    }
  }, 60_000);
});
