// Layer methods clone and edit the model's TorchScript module. The clones used to be registered in the
// model's own compilation unit: two explains at once mutated it together ("method ... already defined",
// double free), and every call left its clone's types and methods there (RSS grew call after call). Each
// check runs in a child process with a deadline, so a crash or a hang fails the test instead of the suite.
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { ROOT } from './helpers.js';

const SCRIPT = join(ROOT, 'test', 'integration', 'children', 'concurrent-explain.ts');

function child<T>(args: string[]): T {
  // More pool threads than the default 4 make the calls overlap more.
  const r = spawnSync(process.execPath, ['--import', 'tsx', SCRIPT, ...args], {
    cwd: ROOT,
    encoding: 'utf8',
    timeout: 60_000,
    killSignal: 'SIGKILL',
    env: { ...process.env, UV_THREADPOOL_SIZE: '8' },
  });
  expect(r.signal, `killed by ${r.signal}: ${r.stderr}`).toBeNull();
  expect(r.status, r.stderr).toBe(0);
  return JSON.parse(r.stdout.trim().split('\n').pop() ?? '{}') as T;
}

describe('concurrent explains on one model', () => {
  it('Grad-CAM, guided backprop, deconvnet, excitation backprop, linear approx and layerShapes at once: no crash, the serial maps', () => {
    const r = child<{ calls: number; maxDiff: number; lengthsEqual: boolean; nonEmpty: boolean }>(['concurrent', '30']);
    expect(r.calls).toBe(720);
    expect(r.nonEmpty).toBe(true);
    expect(r.lengthsEqual).toBe(true);
    expect(r.maxDiff).toBeLessThan(1e-6);
  }, 70_000);

  it('600 Grad-CAM / guided backprop / layerShapes calls grow RSS by under 64 MB', () => {
    const r = child<{ calls: number; startMB: number; endMB: number }>(['rss', '600']);
    expect(r.calls).toBe(600);
    expect(r.endMB - r.startMB).toBeLessThan(64);
  }, 70_000);
});
