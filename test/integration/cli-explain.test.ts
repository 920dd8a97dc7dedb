// explain with several methods in one run: shared options go to every method that has them, --<method>.<option>
// to one method, and each method's maps, pictures, options and timings land in the image's result.json.
import { describe, expect, it } from 'vitest';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, readdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadModel, readImage } from '../../lib/index.js';
import { ROOT } from './helpers.js';

const MODEL = join(ROOT, 'examples/model/classifier.pt');
const LABELS = join(ROOT, 'examples/model/labels.txt');
const DISC = join(ROOT, 'examples/images/disc.png');

function cli(...args: string[]) {
  const r = spawnSync(process.execPath, ['--import', 'tsx', join(ROOT, 'lib', 'cli', 'index.ts'), ...args], { cwd: ROOT, encoding: 'utf8', timeout: 120_000 });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

describe('cli explain: several methods', () => {
  it('routes shared and per-method options, writes each method maps and pictures, and the maps are the library call maps', async () => {
    const out = mkdtempSync(join(tmpdir(), 'ts-cli-explain-'));
    const r = cli(
      'explain',
      '--model',
      MODEL,
      '--labels',
      LABELS,
      '--out',
      out,
      '--json',
      '--method',
      'grad-cam,rise,extremal-perturbation',
      '--layer',
      'features.3',
      '--rise.num-masks',
      '300',
      '--seed',
      '7',
      '--areas',
      '0.1,0.2',
      '--max-iter',
      '40',
      '--extremal-perturbation.smooth',
      '0.05',
      '--target',
      'top-2',
      DISC,
    );
    expect(r.code, r.stderr).toBe(0);
    const summary = JSON.parse(r.stdout);
    expect(summary.methods).toEqual(['grad-cam', 'rise', 'extremal-perturbation']);
    const result = JSON.parse(readFileSync(join(out, 'disc', 'result.json'), 'utf8'));
    const { 'grad-cam': gc, rise, 'extremal-perturbation': ep } = result.methods;
    // --layer went to grad-cam only (rise has no layer); --seed to rise; --<method>.<option> to its method alone.
    expect(gc.options.layer).toBe('features.3');
    expect(rise.options).toMatchObject({ numMasks: 300, seed: 7, smooth: 0 });
    expect(ep.options).toMatchObject({ areas: [0.1, 0.2], maxIter: 40, smooth: 0.05 });
    // top-2: two classes per method, EP one map per class and area.
    expect(gc.maps.map((m: { label: string }) => m.label)).toEqual(['disc', result.top[1].label]);
    expect(ep.maps).toHaveLength(4);
    for (const m of [...gc.maps, ...rise.maps, ...ep.maps]) {
      for (const path of Object.values(m.pictures as Record<string, string>)) expect(existsSync(join(out, path)), path).toBe(true);
    }
    expect(Object.keys(ep.maps[0].pictures).sort()).toEqual(['heatmap', 'mask', 'overlay', 'preserved']);
    expect(gc.timings.totalMs).toBeGreaterThan(0);
    // The same call through the library gives the map whose statistics the CLI recorded (Grad-CAM is deterministic).
    const model = await loadModel(MODEL, { labels: LABELS });
    try {
      const lib = await model.explain(await readImage(DISC), { method: 'grad-cam', layer: 'features.3', target: 'top-2' });
      const s = lib.maps[0].stats();
      expect(gc.maps[0].max).toBeCloseTo(s.max, 5);
      expect(gc.maps[0].mean).toBeCloseTo(s.mean, 5);
    } finally {
      model.dispose();
    }
  });

  it('checks every method option before reading any image: a bad one exits 2 and nothing is written', () => {
    const out = mkdtempSync(join(tmpdir(), 'ts-cli-explain-'));
    const r = cli('explain', '--model', MODEL, '--out', out, '--method', 'gradient,rise', '--rise.num-masks', '-5', DISC);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/numMasks/);
    expect(readdirSync(out)).toEqual([]);
  });

  it.skipIf(!existsSync('/usr/bin/script'))('draws one progress bar of (image, method) steps on stderr on a terminal, none otherwise', () => {
    const args = ['explain', '--model', MODEL, '--method', 'gradient,grad-cam', '--layer', 'features.3', '--pictures', 'mask'];
    const images = [DISC, join(ROOT, 'examples/images/cross.png')];
    const plain = cli(...args, '--out', mkdtempSync(join(tmpdir(), 'ts-cli-explain-')), ...images);
    expect(plain.code, plain.stderr).toBe(0);
    expect(plain.stderr).not.toMatch(/explain \[/);
    // script(1) runs the command on a pseudo-terminal (its output, stdout and stderr, comes back on script's stdout).
    const command = [
      process.execPath,
      '--import',
      'tsx',
      join(ROOT, 'lib', 'cli', 'index.ts'),
      ...args,
      '--out',
      mkdtempSync(join(tmpdir(), 'ts-cli-explain-')),
      ...images,
    ].join(' ');
    const tty = spawnSync('script', ['-qec', command, '/dev/null'], { cwd: ROOT, encoding: 'utf8', timeout: 120_000 });
    expect(tty.status, tty.stdout).toBe(0);
    expect(tty.stdout).toMatch(/explain \[[^\]]*\] 4\/4/);
  });
});
