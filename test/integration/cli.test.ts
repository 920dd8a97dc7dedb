// The command line as a user runs it: data on stdout, logs on stderr, exit codes 0 / 1 / 2.
import { describe, expect, it } from 'vitest';
import { execFile, spawn, spawnSync } from 'node:child_process';
import { createServer, type AddressInfo } from 'node:net';
import { existsSync, mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { ROOT } from './helpers.js';
import { parseFlags } from '../../lib/cli/index.js';
import { parseValue } from '../../lib/parse.js';

function cli(...args: string[]) {
  const r = spawnSync(process.execPath, ['--import', 'tsx', join(ROOT, 'lib', 'cli', 'index.ts'), ...args], { cwd: ROOT, encoding: 'utf8', timeout: 120_000 });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

const model = ['--model', 'examples/model/classifier.pt', '--labels', 'examples/model/labels.txt'];

describe('cli', () => {
  it('parses flags and values', () => {
    const p = parseFlags(['--areas', '0.05,0.1', '--json', '--max-iter=300', 'a.png', 'b.png'], { json: { type: 'boolean' } }, { extra: () => true });
    expect(p.positionals).toEqual(['a.png', 'b.png']);
    expect(p.values.json).toBe(true);
    expect(p.extra).toEqual([
      { flag: 'areas', value: '0.05,0.1' },
      { flag: 'max-iter', value: '300' },
    ]);
    expect(parseValue(p.extra[0].value)).toEqual([0.05, 0.1]);
    expect(parseValue(p.extra[1].value)).toBe(300);
    expect(parseValue('fade')).toBe('fade');
    expect(parseValue('false')).toBe(false);
  });

  it('explains images, writes pictures and a summary, and prints JSON with --json', () => {
    const out = mkdtempSync(join(tmpdir(), 'ts-cli-'));
    const r = cli('explain', ...model, '--method', 'gradient', '--json', '--out', out, 'examples/images/disc.png', 'examples/images/cross.png');
    expect(r.code, r.stderr).toBe(0);
    const summary = JSON.parse(r.stdout);
    expect(summary.methods).toEqual(['gradient']);
    expect(summary.complete).toBe(true);
    expect(summary.images.map((e: { name: string; state: string }) => [e.name, e.state])).toEqual([
      ['disc', 'done'],
      ['cross', 'done'],
    ]);
    expect(JSON.parse(readFileSync(join(out, 'summary.json'), 'utf8'))).toEqual(summary);
    const disc = JSON.parse(readFileSync(join(out, 'disc', 'result.json'), 'utf8'));
    expect(disc.methods.gradient.maps.map((m: { label: string }) => m.label)).toEqual(['disc']);
    expect(disc.top[0].label).toBe('disc');
    for (const f of ['disc/gradient-c1-overlay.png', 'disc/gradient-c1-mask.png', 'cross/gradient-c3-heatmap.png', 'disc/image.png'])
      expect(existsSync(join(out, f)), f).toBe(true);
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
    // A model path that names no file is bad usage too (exit 2), as a missing labels file or image is.
    const missing = cli('explain', '--model', 'missing.pt', 'examples/images/disc.png');
    expect(missing.code).toBe(2);
    expect(missing.stderr).toMatch(/ERR_MODEL_NOT_FOUND/);
    const help = cli('--help');
    expect(help.code).toBe(0);
    expect(help.stdout).toMatch(/^torch-saliency/);
  });

  it('parses every command strictly: an unknown flag, a missing value or a bad number exits 2 naming the flag', () => {
    const cases: [string[], RegExp][] = [
      [['predict', ...model, '--bogus', '1', 'examples/images/disc.png'], /Unknown option --bogus/],
      [['predict', ...model, '--threads', 'abc', 'examples/images/disc.png'], /Expected a whole number for --threads/],
      [['predict', ...model, '--size'], /Expected a value after --size/],
      [['layers', ...model, 'extra.png'], /Unexpected argument/],
      [['explain', ...model, '--method', 'gradient', '--max-iter', '5', 'examples/images/disc.png'], /--max-iter: no method of --method \(gradient\)/],
      [['explain', ...model, '--method', 'gradient,rise', '--grad-cam.layer', 'x', 'examples/images/disc.png'], /--grad-cam.layer: grad-cam is not among/],
      [['explain', ...model, '--json=yes', 'examples/images/disc.png'], /Expected no value for --json/],
      // submit no longer passes unknown flags on as job options: rejected before Redis is reached.
      [['submit', '--redis', 'redis://127.0.0.1:1', '--model', 'm', '--bogus', '1', 'examples/images/disc.png'], /Unknown option --bogus/],
      [['serve', '--model', 'm.pt', '--port'], /Expected a value after --port/],
      [['serve', ...model, '--port', '99999'], /from 0 to 65535 for --port/],
    ];
    for (const [args, message] of cases) {
      const r = cli(...args);
      expect(r.code, args.join(' ')).toBe(2);
      expect(r.stderr).toMatch(message);
      expect(r.stderr).toMatch(/\[ERR_USAGE\]/);
      expect(r.stderr.trim().split('\n')).toHaveLength(1);
    }
  });

  it('submit: an unreachable Redis is one line and exit 1, a missing or non-regular image exit 2 (both waited forever)', () => {
    const unreachable = ['submit', '--redis', 'redis://127.0.0.1:1', '--model', 'm'];
    const r = spawnSync(process.execPath, ['--import', 'tsx', join(ROOT, 'lib', 'cli', 'index.ts'), ...unreachable, 'examples/images/disc.png'], {
      cwd: ROOT,
      encoding: 'utf8',
      timeout: 30_000,
      killSignal: 'SIGKILL',
    });
    expect([r.status, r.signal], r.stderr).toEqual([1, null]);
    expect(r.stderr.trim().split('\n')).toEqual([expect.stringMatching(/Cannot reach Redis at 127\.0\.0\.1:1: .*\[ERR_REDIS_UNAVAILABLE\]$/)]);
    for (const file of ['examples/images/missing.png', '/dev/zero']) {
      const m = cli(...unreachable, file);
      expect(m.code, m.stderr).toBe(2);
      expect(m.stderr).toMatch(/Cannot read image .*\[ERR_IMAGE_DECODE\]/);
    }
  }, 90_000);

  it('serve --redis: GET /ready answers 503 within seconds while Redis is unreachable (it never answered), SIGTERM ends it with 0 (it hung)', async () => {
    const child = spawn(process.execPath, ['--import', 'tsx', join(ROOT, 'lib', 'cli', 'index.ts'), 'serve', '--redis', 'redis://127.0.0.1:1', '--port', '0'], {
      cwd: ROOT,
    });
    try {
      const url = await new Promise<string>((resolve, reject) => {
        let stderr = '';
        child.stderr.on('data', (d) => {
          stderr += String(d);
          const m = /on (http:\/\/127\.0\.0\.1:\d+)/.exec(stderr);
          if (m) resolve(m[1]);
        });
        child.on('exit', () => reject(new Error(stderr)));
      });
      const r = await fetch(`${url}/ready`, { signal: AbortSignal.timeout(10_000) });
      expect(r.status).toBe(503);
      expect((await fetch(`${url}/health`)).status).toBe(200);
      // SIGTERM ends it, exit 0 (it hung in closing its queue connections, which never connected).
      const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
      child.kill('SIGTERM');
      const code = await Promise.race([exited, sleep(15_000).then(() => 'hung')]);
      expect(code).toBe(0);
    } finally {
      child.kill('SIGKILL');
    }
  }, 60_000);

  it('says a failure while running in one line: serve on a port in use exits 1 without a stack', async () => {
    const server = createServer();
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    try {
      const port = (server.address() as AddressInfo).port;
      const r = await new Promise<{ code: number | null; stderr: string }>((resolve) => {
        execFile(
          process.execPath,
          ['--import', 'tsx', join(ROOT, 'lib', 'cli', 'index.ts'), 'serve', ...model, '--port', String(port)],
          { cwd: ROOT, timeout: 60_000 },
          (e, _out, stderr) => resolve({ code: e ? ((e as { code?: number }).code ?? null) : 0, stderr }),
        );
      });
      expect(r.code).toBe(1);
      expect(r.stderr).toMatch(/EADDRINUSE/);
      expect(r.stderr.trim().split('\n')).toHaveLength(1);
    } finally {
      server.close();
    }
  });
});
