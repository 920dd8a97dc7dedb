// The command line as a user runs it: data on stdout, logs on stderr, exit codes 0 / 1 / 2.
import { describe, expect, it } from 'vitest';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ROOT } from './helpers.js';
import { parseArgs } from '../../lib/cli/index.js';
import { parseValue } from '../../lib/parse.js';

function cli(...args: string[]) {
  const r = spawnSync(process.execPath, ['--import', 'tsx', join(ROOT, 'lib', 'cli', 'index.ts'), ...args], { cwd: ROOT, encoding: 'utf8', timeout: 120_000 });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

const model = ['--model', 'examples/model/classifier.pt', '--labels', 'examples/model/labels.txt'];

describe('cli', () => {
  it('parses flags and values', () => {
    const p = parseArgs(['explain', '--areas', '0.05,0.1', '--json', '--max-iter=300', 'a.png', 'b.png']);
    expect(p.command).toBe('explain');
    expect(p.positional).toEqual(['a.png', 'b.png']);
    expect(p.flags.get('json')).toBe(true);
    expect(parseValue(p.flags.get('areas')!)).toEqual([0.05, 0.1]);
    expect(parseValue(p.flags.get('max-iter')!)).toBe(300);
    expect(parseValue('fade')).toBe('fade');
    expect(parseValue('false')).toBe(false);
  });

  it('explains images, writes pictures and a summary, and prints JSON with --json', () => {
    const out = mkdtempSync(join(tmpdir(), 'ts-cli-'));
    const r = cli('explain', ...model, '--method', 'gradient', '--json', '--out', out, 'examples/images/disc.png', 'examples/images/cross.png');
    expect(r.code, r.stderr).toBe(0);
    const summary = JSON.parse(r.stdout);
    expect(summary.method).toBe('gradient');
    expect(summary.maps.map((m: { label: string }) => m.label)).toEqual(['disc', 'cross']);
    expect(JSON.parse(readFileSync(join(out, 'summary.json'), 'utf8')).maps).toHaveLength(2);
    for (const f of ['disc-disc-overlay.png', 'disc-disc-mask.png', 'cross-cross-heatmap.png', 'disc.png']) expect(existsSync(join(out, f)), f).toBe(true);
  });

  it('predicts', () => {
    const r = cli('predict', ...model, 'examples/images/square.png');
    expect(r.code, r.stderr).toBe(0);
    expect(JSON.parse(r.stdout)[0].top[0].label).toBe('square');
  });

  it('exits 2 with a message on bad usage, and 0 on --help', () => {
    const noModel = cli('explain', 'examples/images/disc.png');
    expect(noModel.code).toBe(2);
    expect(noModel.stderr).toMatch(/--model/);
    const badMethod = cli('explain', ...model, '--method', 'nope', 'examples/images/disc.png');
    expect(badMethod.code).toBe(2);
    expect(badMethod.stderr).toMatch(/ERR_INVALID_ARG_VALUE/);
    // The caller's errors of lib/errors.ts exit 2, as the service answers them with 400: an image that is not one.
    const notImage = cli('predict', ...model, 'examples/model/labels.txt');
    expect(notImage.code).toBe(2);
    expect(notImage.stderr).toMatch(/ERR_IMAGE_DECODE/);
    const missing = cli('explain', '--model', 'missing.pt', 'examples/images/disc.png');
    expect(missing.code).toBe(1);
    expect(missing.stderr).toMatch(/ERR_MODEL_LOAD/);
    const help = cli('--help');
    expect(help.code).toBe(0);
    expect(help.stdout).toMatch(/^torch-saliency/);
  });
});
