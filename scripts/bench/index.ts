// `npm run bench`: runs every benchmark topic in scripts/bench/ (each a file runnable on its own as
// `npx tsx scripts/bench/<topic>.ts` that prints its ratios), predict first, one at a time, each in its own
// process. `npm run bench -- predict methods` runs only the named topics.
import { spawnSync } from 'node:child_process';
import { readdirSync } from 'node:fs';
import { join } from 'node:path';

const dir = __dirname;
const wanted = process.argv.slice(2);
const topics = readdirSync(dir)
  .filter((f) => f.endsWith('.ts') && !f.endsWith('.d.ts') && f !== 'index.ts' && !f.startsWith('_'))
  .map((f) => f.slice(0, -3))
  .filter((t) => wanted.length === 0 || wanted.includes(t))
  .sort((a, b) => (a === 'predict' ? -1 : b === 'predict' ? 1 : a.localeCompare(b)));

if (topics.length === 0) {
  console.error(`bench: no topic matches ${wanted.join(', ')} in ${dir}`);
  process.exit(2);
}

const failed: string[] = [];
for (const topic of topics) {
  console.log(`\n=== ${topic} ===`);
  const start = performance.now();
  // OpenMP threads spin while waiting for work; on a machine whose cores are shared with other busy
  // processes that makes the bare-libtorch baselines erratic (up to 10x slower run to run). Every topic
  // runs both sides with passive waiting unless the caller set OMP_WAIT_POLICY.
  const env = { ...process.env, OMP_WAIT_POLICY: process.env.OMP_WAIT_POLICY ?? 'PASSIVE' };
  const r = spawnSync(process.execPath, ['--import', 'tsx', join(dir, `${topic}.ts`)], { stdio: 'inherit', env });
  const seconds = ((performance.now() - start) / 1000).toFixed(1);
  if (r.status !== 0) {
    failed.push(topic);
    console.log(`=== ${topic}: FAILED (exit ${r.status ?? r.signal}) after ${seconds} s`);
  } else console.log(`=== ${topic}: ${seconds} s`);
}
if (failed.length) {
  console.error(`bench: failed topics: ${failed.join(', ')}`);
  process.exit(1);
}
