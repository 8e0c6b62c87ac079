#!/usr/bin/env bash
# mmcv 2.1.0 with CUDA ops, built without a system CUDA toolkit (tools/setup_env.sh calls it; the CI
# compile check and benchmarks/gpu/prepare.sh too).
#
#   bash tools/build_mmcv_cuda.sh toolkit            print a CUDA_HOME for torch's CUDA (PyPI wheels)
#   bash tools/build_mmcv_cuda.sh source             print the unpacked, fixed mmcv source tree
#   bash tools/build_mmcv_cuda.sh ninja DIR          copy the source into DIR/src and write the full
#                                                    build's build.ninja (DIR/build.ninja), no compiling
#   bash tools/build_mmcv_cuda.sh wheel OUTDIR       build the CUDA mmcv wheel into OUTDIR (in a fresh
#                                                    copy of the source, OUTDIR/src)
#
# The toolkit: torch names the CUDA wheels it was built with (`cuda-toolkit[...]==13.0.3` in its
# metadata). The compiler (nvidia-cuda-nvcc, -crt, nvvm), the headers (cccl, runtime, and those of
# cublas, cusparse, cusolver, curand and nvtx that torch's CUDA headers include) come from the same
# release, installed by ONE `pip install --target` call (pip installs nothing into a folder it filled
# before) into $SDT_CACHE/cuda-<version>/pkgs, then made into a CUDA_HOME: nvcc's profile looks for
# targets/x86_64-linux/{include,lib}, torch links with -L$CUDA_HOME/lib64 -lcudart, and the wheels
# ship only libcudart.so.13, so three links are added. ~20 s to install, 1.7 GB, of which the math
# libraries' shared objects (1.3 GB; only their headers are needed) are deleted.
#
# The source: mmcv 2.1.0's sdist, unpacked into $SDT_CACHE/src/ and fixed (each fix listed in
# README.md, section "GPU install"):
#   1. setup.py asks for -std=c++14 (nvcc) and -std=c++17 (g++); torch >= 2.10 headers stop at
#      `#error C++20 or later compatible compiler is required`: the flags become -std=c++20.
#
# Environment: PYTHON (python with torch; default <repo>/.venv/bin/python), SDT_CACHE (default
# ~/.cache/sdt-dense), SDT_CUDA_HOME (a toolkit to use instead of the PyPI one), TORCH_CUDA_ARCH_LIST
# (default: the visible GPUs' archs, else "8.0;9.0+PTX": A100-class and H100-class machine code, and
# PTX that newer GPUs compile at load), MAX_JOBS (default: number of CPUs).
set -Eeuo pipefail
REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
PY=${PYTHON:-$REPO/.venv/bin/python}
CACHE=${SDT_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/sdt-dense}
MMCV_VERSION=2.1.0
DEFAULT_ARCHS='8.0;9.0+PTX'  # no GPU visible: A100-, H100-class code, PTX for newer GPUs
export PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_NO_INPUT=1
msg() { printf '[build_mmcv_cuda] %s\n' "$*" >&2; }
die() { printf '[build_mmcv_cuda] ERROR: %s\n' "$*" >&2; exit 1; }
[[ -x $PY ]] || die "no python at $PY (set PYTHON to the interpreter that has torch)"

# The pip requirement of the toolkit that torch was built with, e.g.
# "cuda-toolkit[nvcc,cccl,...]==13.0.3", then its version.
toolkit_req() {
  "$PY" - <<'PY'
import re
from importlib import metadata
import torch
if not torch.version.cuda:
    raise SystemExit('[build_mmcv_cuda] ERROR: this torch is a CPU-only build (torch.version.cuda is None)')
extras = 'nvcc,cccl,crt,cudart,cublas,cusparse,cusolver,curand,nvtx'
pin = None
for req in metadata.requires('torch') or []:
    m = re.match(r'cuda-toolkit(\[[^\]]*\])?\s*==\s*([0-9.]+)', req)
    if m:
        pin = m.group(2)
# Older torches pin the nvidia-* wheels one by one: take the toolkit release of torch's CUDA.
print(f'cuda-toolkit[{extras}]==' + (pin or f'{torch.version.cuda}.*'), pin or torch.version.cuda)
PY
}

cmd_toolkit() {
  local req ver root pkgs home tmp
  read -r req ver < <(toolkit_req)
  root=$CACHE/cuda-$ver
  home=$root/pkgs/nvidia/cu${ver%%.*}
  if [[ ! -f $root/.complete ]]; then
    mkdir -p "$root"
    exec 8>"$root/.lock"
    command -v flock >/dev/null && flock 8
    if [[ ! -f $root/.complete ]]; then
      tmp=$root/pkgs.tmp
      rm -rf "$tmp" "$root/pkgs"
      msg "installing the CUDA $ver toolkit from PyPI ($req) into $root/pkgs"
      "$PY" -m pip install -q --no-cache-dir --target "$tmp" "$req" >&2
      mv "$tmp" "$root/pkgs"
      [[ -x $home/bin/nvcc ]] || die "the toolkit wheels have no $home/bin/nvcc"
      mkdir -p "$home/targets/x86_64-linux"
      ln -sfn ../../include "$home/targets/x86_64-linux/include"
      ln -sfn ../../lib "$home/targets/x86_64-linux/lib"
      ln -sfn lib "$home/lib64"
      ln -sfn "$(cd "$home/lib" && ls libcudart.so.* | head -n 1)" "$home/lib/libcudart.so"
      # only the headers of the math libraries are used (torch's own wheels hold the libraries it
      # loads): 1.3 of the 1.7 GB go, which keeps CI's cache small
      rm -f "$home"/lib/lib{cublas,cublasLt,cusolver,cusolverMg,cusparse,curand,nvrtc,nvJitLink,nvblas}*.so*
      touch "$root/.complete"
    fi
    exec 8>&-
  fi
  "$home/bin/nvcc" --version >/dev/null || die "$home/bin/nvcc does not run"
  echo "$home"
}

# Unpack the sdist (downloaded once into the cache) and apply the fixes; prints the tree.
FIXES=1  # raise when the fixes change: a cached tree with other fixes is unpacked again
cmd_source() {
  local src=$CACHE/src tree
  tree=$src/mmcv-$MMCV_VERSION-fixed
  mkdir -p "$src"
  exec 7>"$src/.lock"
  command -v flock >/dev/null && flock 7
  if [[ $(cat "$tree/.sdt-fixed" 2>/dev/null) != "$FIXES" ]]; then
    if [[ ! -f $src/mmcv-$MMCV_VERSION.tar.gz ]]; then
      msg "downloading the mmcv $MMCV_VERSION source archive"
      "$PY" -m pip download -q --no-deps --no-binary=:all: --no-build-isolation "mmcv==$MMCV_VERSION" \
        -d "$src" >&2
    fi
    rm -rf "$tree" "$src/mmcv-$MMCV_VERSION"
    tar -xzf "$src/mmcv-$MMCV_VERSION.tar.gz" -C "$src"
    mv "$src/mmcv-$MMCV_VERSION" "$tree"
    "$PY" - "$tree" <<'PY'
import pathlib, re, sys
tree = pathlib.Path(sys.argv[1])
# fix 1: C++20 for g++ and nvcc (torch >= 2.10 headers require it)
setup = tree / 'setup.py'
text = setup.read_text()
new, n = re.subn(r"'-std=c\+\+1[47]'", "'-std=c++20'", text)
if n == 0:
    raise SystemExit(f'[build_mmcv_cuda] ERROR: fix 1 found no -std=c++14/17 in {setup}')
setup.write_text(new)
print(f'[build_mmcv_cuda] fix 1: {n} -std flags in setup.py -> -std=c++20', file=sys.stderr)
PY
    echo "$FIXES" >"$tree/.sdt-fixed"
  fi
  exec 7>&-
  echo "$tree"
}

# A private copy of the fixed source in DIR/src: builds never share (or dirty) the cached tree.
fresh_copy() {
  local dir=$1 tree
  tree=$(cmd_source)
  mkdir -p "$dir"
  dir=$(cd "$dir" && pwd)
  rm -rf "$dir/src"
  cp -a "$tree" "$dir/src"
  echo "$dir/src"
}

arch_list() {
  if [[ -n ${TORCH_CUDA_ARCH_LIST:-} ]]; then echo "$TORCH_CUDA_ARCH_LIST"; return; fi
  local archs
  archs=$("$PY" -c "
import torch
caps = sorted({torch.cuda.get_device_capability(i) for i in range(torch.cuda.device_count())}) \
    if torch.cuda.is_available() else []
print(';'.join(f'{a}.{b}' for a, b in caps))" 2>/dev/null || true)
  echo "${archs:-$DEFAULT_ARCHS}"
}

# The environment of the CUDA build (both the wheel and the captured build.ninja).
build_env() {
  local home=$1
  echo CUDA_HOME="$home" MMCV_WITH_OPS=1 FORCE_CUDA=1 TORCH_CUDA_ARCH_LIST="$(arch_list)" \
    MAX_JOBS="${MAX_JOBS:-$(nproc 2>/dev/null || echo 2)}" PATH="$home/bin:$PATH"
}

# Runs mmcv's setup.py with torch's BuildExtension up to the point where it would call ninja, and
# copies the build.ninja it wrote: the full build's exact commands, for compiling a chosen subset.
# SDT_CUDA_HOME: a toolkit to use instead of the PyPI one (setup_env.sh passes a matching system one)
cuda_home() { if [[ -n ${SDT_CUDA_HOME:-} ]]; then echo "$SDT_CUDA_HOME"; else cmd_toolkit; fi; }

cmd_ninja() {
  local dir=$1 home tree
  home=$(cuda_home)
  tree=$(fresh_copy "$dir")
  local -a env
  read -r -a env < <(build_env "$home")
  (cd "$tree" && env "${env[@]}" "$PY" - "$dir/build.ninja" <<'PY'
import runpy, shutil, sys
import torch.utils.cpp_extension as ce
dest = sys.argv[1]

class Captured(Exception):
    pass

def capture(build_directory, verbose, error_prefix):
    shutil.copy(f'{build_directory}/build.ninja', dest)
    raise Captured

ce._run_ninja_build = capture
sys.argv = ['setup.py', 'build_ext']
try:
    runpy.run_path('setup.py', run_name='__main__')
except Captured:
    print(f'[build_mmcv_cuda] build.ninja written to {dest}', file=sys.stderr)
else:
    raise SystemExit('[build_mmcv_cuda] ERROR: setup.py ran no ninja build (no ops?)')
PY
  )
}

cmd_wheel() {
  local out=$1 home tree start=$SECONDS
  home=$(cuda_home)
  tree=$(fresh_copy "$out")
  local -a env
  read -r -a env < <(build_env "$home")
  msg "building mmcv $MMCV_VERSION CUDA wheel: ${env[*]}"
  mkdir -p "$out"
  # --no-cache-dir: pip's wheel cache is keyed by the source only, not by torch or CUDA
  (cd "$tree" && env "${env[@]}" "$PY" -m pip wheel -v --no-cache-dir --no-build-isolation --no-deps . -w "$out")
  msg "built in $(((SECONDS - start) / 60))m$(((SECONDS - start) % 60))s: $(ls "$out"/mmcv-"$MMCV_VERSION"-*.whl)"
}

case ${1:-} in
  toolkit) cmd_toolkit ;;
  source) cmd_source ;;
  ninja) [[ $# == 2 ]] || die 'usage: build_mmcv_cuda.sh ninja DIR'; cmd_ninja "$2" ;;
  wheel) [[ $# == 2 ]] || die 'usage: build_mmcv_cuda.sh wheel OUTDIR'; cmd_wheel "$2" ;;
  *) die "usage: build_mmcv_cuda.sh toolkit|source|ninja DIR|wheel OUTDIR (got: ${1:-nothing})" ;;
esac
