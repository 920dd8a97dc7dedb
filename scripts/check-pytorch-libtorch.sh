#!/usr/bin/env bash
# Proves the second libtorch source: builds the addon against PyPI torch (2.x) into its own build folder,
# next to the default build, and runs the integration tests against that build.
#
#   bash scripts/check-pytorch-libtorch.sh [--python /path/to/python-with-torch] [--build-dir DIR]
#
# The python is, in order: --python, TS_PYTHON, the venv of scripts/install-libtorch.sh --source pypi
# (TS_VENV, default ~/.cache/torch-saliency/venv), which is created and filled with `pip install torch`
# when missing (several GB with torch's CUDA libraries). The build goes to build-pytorch/ (or --build-dir);
# the tests pick it through TORCH_SALIENCY_ADDON, so the default build in build/ is left alone.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD

say() { printf 'check-pytorch-libtorch: %s\n' "$*" >&2; }
die() { say "error: $*"; exit 1; }

py="${TS_PYTHON:-}"
out="build-pytorch"
while [ $# -gt 0 ]; do
  case "$1" in
    --python) py="${2:-}"; shift 2 ;;
    --python=*) py="${1#*=}"; shift ;;
    --build-dir) out="${2:-}"; shift 2 ;;
    --build-dir=*) out="${1#*=}"; shift ;;
    -h|--help) sed -n '2,11p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) die "unknown argument '$1' (see --help)" ;;
  esac
done

start=$(date +%s)
if [ -z "$py" ]; then
  venv="${TS_VENV:-${HOME:-/root}/.cache/torch-saliency/venv}"
  bash scripts/install-libtorch.sh --source pypi --venv "$venv"
  py="$venv/bin/python"
fi
version=$("$py" -c 'import torch; print(torch.__version__)' 2>/dev/null) || die "$py has no torch (pip install torch, or pass --python)"
say "PyPI torch $version from $py ($(( $(date +%s) - start )) s so far)"

[ -d node_modules/cmake-js ] || die "node_modules is missing: run npm ci first"

# The same cmake-js call as scripts/build-native.js, into another folder and with the python's torch only.
args=(rebuild --out "$out" --parallel "$(nproc)" "--CDTS_PYTHON=$py")
command -v ccache >/dev/null 2>&1 && args+=(--CDCMAKE_CXX_COMPILER_LAUNCHER=ccache)
say "building the addon against it into $out/ (compiling against torch 2.x headers takes a few minutes)"
build_start=$(date +%s)
env -u LIBTORCH -u Torch_DIR CCACHE_SLOPPINESS=pch_defines,time_macros,include_file_mtime,include_file_ctime CCACHE_BASEDIR="$root" \
  node node_modules/cmake-js/bin/cmake-js "${args[@]}" > "$out.log" 2>&1 || { tail -n 40 "$out.log" >&2; die "the build failed (full log: $out.log)"; }
grep -m1 'torch-saliency: libtorch from' "$out.log" >&2 || true
grep -q 'libtorch from python torch' "$out.log" || die "the build did not use the python's torch (see $out.log)"
build_s=$(( $(date +%s) - build_start ))
addon="$root/$out/Release/torch_saliency.node"
[ -f "$addon" ] || die "no addon at $addon"
say "built in ${build_s} s: $addon"

export TORCH_SALIENCY_ADDON="$addon"
node -e "const r = require('$addon').runtime(); console.error('check-pytorch-libtorch: addon loads libtorch ' + r.torchVersion + ', CUDA ' + r.cudaAvailable); if (!/^2\./.test(r.torchVersion)) process.exit(1);" \
  || die "the addon in $out does not run on libtorch 2.x"

[ -f dist/index.js ] || npm run --silent build:ts
say "integration tests against it"
test_start=$(date +%s)
npx vitest run test/integration
say "ok: PyPI torch $version: build ${build_s} s, tests $(( $(date +%s) - test_start )) s, total $(( $(date +%s) - start )) s"
