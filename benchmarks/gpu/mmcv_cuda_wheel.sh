#!/usr/bin/env bash
# Put an mmcv 2.1.0 wheel with CUDA ops, for the GPU machine's torch and Python, into DIR; built on
# this CPU machine (no GPU, no system CUDA toolkit) once and then taken from the cache.
#
#   bash benchmarks/gpu/mmcv_cuda_wheel.sh DIR        (prepare.sh calls it)
#
# SDT_DEVICE_TORCH (2.11.0) and SDT_DEVICE_PYTHON (3.12): what the GPU machine has; a wheel only
# loads with the torch it was compiled against. TORCH_CUDA_ARCH_LIST: default 9.0 (H100, H200).
# Steps, each cached under $SDT_CACHE:
#   1. gpu-check/venv-py<python>-torch<torch>: a venv with that torch and the build requirements
#      (python<ver> from PATH or pyenv; SDT_DEVICE_PYTHON_EXE to name one);
#   2. wheels/mmcv2.1.0-torch<torch.__version__>-py<python>-cuda<cuda>-sm<archs>/: the wheel, built by
#      tools/build_mmcv_cuda.sh (the same key as tools/setup_env.sh's, so either can reuse it); log in
#      logs/<key>.log;
#   3. gpu-check/<key>/: the same wheel with the debug info of its shared library stripped (it
#      travels within the 64 MiB limit).
set -Eeuo pipefail
DIR=${1:?usage: mmcv_cuda_wheel.sh DIR}
REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
CACHE=${SDT_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/sdt-dense}
DEVICE_PYTHON=${SDT_DEVICE_PYTHON:-3.12}
DEVICE_TORCH=${SDT_DEVICE_TORCH:-2.11.0}
ARCHS=${TORCH_CUDA_ARCH_LIST:-9.0}
export PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_NO_INPUT=1
msg() { printf '[mmcv_cuda_wheel] %s\n' "$*" >&2; }
die() { printf '[mmcv_cuda_wheel] ERROR: %s\n' "$*" >&2; exit 1; }

find_python() {
  local p
  for p in "${SDT_DEVICE_PYTHON_EXE:-}" "$(command -v "python$DEVICE_PYTHON" 2>/dev/null || true)" \
           "$HOME"/.pyenv/versions/"$DEVICE_PYTHON"*/bin/python"$DEVICE_PYTHON"; do
    if [[ -n $p && -x $p ]] && "$p" -c 'import sys' 2>/dev/null; then echo "$p"; return; fi
  done
  die "no python$DEVICE_PYTHON found (set SDT_DEVICE_PYTHON_EXE=/path/to/python$DEVICE_PYTHON)"
}

VENV=$CACHE/gpu-check/venv-py$DEVICE_PYTHON-torch$DEVICE_TORCH
VPY=$VENV/bin/python
if [[ ! -f $VENV/.ready ]]; then
  rm -rf "$VENV"
  msg "creating $VENV (torch==$DEVICE_TORCH and the build requirements; a few GB, once)"
  "$(find_python)" -m venv "$VENV"
  "$VPY" -m pip install -q "torch==$DEVICE_TORCH" -r "$REPO/requirements/build.txt" >&2
  touch "$VENV/.ready"
fi

KEY=$("$VPY" - "$ARCHS" <<'PY'
import sys
import torch
if not torch.version.cuda:
    raise SystemExit(f'[mmcv_cuda_wheel] ERROR: torch {torch.__version__} is a CPU-only build')
archs = sys.argv[1].replace('.', '')
for sep in ' ;,':
    archs = archs.replace(sep, '_')
print(f'mmcv2.1.0-torch{torch.__version__}-py{sys.version_info[0]}.{sys.version_info[1]}'
      f'-cuda{torch.version.cuda}-sm{archs}')
PY
)
WHEELS=$CACHE/wheels/$KEY
mkdir -p "$WHEELS" "$CACHE/logs"
wheel_in() { local w; shopt -s nullglob; w=("$1"/mmcv-2.1.0-*.whl); shopt -u nullglob; echo "${w[0]:-}"; }
WHEEL=$(wheel_in "$WHEELS")
if [[ -z $WHEEL ]]; then
  exec 9>"$WHEELS/.lock"
  flock 9
  WHEEL=$(wheel_in "$WHEELS")
  if [[ -z $WHEEL ]]; then
    tmp=$(mktemp -d "$WHEELS/.build.XXXXXX")
    msg "building $KEY (long: about an hour on 2 cores; log $CACHE/logs/$KEY.log)"
    start=$SECONDS
    PYTHON=$VPY SDT_CACHE=$CACHE TORCH_CUDA_ARCH_LIST=$ARCHS \
      bash "$REPO/tools/build_mmcv_cuda.sh" wheel "$tmp" >"$CACHE/logs/$KEY.log" 2>&1 \
      || { tail -n 30 "$CACHE/logs/$KEY.log" >&2; rm -rf "$tmp"; die "build failed: $CACHE/logs/$KEY.log"; }
    mv "$tmp"/mmcv-2.1.0-*.whl "$WHEELS"/
    rm -rf "$tmp"
    msg "built in $(((SECONDS - start) / 60)) min"
    WHEEL=$(wheel_in "$WHEELS")
  fi
  exec 9>&-
fi

STRIPPED_DIR=$CACHE/gpu-check/$KEY
STRIPPED=$(wheel_in "$STRIPPED_DIR")
if [[ -z $STRIPPED || $STRIPPED -ot $WHEEL ]]; then
  rm -rf "$STRIPPED_DIR"
  mkdir -p "$STRIPPED_DIR/unpacked"
  "$VPY" -m wheel unpack -d "$STRIPPED_DIR/unpacked" "$WHEEL" >&2
  find "$STRIPPED_DIR/unpacked" -name '*.so' -exec strip --strip-debug {} +
  "$VPY" -m wheel pack -d "$STRIPPED_DIR" "$STRIPPED_DIR"/unpacked/mmcv-2.1.0 >&2  # new RECORD
  rm -rf "$STRIPPED_DIR/unpacked"
  STRIPPED=$(wheel_in "$STRIPPED_DIR")
fi
rm -f "$DIR"/mmcv-2.1.0-*.whl
cp "$STRIPPED" "$DIR"/
msg "$(basename "$STRIPPED"): $(du -m "$STRIPPED" | cut -f1) MiB (unstripped $(du -m "$WHEEL" | cut -f1) MiB)"
