#!/usr/bin/env bash
# Installs a libtorch for torch-saliency's native build when none is found; does nothing otherwise.
#
#   bash scripts/install-libtorch.sh                 # nothing if a libtorch is found, else Debian's
#                                                    #   libtorch-dev 1.13.1 (CPU) + OpenBLAS
#   bash scripts/install-libtorch.sh --source pypi   # PyPI torch 2.x in a virtual environment, unless there
#        [--venv DIR]                                #   (default: $TS_VENV or ~/.cache/torch-saliency/venv)
#   bash scripts/install-libtorch.sh --source debian # Debian's libtorch-dev, unless installed
#   bash scripts/install-libtorch.sh --check         # only say what is found (exit 1 when nothing is)
#
# Without --source it first looks, in the order the build (CMakeLists.txt) uses: LIBTORCH, Torch_DIR, the
# torch package of python3 (or of TS_PYTHON), the system (/usr/include/torch/script.h and libtorch_cpu.so),
# and leaves a found libtorch alone. With --source it makes sure that source is installed. Safe to run
# again. Installing needs root (or sudo) for apt-get; PyPI torch does not.
set -euo pipefail

say() { printf 'install-libtorch: %s\n' "$*" >&2; }
die() { say "error: $*"; exit 1; }

source_kind=
venv="${TS_VENV:-${HOME:-/root}/.cache/torch-saliency/venv}"
check_only=0
while [ $# -gt 0 ]; do
  case "$1" in
    --source) source_kind="${2:-}"; shift 2 ;;
    --source=*) source_kind="${1#*=}"; shift ;;
    --venv) venv="${2:-}"; shift 2 ;;
    --venv=*) venv="${1#*=}"; shift ;;
    --check) check_only=1; shift ;;
    -h|--help) sed -n '2,14p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) die "unknown argument '$1' (see --help)" ;;
  esac
done
case "$source_kind" in ''|debian|pypi) ;; *) die "--source must be 'debian' or 'pypi', not '$source_kind'" ;; esac

as_root() {
  if [ "$(id -u)" = 0 ]; then "$@"
  elif command -v sudo >/dev/null 2>&1; then sudo "$@"
  else die "root is needed to run: $* (run this script as root or install sudo)"; fi
}

# A LIBTORCH or Torch_DIR that is set but wrong would make the build fail: say so rather than install.
if [ -n "${LIBTORCH:-}" ] && { [ ! -f "$LIBTORCH/include/torch/script.h" ] || [ ! -f "$LIBTORCH/lib/libtorch_cpu.so" ]; }; then
  die "LIBTORCH=$LIBTORCH is not a libtorch root (no include/torch/script.h or lib/libtorch_cpu.so under it); unset it or fix it"
fi
if [ -n "${Torch_DIR:-}" ] && [ ! -f "$Torch_DIR/TorchConfig.cmake" ]; then
  die "Torch_DIR=$Torch_DIR holds no TorchConfig.cmake; unset it or fix it"
fi

# Prints what was found and returns 0, or returns 1.
find_libtorch() {
  if [ -n "${LIBTORCH:-}" ]; then echo "LIBTORCH=$LIBTORCH"; return 0; fi
  if [ -n "${Torch_DIR:-}" ]; then echo "Torch_DIR=$Torch_DIR"; return 0; fi
  local py="${TS_PYTHON:-python3}" where
  if command -v "$py" >/dev/null 2>&1 && where=$("$py" -c 'import os, torch; print(torch.__version__, os.path.dirname(torch.__file__))' 2>/dev/null); then
    echo "the torch package of $py: torch ${where}"; return 0
  fi
  find_system
}

find_system() {
  if [ -f /usr/include/torch/script.h ] || [ -f /usr/local/include/torch/script.h ]; then
    local lib
    lib=$(ls /usr/lib/*/libtorch_cpu.so /usr/lib/libtorch_cpu.so /usr/local/lib/libtorch_cpu.so 2>/dev/null | head -n 1 || true)
    if [ -n "$lib" ]; then echo "the system: $lib"; return 0; fi
  fi
  return 1
}

if [ -z "$source_kind" ] && found=$(find_libtorch); then
  say "libtorch found: $found; nothing to do."
  exit 0
fi
if [ "$check_only" = 1 ]; then
  say "no libtorch found (searched LIBTORCH, Torch_DIR, the torch of ${TS_PYTHON:-python3}, /usr/include/torch + libtorch_cpu.so)."
  say "fix: bash scripts/install-libtorch.sh   (or --source pypi)"
  exit 1
fi

apt_install() {
  command -v apt-get >/dev/null 2>&1 || die "apt-get not found: this installer knows Debian/Ubuntu; install PyTorch (pip install torch) and set TS_PYTHON, or point LIBTORCH at an unpacked libtorch"
  local missing=() p
  for p in "$@"; do dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p"); done
  [ ${#missing[@]} -eq 0 ] && return 0
  say "apt-get install ${missing[*]}"
  as_root apt-get update -qq
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
}

if [ "${source_kind:-debian}" = debian ]; then
  if [ -n "$source_kind" ] && found=$(find_system); then
    say "Debian's libtorch already installed: $found; nothing to do."
    exit 0
  fi
  say "installing Debian's libtorch-dev (1.13.1, CPU) with OpenBLAS (about 400 MB)"
  apt_install libtorch-dev libopenblas0-pthread
  found=$(find_system) || die "libtorch-dev is installed but /usr/include/torch/script.h or libtorch_cpu.so is missing"
  say "done: $found. Build the addon with: npm run build:native"
  exit 0
fi

# PyPI torch into a virtual environment.
py="$venv/bin/python"
if [ -x "$py" ] && "$py" -c 'import torch' 2>/dev/null; then
  say "PyPI torch already in $venv ($("$py" -c 'import torch; print(torch.__version__)'))"
else
  if [ ! -x "$py" ]; then
    if ! python3 -c 'import venv, ensurepip' 2>/dev/null; then apt_install python3-venv; fi
    say "creating the virtual environment $venv"
    mkdir -p "$(dirname "$venv")"
    python3 -m venv "$venv"
  fi
  say "pip install torch into $venv (several GB with its CUDA libraries; a few minutes)"
  "$py" -m pip install --quiet --disable-pip-version-check torch
fi
version=$("$py" -c 'import torch; print(torch.__version__)')
say "done: PyPI torch $version in $venv. Point the build at it:"
printf '  TS_PYTHON=%s npm run build:native\n' "$py"
