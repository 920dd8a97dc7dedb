// Run by rise.test.ts in its own process, so that its peak RSS is its own: RISE on a 64-px image, with the
// default batchSize, either (`masks`) 1500 masks to the end, or (`abort`) 10 million masks under
// AbortSignal.timeout(1000). Prints {"batchSize","peakMB","ms","code"}.
import { join } from 'node:path';
import { loadModel } from '../../../lib/index.js';

const ROOT = join(__dirname, '..', '..', '..');
const SIZE = 64;

async function main() {
  await using m = await loadModel(join(ROOT, 'test', 'fixtures', 'models', 'shapes_traced.pt'), { device: 'cpu' });
  const data = Float32Array.from({ length: 3 * SIZE * SIZE }, (_, i) => 0.5 + 0.5 * Math.sin(0.05 * i));
  const image = { data, channels: 3, height: SIZE, width: SIZE };
  const abort = process.argv[2] === 'abort';
  const t = performance.now();
  let batchSize = 0;
  let code = '';
  try {
    const r = await m.explain(image, { method: 'rise', target: 0, numMasks: abort ? 1e7 : 1500, ...(abort ? { signal: AbortSignal.timeout(1000) } : {}) });
    batchSize = r.options.batchSize;
  } catch (e) {
    code = (e as { code?: string }).code ?? String(e);
  }
  const ms = performance.now() - t;
  console.log(JSON.stringify({ batchSize, peakMB: process.resourceUsage().maxRSS / 1024, ms, code }));
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
