// The fused CPU kernels of the extremal-perturbation step (mask generator, pyramid apply, area penalty)
// against their composed ATen formulations, values and gradients: test/native/kernels.cc, built with the
// addon as build/ts_native_tests. Each line it prints is one comparison; all must pass. And the rewrite of
// fused attention (test/native/fused_attention.cc, build/ts_fused_attention_tests) against the fused ops.
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { ROOT } from './helpers.js';

describe('fused CPU kernels (native)', () => {
  // The generator's kernels of every ISA the CPU has are compared in either run; the penalty's window
  // compaction follows the process-wide choice (TORCH_SALIENCY_SIMD), so the portable run covers its
  // portable loop.
  it.each(['best', 'generic'])(
    'match the composed ATen ops on every case (%s kernels)',
    (simd) => {
      // beside the addon under test (scripts/check-pytorch-libtorch.sh points TORCH_SALIENCY_ADDON at its own build)
      const addon = process.env.TORCH_SALIENCY_ADDON;
      const exe = join(addon ? dirname(dirname(addon)) : join(ROOT, 'build'), 'ts_native_tests');
      expect(existsSync(exe), `${exe} is built with the addon (npm run build:native)`).toBe(true);
      const env: NodeJS.ProcessEnv = { ...process.env, OMP_NUM_THREADS: '1' };
      if (simd === 'generic') env.TORCH_SALIENCY_SIMD = 'generic';
      else delete env.TORCH_SALIENCY_SIMD;
      const r = spawnSync(exe, { encoding: 'utf8', env, timeout: 120_000 });
      const lines = r.stdout.trim().split('\n');
      const failed = lines.filter((l) => l.startsWith('FAIL'));
      expect(failed, r.stderr).toEqual([]);
      expect(r.status).toBe(0);
      // every family of cases ran (a crash or an early exit would leave some out)
      for (const family of ['penalty', 'apply', 'generator'])
        expect(lines.filter((l) => l.startsWith('ok') && l.includes(` ${family} `)).length).toBeGreaterThan(10);
      // the loop's copy of the model (channels-last, frozen, both) against the model itself
      expect(lines.filter((l) => l.startsWith('ok') && l.includes(' loop copy ')).length).toBe(9);
    },
    120_000,
  );

  it("fused attention taken apart (core/fused_attention) equals the fused ops and scaled_dot_product_attention's reference", () => {
    const addon = process.env.TORCH_SALIENCY_ADDON;
    const exe = join(addon ? dirname(dirname(addon)) : join(ROOT, 'build'), 'ts_fused_attention_tests');
    expect(existsSync(exe), `${exe} is built with the addon (npm run build:native)`).toBe(true);
    const r = spawnSync(exe, { encoding: 'utf8', env: { ...process.env, OMP_NUM_THREADS: '1' }, timeout: 120_000 });
    const lines = r.stdout.trim().split('\n');
    expect(
      lines.filter((l) => l.startsWith('FAIL')),
      r.stderr,
    ).toEqual([]);
    expect(r.status).toBe(0);
    // Every family ran; the skips are cases this libtorch's own op refuses (1.13: L x S masks, cross-attention).
    for (const family of ['sdpa', 'mha', 'encoder']) expect(lines.filter((l) => l.startsWith(`ok   ${family} `)).length).toBeGreaterThanOrEqual(6);
  }, 120_000);
});
