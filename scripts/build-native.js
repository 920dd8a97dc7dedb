#!/usr/bin/env node
// Builds the native addon with cmake-js. Run by `npm install` (skips when a build is present) and by
// `npm run build:native` (--force). libtorch is found by CMakeLists.txt; see README "Troubleshooting".
'use strict';
const { spawnSync } = require('node:child_process');
const fs = require('node:fs');
const path = require('node:path');
const os = require('node:os');

const root = path.resolve(__dirname, '..');
const addon = path.join(root, 'build', 'Release', 'torch_saliency.node');
const force = process.argv.includes('--force');
const debug = process.argv.includes('--debug');

if (!force && fs.existsSync(addon) && !process.env.TS_REBUILD) {
  console.error(`torch-saliency: native addon present (${path.relative(root, addon)}); run "npm run build:native" to rebuild.`);
  process.exit(0);
}

function has(cmd) {
  return spawnSync('sh', ['-c', `command -v ${cmd}`], { stdio: 'ignore' }).status === 0;
}

const cmakeJs = require.resolve('cmake-js/bin/cmake-js');
const args = [cmakeJs, force ? 'rebuild' : 'compile', '--parallel', String(Math.max(1, os.availableParallelism?.() ?? os.cpus().length))];
if (debug) args.push('--debug');
if (has('ccache')) args.push('--CDCMAKE_CXX_COMPILER_LAUNCHER=ccache');
for (const name of ['LIBTORCH', 'Torch_DIR', 'TS_PYTHON']) {
  if (process.env[name]) args.push(`--CD${name}=${process.env[name]}`);
}
if (!has('cmake')) {
  console.error('torch-saliency: cmake is not installed. Fix: sudo apt-get install -y cmake g++ (or: pip install cmake)');
  process.exit(1);
}
console.error(`torch-saliency: building the native addon (${args.slice(1).join(' ')})`);
const env = { ...process.env, CCACHE_SLOPPINESS: 'pch_defines,time_macros,include_file_mtime,include_file_ctime', CCACHE_BASEDIR: root };
const r = spawnSync(process.execPath, args, { cwd: root, stdio: 'inherit', env });
if (r.status !== 0) {
  console.error('\ntorch-saliency: the native build failed. If libtorch was not found, run: sudo bash scripts/install-libtorch.sh');
  process.exit(r.status ?? 1);
}
