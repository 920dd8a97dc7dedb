#!/usr/bin/env bash
# Makes a checkout ready to run: libtorch (installed if missing), npm packages, the native addon and the
# TypeScript build. Each step is skipped when already done, so `npm test` and `npm run example` call it
# every time at little cost. Needs root (or sudo) only when libtorch or build tools must be installed.
set -euo pipefail
cd "$(dirname "$0")/.."

say() { printf 'torch-saliency setup: %s\n' "$*" >&2; }
as_root() { if [ "$(id -u)" = 0 ]; then "$@"; elif command -v sudo >/dev/null; then sudo "$@"; else say "need root for: $*"; exit 1; fi; }

missing=()
for tool in cmake g++ ninja; do command -v "$tool" >/dev/null || missing+=("$tool"); done
if [ ${#missing[@]} -gt 0 ]; then
  say "installing build tools (${missing[*]})"
  as_root apt-get update -qq
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq cmake g++ ninja-build >/dev/null
fi

bash scripts/install-libtorch.sh

if [ ! -d node_modules/cmake-js ] || [ ! -d node_modules/vitest ]; then
  say "installing npm packages (this builds the addon)"
  if [ -f package-lock.json ]; then npm ci --no-audit --no-fund; else npm install --no-audit --no-fund; fi
fi
if [ ! -f build/Release/torch_saliency.node ]; then
  say "building the native addon"
  node scripts/build-native.js
fi
if [ ! -f dist/index.js ] || [ -n "$(find lib -name '*.ts' -newer dist/index.js -print -quit)" ]; then
  say "compiling TypeScript"
  npx tsc -p tsconfig.build.json && node scripts/write-esm-entry.js
fi
