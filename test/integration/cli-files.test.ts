// The command line's files (issue 13 item 1): --out checked before any work, inputs never overwritten, one
// distinct folder per input (same base names, non-ASCII names), atomic writes, --pictures whitelisted,
// SIGINT leaves a summary that says what is complete, and --resume finishes the run.
import { describe, expect, it } from 'vitest';
import { spawn, spawnSync } from 'node:child_process';
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ROOT } from './helpers.js';
import { picturesFlag, safeName, uniqueNames } from '../../lib/cli/files.js';
import { writePicture } from '../../lib/pictures.js';

const CLI = [process.execPath, '--import', 'tsx', join(ROOT, 'lib', 'cli', 'index.ts')] as const;
const MODEL = ['--model', join(ROOT, 'examples/model/classifier.pt'), '--labels', join(ROOT, 'examples/model/labels.txt')];
const IMAGES = join(ROOT, 'examples', 'images');

function cli(args: string[], cwd = ROOT) {
  const r = spawnSync(CLI[0], [...CLI.slice(1), ...args], { cwd, encoding: 'utf8', timeout: 60_000 });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr, signal: r.signal };
}

const temp = () => mkdtempSync(join(tmpdir(), 'ts-cli-files-'));
const json = (path: string) => JSON.parse(readFileSync(path, 'utf8'));

/** Every file under `dir`, relative. */
function walk(dir: string, prefix = ''): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) => (e.isDirectory() ? walk(join(dir, e.name), `${prefix}${e.name}/`) : [`${prefix}${e.name}`]));
}

describe('cli files: names', () => {
  it('keeps letters of any script, replaces what could mean something to a shell, and never gives an empty name', () => {
    expect(safeName('a/猫.png')).toBe('猫');
    expect(safeName('photos/chat noir (1).JPG')).toBe('chat_noir_1_');
    expect(safeName('..png')).toBe('image');
    expect(safeName('$.png')).toBe('image');
    expect(uniqueNames(['a/y.png', 'b/y.png', 'c/Y.jpg', 'summary.json.png'])).toEqual(['y', 'y-2', 'Y-3', 'summary.json-2']);
    expect(uniqueNames(['猫.png', '犬.png'])).toEqual(['猫', '犬']);
  });

  it('takes only known picture kinds for --pictures', () => {
    expect(picturesFlag('mask,overlay,mask')).toEqual(['mask', 'overlay']);
    expect(() => picturesFlag('mask,/../../escaped')).toThrow(expect.objectContaining({ code: 'ERR_INVALID_ARG_VALUE', argument: '--pictures' }));
    expect(() => picturesFlag('bogus')).toThrow(expect.objectContaining({ argument: '--pictures' }));
  });

  it('writes pictures atomically: no temporary file is left and a folder level that is a file is a typed error', async () => {
    const dir = temp();
    const png = readFileSync(join(IMAGES, 'disc.png'));
    await writePicture(join(dir, 'a', 'b', 'p.png'), png);
    expect(readFileSync(join(dir, 'a', 'b', 'p.png'))).toEqual(png);
    expect(walk(dir)).toEqual(['a/b/p.png']);
    writeFileSync(join(dir, 'file'), 'x');
    await expect(writePicture(join(dir, 'file', 'p.png'), png)).rejects.toMatchObject({ code: 'ERR_INVALID_ARG_VALUE' });
    // Node 20's recursive mkdir spins forever under /proc; made level by level, it is an error at once.
    await expect(writePicture('/proc/forbidden/p.png', png)).rejects.toMatchObject({ code: 'ERR_INVALID_ARG_VALUE' });
  });
});

describe('cli files: explain', () => {
  it('never overwrites the input photo, even when --out is its folder (explain --size 64 --out dir dir/photo.png)', () => {
    const dir = temp();
    copyFileSync(join(IMAGES, 'disc.png'), join(dir, 'photo.png'));
    const before = readFileSync(join(dir, 'photo.png'));
    const r = cli(['explain', ...MODEL, '--method', 'gradient', '--size', '32', '--out', dir, join(dir, 'photo.png')]);
    expect(r.code, r.stderr).toBe(0);
    expect(readFileSync(join(dir, 'photo.png'))).toEqual(before);
    expect(existsSync(join(dir, 'photo', 'image.png'))).toBe(true);
    // A run whose inputs are a previous run's pictures: the name whose folder holds an input is not used.
    const again = cli(['explain', ...MODEL, '--method', 'gradient', '--out', dir, join(dir, 'photo', 'image.png')]);
    expect(again.code, again.stderr).toBe(0);
    expect(json(join(dir, 'summary.json')).images[0].name).toBe('image');
    expect(readFileSync(join(dir, 'photo', 'image.png')).length).toBeGreaterThan(0);
  });

  it('gives inputs with one base name or non-ASCII names folders of their own, all complete', () => {
    const dir = temp();
    for (const [sub, src] of [
      ['a', 'disc'],
      ['b', 'cross'],
    ]) {
      mkdirSync(join(dir, sub));
      copyFileSync(join(IMAGES, `${src}.png`), join(dir, sub, 'y.png'));
    }
    copyFileSync(join(IMAGES, 'square.png'), join(dir, '猫.png'));
    copyFileSync(join(IMAGES, 'triangle.png'), join(dir, '犬.png'));
    const out = join(dir, 'out');
    const r = cli([
      'explain',
      ...MODEL,
      '--method',
      'gradient',
      '--pictures',
      'mask',
      '--out',
      out,
      join(dir, 'a/y.png'),
      join(dir, 'b/y.png'),
      join(dir, '猫.png'),
      join(dir, '犬.png'),
    ]);
    expect(r.code, r.stderr).toBe(0);
    const summary = json(join(out, 'summary.json'));
    expect(summary.images.map((e: { name: string }) => e.name)).toEqual(['y', 'y-2', '猫', '犬']);
    expect(walk(out).sort()).toEqual(
      ['y', 'y-2', '猫', '犬']
        .flatMap((n) => [`${n}/gradient-c${json(join(out, n, 'result.json')).top[0].index}-mask.png`, `${n}/image.png`, `${n}/result.json`])
        .concat('summary.json')
        .sort(),
    );
    expect(['y', 'y-2', '猫', '犬'].map((n) => json(join(out, n, 'result.json')).top[0].label)).toEqual(['disc', 'cross', 'square', 'triangle']);
  });

  it('checks --out before loading the model: a file, a path through a file, or a path that cannot be made exits 2 at once', () => {
    const dir = temp();
    writeFileSync(join(dir, 'file'), 'x');
    const image = join(IMAGES, 'disc.png');
    // The model does not exist: the --out error comes first.
    for (const out of [join(dir, 'file'), join(dir, 'file', 'sub'), '/proc/forbidden/out']) {
      const t0 = Date.now();
      const r = cli(['explain', '--model', join(dir, 'missing.pt'), '--out', out, image]);
      expect(r.code, `${out}: ${r.stderr}`).toBe(2);
      expect(r.stderr).toMatch(/--out/);
      expect(r.stderr).toMatch(/ERR_INVALID_ARG_VALUE/);
      expect(Date.now() - t0).toBeLessThan(30_000);
    }
    expect(readFileSync(join(dir, 'file'), 'utf8')).toBe('x');
  });

  it('refuses --pictures outside the whitelist before any work, and writes nothing outside --out', () => {
    const dir = temp();
    const out = join(dir, 'out');
    for (const pictures of ['mask,/../../escaped', 'bogus']) {
      const r = cli(['explain', ...MODEL, '--method', 'gradient', '--pictures', pictures, '--out', out, join(IMAGES, 'disc.png')]);
      expect(r.code).toBe(2);
      expect(r.stderr).toMatch(/--pictures/);
    }
    expect(walk(dir)).toEqual([]);
  });

  it('skips an image that cannot be decoded, records why, finishes the others and exits 1; folders and globs as inputs', () => {
    const dir = temp();
    const photos = join(dir, 'photos');
    mkdirSync(photos);
    copyFileSync(join(IMAGES, 'disc.png'), join(photos, 'a.png'));
    writeFileSync(join(photos, 'b.png'), 'not a png');
    copyFileSync(join(IMAGES, 'cross.png'), join(photos, 'c.png'));
    writeFileSync(join(photos, 'notes.txt'), 'ignored: not an image name');
    const out = join(dir, 'out');
    const r = cli(['explain', ...MODEL, '--method', 'gradient', '--out', out, photos]);
    expect(r.code, r.stderr).toBe(1);
    const summary = json(join(out, 'summary.json'));
    expect(summary.images.map((e: { name: string; state: string }) => [e.name, e.state])).toEqual([
      ['a', 'done'],
      ['b', 'failed'],
      ['c', 'done'],
    ]);
    expect(summary.images[1].error.code).toBe('ERR_IMAGE_DECODE');
    expect(summary.complete).toBe(true);
    const glob = cli(['explain', ...MODEL, '--method', 'gradient', '--out', join(dir, 'out2'), `${photos}/[ac].png`]);
    expect(glob.code, glob.stderr).toBe(0);
    expect(json(join(dir, 'out2', 'summary.json')).images.map((e: { name: string }) => e.name)).toEqual(['a', 'c']);
    const none = cli(['explain', ...MODEL, '--method', 'gradient', '--out', join(dir, 'out3'), `${photos}/*.jpg`]);
    expect(none.code).toBe(2);
    expect(none.stderr).toMatch(/matched none/);
  });

  it('on SIGINT stops, writes summary.json with complete: false and exits 130, leaving only whole files; --resume finishes', async () => {
    const dir = temp();
    const out = join(dir, 'out');
    const images = ['disc', 'cross', 'square', 'triangle'].map((n) => join(IMAGES, `${n}.png`));
    const args = ['explain', ...MODEL, '--method', 'extremal-perturbation', '--areas', '0.1', '--max-iter', '1500', '--out', out, ...images];
    const child = spawn(CLI[0], [...CLI.slice(1), ...args], { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'] });
    let stderr = '';
    child.stderr.on('data', (d) => (stderr += d));
    const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
    // Interrupt once the first image is done and the second is under way.
    const deadline = Date.now() + 90_000;
    while (!existsSync(join(out, 'disc', 'result.json')) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
    expect(existsSync(join(out, 'disc', 'result.json')), stderr).toBe(true);
    child.kill('SIGINT');
    expect(await exited, stderr).toBe(130);
    const summary = json(join(out, 'summary.json'));
    expect(summary.complete).toBe(false);
    expect(summary.images[0]).toMatchObject({ name: 'disc', state: 'done' });
    expect(summary.images.length).toBeLessThan(4);
    const files = walk(out);
    expect(files.filter((f) => f.endsWith('.tmp') || f.includes('/.'))).toEqual([]);
    for (const f of files.filter((f) => f.endsWith('.png'))) {
      const bytes = readFileSync(join(out, f));
      expect(bytes.subarray(1, 4).toString(), f).toBe('PNG');
      expect(statSync(join(out, f)).size).toBeGreaterThan(60);
    }
    // --resume: the finished image is not computed again; the others are.
    const r = cli([...args.slice(0, -4), '--max-iter', '20', '--resume', ...images]);
    expect(r.code, r.stderr).toBe(0);
    const resumed = json(join(out, 'summary.json'));
    expect(resumed.complete).toBe(true);
    expect(resumed.images.map((e: { state: string }) => e.state)).toEqual(['resumed', 'done', 'done', 'done']);
    expect(json(join(out, 'disc', 'result.json')).methods['extremal-perturbation'].options.maxIter).toBe(1500);
  }, 150_000);
});
