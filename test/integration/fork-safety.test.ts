// Native work and child_process.spawn at the same time: Node forks on the event-loop thread, and a fork while a
// thread pool inside the BLAS library is busy used to block that thread forever (OpenBLAS's fork handler; see
// make_blas_fork_safe in native/core/model.cc). The work runs in a child process with a deadline, so a
// regression fails this test instead of hanging the suite.
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { ROOT } from './helpers.js';

describe('fork safety', () => {
  it('spawning children every 5 ms during extremal perturbations neither hangs nor fails', () => {
    const script = join(ROOT, 'test', 'integration', 'children', 'spawn-during-explain.ts');
    const r = spawnSync(process.execPath, ['--import', 'tsx', script, '4'], { cwd: ROOT, encoding: 'utf8', timeout: 100_000, killSignal: 'SIGKILL' });
    expect(r.signal, `killed after 100 s (a hang): ${r.stderr}`).toBeNull();
    expect(r.status, r.stderr).toBe(0);
    const { runs, spawns } = JSON.parse(r.stdout.trim().split('\n').pop() ?? '{}') as { runs: number; spawns: number };
    expect(runs).toBe(4);
    expect(spawns).toBeGreaterThan(20); // the spawns really overlapped the native work
  }, 110_000);
});
