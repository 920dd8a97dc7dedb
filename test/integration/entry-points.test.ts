// The published entry points (dist/, from `npm run build:ts`) load under both module systems and run a model.
import { beforeAll, describe, expect, it } from 'vitest';
import { execFileSync } from 'node:child_process';
import { existsSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { ROOT, golden, model } from './helpers.js';

const dist = join(ROOT, 'dist');

beforeAll(() => {
  // `npm test` builds dist first (scripts/setup.sh); build it here too when it is missing or stale.
  const stale = !existsSync(join(dist, 'index.mjs')) || statSync(join(dist, 'index.js')).mtimeMs < statSync(join(ROOT, 'lib', 'model.ts')).mtimeMs;
  if (stale) execFileSync('npm', ['run', '--silent', 'build:ts'], { cwd: ROOT, stdio: 'pipe' });
}, 120_000);

/** Runs a script in a child node from the package root (so 'torch-saliency' resolves through package.json "exports"). */
function node(args: string[]): string {
  return execFileSync(process.execPath, args, { cwd: ROOT, encoding: 'utf8' }).trim();
}

const script = (load: string) => `
${load}
const x = Float32Array.from({ length: 3 * 32 * 32 }, (_, i) => 0.5 + 0.5 * Math.sin(0.1 * i));
(async () => {
  const m = await api.loadModel(${JSON.stringify(model('tiny_cnn_traced.pt'))}, { device: 'cpu' });
  const p = await m.predict({ data: x, channels: 3, height: 32, width: 32 });
  m.dispose();
  console.log(JSON.stringify({ logits: Array.from(p.logits), error: typeof api.TorchSaliencyError, methods: Array.isArray(api.methods()) }));
})().catch((e) => { console.error(e); process.exit(1); });`;

function check(out: string) {
  const r = JSON.parse(out);
  expect(r.error).toBe('function');
  expect(r.methods).toBe(true);
  r.logits.forEach((v: number, i: number) => expect(v).toBeCloseTo(golden.logits[0][i], 4));
}

describe('entry points', () => {
  it('CommonJS: require("torch-saliency")', () => {
    check(node(['-e', script("const api = require('torch-saliency');")]));
  });

  it('ES module: import from "torch-saliency", named and default exports', () => {
    const load =
      "import * as ns from 'torch-saliency'; import def from 'torch-saliency'; if (def.loadModel !== ns.loadModel) throw new Error('default and named exports differ'); const api = ns;";
    check(node(['--input-type=module', '-e', script(load)]));
  });

  it('types are emitted next to the CommonJS build', () => {
    expect(existsSync(join(dist, 'index.d.ts'))).toBe(true);
    expect(existsSync(join(dist, 'model.d.ts'))).toBe(true);
  });
});
