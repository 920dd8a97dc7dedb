// Fuzzing over the public API (test/integration/children/fuzz.ts, in a child process with a deadline): random
// bytes and damaged PNGs/JPEGs as images, truncated and damaged archives and random bytes as models, random
// option objects and images for every method, evaluate() and scanBackdoor() with random items and options, random
// annotation JSON. Each call must give a typed error that is not a raw ERR_TORCH or
// ERR_NATIVE, or a finite result, within its own deadline; the process must neither crash nor hang.
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { ROOT } from './helpers.js';

describe('fuzz', () => {
  it('random images, models and options: typed errors or finite results, no crash, no hang', () => {
    const script = join(ROOT, 'test', 'integration', 'children', 'fuzz.ts');
    const seed = String(Number(process.env.TS_FUZZ_SEED ?? 20261206));
    const r = spawnSync(process.execPath, ['--import', 'tsx', script, seed, '25'], { cwd: ROOT, encoding: 'utf8', timeout: 55_000, killSignal: 'SIGKILL' });
    expect(r.signal, `seed ${seed}: killed by ${r.signal} (crash or hang): ${r.stderr.slice(-2000)}`).toBeNull();
    expect(r.status, `seed ${seed}: ${r.stderr.slice(-2000)}`).toBe(0);
    const out = JSON.parse(r.stdout.trim().split('\n').pop() ?? '{}') as {
      cases: number;
      codes: Record<string, number>;
      okBy: Record<string, number>;
      failures: string[];
    };
    expect(out.failures, `seed ${seed}`).toEqual([]);
    expect(out.cases).toBeGreaterThan(100);
    expect(out.codes.ok).toBeGreaterThan(0);
    // The applications' success paths are reached too, not only their errors.
    expect(out.okBy.evaluate, JSON.stringify(out.okBy)).toBeGreaterThan(0);
    expect(out.okBy.scanBackdoor, JSON.stringify(out.okBy)).toBeGreaterThan(0);
  }, 60_000);
});
