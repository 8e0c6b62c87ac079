#!/usr/bin/env bash
# The one set-up step of sdt-dense. Idempotent: a second run only checks versions (seconds).
#
#   bash tools/setup_env.sh
#
# 1. creates or reuses .venv/ (Python 3.11) in the repository root;
# 2. installs torch + torchvision (requirements/torch.txt), then the build requirements;
# 3. installs mmcv 2.1.0 with compiled ops, from the wheel cache ~/.cache/sdt-dense/wheels/<key>/ or,
#    the first time, compiled from source (there is no prebuilt mmcv 2.1.0 for torch 2.14; CPU ops take
#    about 20 minutes on 2 cores, CUDA ops much longer). <key> = torch version / Python / cpu or CUDA;
# 4. installs mmengine, mmdet, mmsegmentation, timm, pytest (requirements/*.txt, pinned by
#    requirements/constraints.txt) and sdt-dense itself in editable mode;
# 5. checks `import sdt_dense, mmdet, mmseg, mmcv.ops`.
#
# Knobs (environment variables):
#   PYTHON=/path/to/python3.11      interpreter that creates the venv (default: python3.11 on PATH)
#   SDT_VENV=dir                    venv location (default: <repo>/.venv)
#   SDT_CACHE=dir                   cache (default: ${XDG_CACHE_HOME:-~/.cache}/sdt-dense)
#   TORCH_INDEX_URL=url             extra index for torch, e.g. https://download.pytorch.org/whl/cu128
#   SDT_MMCV_CUDA=auto|0|1          compile mmcv's CUDA ops (auto: when torch sees a GPU). Without a system
#                                   nvcc of torch's CUDA major version, nvcc and the CUDA headers come from
#                                   PyPI into the cache (tools/build_mmcv_cuda.sh); no GPU or driver needed
#   SDT_CUDA_TOOLKIT=auto|pypi      pypi: use the PyPI toolkit even when a system one matches
#   TORCH_CUDA_ARCH_LIST="8.0 9.0"  GPU architectures of the CUDA ops (default: those of the visible GPUs,
#                                   else "8.0;9.0+PTX")
#   MAX_JOBS=n                      parallel compile jobs (default: number of CPUs)
#   SDT_REBUILD_MMCV=1              ignore the cached mmcv wheel and compile it again
set -Eeuo pipefail

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$REPO"
VENV=${SDT_VENV:-$REPO/.venv}
VPY=$VENV/bin/python
CACHE=${SDT_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/sdt-dense}
MMCV_VERSION=2.1.0
CONSTRAINTS=$REPO/requirements/constraints.txt
export PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_NO_INPUT=1
[[ -t 1 ]] || export PIP_PROGRESS_BAR=off

T0=$SECONDS
STEP='start'
log() { printf '[setup_env %3ds] %s\n' $((SECONDS - T0)) "$*"; }
step() { STEP=$1; log "$1"; }
die() { printf '[setup_env] ERROR: %s\n' "$*" >&2; exit 1; }
on_error() {
  local rc=$?
  [[ $BASHPID == "$$" ]] || exit "$rc"  # in a subshell: let the main shell report it once
  printf '\n[setup_env] FAILED (exit %s) during step: %s\n' "$rc" "$STEP" >&2
  printf '[setup_env] Fix the cause above and run `bash tools/setup_env.sh` again: finished steps are skipped.\n' >&2
  exit "$rc"
}
trap on_error ERR

pip_install() { "$VPY" -m pip install "$@"; }

# Print the requirements (from files or literal specifiers) that the venv does not satisfy; no output
# when all are met. Reads installed metadata only, so it takes a fraction of a second.
unmet() {
  "$VPY" - "$@" <<'PY'
import os, sys
from importlib import metadata
try:
    from packaging.requirements import Requirement
except ImportError:  # fresh venv: use pip's vendored copy
    from pip._vendor.packaging.requirements import Requirement

def lines(arg):
    if not os.path.isfile(arg):
        return [arg]
    with open(arg) as f:
        return f.read().splitlines()

for arg in sys.argv[1:]:
    for line in lines(arg):
        line = line.split('#', 1)[0].strip()
        if not line or line.startswith('-'):
            continue
        req = Requirement(line)
        if req.marker is not None and not req.marker.evaluate():
            continue
        try:
            have = metadata.version(req.name)
        except metadata.PackageNotFoundError:
            print(f'  {line}  (missing)')
            continue
        if not req.specifier.contains(have, prereleases=True):
            print(f'  {line}  (installed: {have})')
PY
}

# Install the requirement files unless they are already satisfied.
ensure_reqs() {
  local what=$1; shift
  local missing
  missing=$(unmet "$@")
  if [[ -z $missing ]]; then
    log "  $what: already satisfied"
    return
  fi
  printf '%s\n' "$missing"
  local args=()
  for f in "$@"; do args+=(-r "$f"); done
  pip_install "${args[@]}" -c "$CONSTRAINTS" ${EXTRA_PIP_ARGS[@]+"${EXTRA_PIP_ARGS[@]}"}
}

# --------------------------------------------------------------------------------------------------
step '1/6 virtual environment (.venv, Python 3.11)'
if [[ -x $VPY ]]; then
  "$VPY" -c 'import sys; sys.exit(sys.version_info[:2] != (3, 11))' \
    || die "$VENV exists but is not a Python 3.11 venv ($("$VPY" -V 2>&1)). Remove it and rerun."
  log "  reusing $VENV"
else
  [[ ! -e $VENV ]] || die "$VENV exists but has no bin/python. Remove it and rerun."
  PY=${PYTHON:-$(command -v python3.11 || true)}
  [[ -n $PY ]] || die 'python3.11 not found. Install Python 3.11 (e.g. `pyenv install 3.11`, or apt install python3.11 python3.11-venv) or set PYTHON=/path/to/python3.11.'
  "$PY" -c 'import sys; sys.exit(sys.version_info[:2] != (3, 11))' \
    || die "$PY is $("$PY" -V 2>&1); Python 3.11 is required. Set PYTHON=/path/to/python3.11."
  log "  creating $VENV with $PY"
  "$PY" -m venv "$VENV" || die "could not create the venv (Debian/Ubuntu: apt install python3.11-venv)"
fi
if [[ -n $(unmet 'pip>=25.3') ]]; then
  log '  upgrading pip'
  pip_install -q -c "$CONSTRAINTS" 'pip>=25.3'
fi

# --------------------------------------------------------------------------------------------------
step '2/6 torch + torchvision (requirements/torch.txt), build requirements (requirements/build.txt)'
EXTRA_PIP_ARGS=()
[[ -z ${TORCH_INDEX_URL:-} ]] || EXTRA_PIP_ARGS=(--extra-index-url "$TORCH_INDEX_URL")
ensure_reqs torch requirements/torch.txt
EXTRA_PIP_ARGS=()
ensure_reqs 'build requirements' requirements/build.txt

# --------------------------------------------------------------------------------------------------
step "3/6 mmcv $MMCV_VERSION with compiled ops"
# Which ops to compile, and the cache key of the wheel. One Python call (imports torch: ~2 s).
read -r TORCH_VER PY_TAG TORCH_CUDA GPU_ARCHS < <("$VPY" - <<'PY'
import sys, torch
archs = ''
if torch.version.cuda and torch.cuda.is_available():
    caps = {torch.cuda.get_device_capability(i) for i in range(torch.cuda.device_count())}
    archs = ';'.join(f'{a}.{b}' for a, b in sorted(caps))
print(torch.__version__, f'py{sys.version_info[0]}.{sys.version_info[1]}',
      torch.version.cuda or 'none', archs or 'none')
PY
)
# The CUDA toolkit: $CUDA_HOME, else /usr/local/cuda, else the one nvcc on PATH belongs to.
find_cuda_home() {
  local c nvcc
  nvcc=$(command -v nvcc || true)
  for c in "${CUDA_HOME:-}" /usr/local/cuda ${nvcc:+"$(dirname "$(dirname "$(readlink -f "$nvcc")")")"}; do
    if [[ -n $c && -x $c/bin/nvcc && -f $c/include/cuda_runtime.h ]]; then
      echo "$c"; return 0
    fi
  done
  return 0
}
nvcc_version() { "$1/bin/nvcc" --version | sed -n 's/.*release \([0-9.]*\).*/\1/p'; }
WANT_CUDA=${SDT_MMCV_CUDA:-auto}
if [[ $WANT_CUDA == auto ]]; then
  WANT_CUDA=0
  [[ $TORCH_CUDA == none || $GPU_ARCHS == none ]] || WANT_CUDA=1
fi
if [[ $WANT_CUDA == 1 ]]; then
  [[ $TORCH_CUDA != none ]] || die 'SDT_MMCV_CUDA=1 but this torch is a CPU-only build.'
  # a system toolkit of torch's CUDA major version, else nvcc and headers from PyPI (cached)
  CUDA_HOME=''
  [[ ${SDT_CUDA_TOOLKIT:-auto} == pypi ]] || CUDA_HOME=$(find_cuda_home)
  if [[ -n $CUDA_HOME && $(nvcc_version "$CUDA_HOME") != "${TORCH_CUDA%%.*}".* ]]; then
    log "  $CUDA_HOME is CUDA $(nvcc_version "$CUDA_HOME"), torch is CUDA $TORCH_CUDA: not using it"
    CUDA_HOME=''
  fi
  if [[ -z $CUDA_HOME ]]; then
    log "  CUDA $TORCH_CUDA toolkit (nvcc, headers) from PyPI into $CACHE (once; ~300 MB kept)"
    CUDA_HOME=$(PYTHON=$VPY SDT_CACHE=$CACHE bash "$REPO/tools/build_mmcv_cuda.sh" toolkit)
  fi
  log "  CUDA toolkit: $CUDA_HOME"
  # the visible GPUs' archs, else a documented default (tools/build_mmcv_cuda.sh: DEFAULT_ARCHS)
  ARCH_LIST=${TORCH_CUDA_ARCH_LIST:-${GPU_ARCHS/none/8.0;9.0+PTX}}
  NVCC_VER=$(nvcc_version "$CUDA_HOME")
  OPS="cuda${NVCC_VER}-sm$(tr -d '.' <<<"$ARCH_LIST" | tr ' ;,' '___')"
else
  OPS=cpu
fi
KEY="mmcv${MMCV_VERSION}-torch${TORCH_VER}-${PY_TAG}-${OPS}"
WHEEL_DIR=$CACHE/wheels/$KEY
KEY_FILE=$VENV/.sdt-mmcv-key
log "  wheel cache key: $KEY"

# Is the right mmcv already installed? (metadata only; the final step imports mmcv.ops)
MMCV_STATE=$("$VPY" - "$MMCV_VERSION" <<'PY'
import sys
from importlib import metadata
try:
    dist = metadata.distribution('mmcv')
except metadata.PackageNotFoundError:
    print('missing'); raise SystemExit
if dist.version != sys.argv[1]:
    print(f'version-{dist.version}'); raise SystemExit
ops = [f for f in dist.files or [] if f.name.startswith('_ext') and f.name.endswith('.so')]
print('ok' if ops else 'no-ops')
PY
)

# Import check of an installed mmcv. Exit status: 0 works; 2 its ops library does not load with this
# torch (undefined symbols: built against another torch), the only case where rebuilding helps;
# anything else (e.g. a missing Python dependency) is printed and is not a reason to rebuild.
mmcv_works() {
  "$VPY" - "$WANT_CUDA" <<'PY'
import sys, traceback
import torch
try:
    import mmcv._ext  # noqa: F401
except ImportError as e:
    # the ops library itself: missing, or undefined symbols (another torch's ABI)
    if e.name == 'mmcv._ext' or 'undefined symbol' in str(e):
        print(f'  mmcv ops library does not load: {e}')
        sys.exit(2)
    traceback.print_exc()
    sys.exit(1)
if sys.argv[1] == '1':
    from mmcv.ops import get_compiling_cuda_version, nms
    if get_compiling_cuda_version() == 'not available':
        print('  mmcv ops were compiled without CUDA')
        sys.exit(2)
    if torch.cuda.is_available():  # with no GPU (a CPU-only build machine) the import is the check
        boxes = torch.tensor([[0., 0., 10., 10.], [1., 1., 10., 10.]], device='cuda')
        nms(boxes, torch.tensor([0.9, 0.8], device='cuda'), 0.5)
PY
}

# Install the wheel, then mmcv's own dependencies (opencv-python, mmengine, ...) at the tested
# versions: its import check needs them, and --force-reinstall alone would reinstall them all.
install_mmcv_wheel() {
  log "  installing $(basename "$1")"
  pip_install -q --no-deps --force-reinstall "$1"
  pip_install -q -c "$CONSTRAINTS" "$1"
}

# Compiler wrappers: torch >= 2.10 headers need C++20, mmcv 2.1.0 asks for C++14/17 (g++ and nvcc).
# torch already passes -std=c++20 when no -std is given, so only the explicit flags are rewritten.
write_wrapper() {  # name, real-compiler expression
  local target=$CACHE/bin/$1 tmp
  mkdir -p "$CACHE/bin"
  tmp=$(mktemp "$CACHE/bin/.$1.XXXXXX")
  cat >"$tmp" <<EOF
#!/usr/bin/env bash
# torch >= 2.10 headers need C++20; mmcv 2.1.0 asks for C++17. Upgrade the flag only.
args=()
for a in "\$@"; do
  case "\$a" in -std=c++14|-std=c++17) args+=("-std=c++20");; *) args+=("\$a");; esac
done
exec $2 "\${args[@]}"
EOF
  chmod +x "$tmp"
  if cmp -s "$tmp" "$target"; then rm -f "$tmp"; else mv -f "$tmp" "$target"; fi
}

build_mmcv() {
  local build_log=$CACHE/logs/$KEY.log tmp jobs
  mkdir -p "$CACHE/logs"
  write_wrapper cxx20 '"${SDT_REAL_CXX:-c++}"'
  jobs=${MAX_JOBS:-$(nproc 2>/dev/null || echo 2)}
  local env=(CXX="$CACHE/bin/cxx20" MAX_JOBS="$jobs" MMCV_WITH_OPS=1)
  local build=("$VPY" -m pip wheel -v --no-cache-dir --no-build-isolation --no-deps "mmcv==$MMCV_VERSION")
  if [[ $WANT_CUDA == 1 ]]; then
    # the sdist, unpacked and fixed for CUDA 13 / C++20 (README, GPU install), built in a copy
    env=(MAX_JOBS="$jobs" PYTHON="$VPY" SDT_CACHE="$CACHE" SDT_CUDA_HOME="$CUDA_HOME"
         TORCH_CUDA_ARCH_LIST="$ARCH_LIST")
    build=(bash "$REPO/tools/build_mmcv_cuda.sh" wheel)
  else
    env+=(FORCE_CUDA=0 CUDA_VISIBLE_DEVICES='')  # a visible GPU would switch mmcv's setup.py to CUDA
  fi
  log "  COMPILING mmcv $MMCV_VERSION from source ($OPS ops, $jobs jobs). This is LONG: about 20 min on"
  log "  2 cores for CPU ops, much longer for CUDA ops. It happens once per key; the wheel is cached in"
  log "  $WHEEL_DIR. Full log: $build_log"
  tmp=$(mktemp -d "$WHEEL_DIR/.build.XXXXXX")
  local start=$SECONDS line src progress
  # -v streams the compiler commands; only ninja's [n/N] progress lines are shown. --no-cache-dir:
  # pip's own wheel cache is keyed by the sdist only and would hand back a build for another torch.
  if [[ $WANT_CUDA == 1 ]]; then build+=("$tmp"); else build+=(-w "$tmp"); fi
  env "${env[@]}" "${build[@]}" 2>&1 \
    | tee "$build_log" \
    | while IFS= read -r line; do
        if [[ $line =~ \[([0-9]+/[0-9]+)\] ]]; then
          progress=${BASH_REMATCH[1]} src='?'
          [[ $line =~ ([A-Za-z0-9_.-]+\.(cpp|cu|cc))\ +-o\  ]] && src=${BASH_REMATCH[1]}
          printf '[setup_env %3ds]    mmcv build [%s] %s  (%dm%02ds)\n' $((SECONDS - T0)) \
            "$progress" "$src" $(((SECONDS - start) / 60)) $(((SECONDS - start) % 60))
        elif [[ $line == *' -shared '* ]]; then
          log "    mmcv build: linking the ops library"
        fi
      done \
    || { tail -n 40 "$build_log" >&2; rm -rf "$tmp"; die "mmcv build failed: see $build_log"; }
  mv "$tmp"/mmcv-"$MMCV_VERSION"-*.whl "$WHEEL_DIR"/
  rm -rf "$tmp"
  log "  mmcv compiled in $(((SECONDS - start) / 60))m$(((SECONDS - start) % 60))s"
}

REBUILD=${SDT_REBUILD_MMCV:-0}
cached_wheel() {
  local w
  shopt -s nullglob; w=("$WHEEL_DIR"/mmcv-"$MMCV_VERSION"-*.whl); shopt -u nullglob
  echo "${w[0]:-}"
}
# Builds made before this keyed layout left the wheel flat in $CACHE/wheels/; reuse it for the
# CPU key. A wheel that does not fit this torch is caught by mmcv_works and rebuilt.
adopt_flat_wheel() {
  local flat
  [[ $REBUILD != 1 && $OPS == cpu && -z $(cached_wheel) ]] || return 0
  shopt -s nullglob; flat=("$CACHE"/wheels/mmcv-"$MMCV_VERSION"-*.whl); shopt -u nullglob
  [[ ${#flat[@]} -gt 0 ]] || return 0
  mkdir -p "$WHEEL_DIR"
  log "  copying $(basename "${flat[0]}") from $CACHE/wheels/ into $WHEEL_DIR"
  cp "${flat[0]}" "$WHEEL_DIR/"
}

if [[ $REBUILD != 1 && $MMCV_STATE == ok && -f $KEY_FILE && $(<"$KEY_FILE") == "$KEY" ]]; then
  log "  mmcv $MMCV_VERSION ($KEY) already installed"
elif [[ $REBUILD != 1 && $MMCV_STATE == ok && ! -f $KEY_FILE ]] && mmcv_works; then
  # installed by other means (e.g. by hand from the cache): its ops load with this torch, keep it
  log "  mmcv $MMCV_VERSION is installed and its ops load with this torch: keeping it"
  adopt_flat_wheel
  printf '%s\n' "$KEY" >"$KEY_FILE"
else
  log "  installed mmcv: $MMCV_STATE (built for: $(cat "$KEY_FILE" 2>/dev/null || echo unknown))"
  mkdir -p "$WHEEL_DIR"
  exec 9>"$WHEEL_DIR/.lock"
  if command -v flock >/dev/null && ! flock -n 9; then
    log '  another setup_env.sh is building this mmcv wheel: waiting for it'
    flock 9
  fi
  [[ $REBUILD != 1 ]] || rm -f "$WHEEL_DIR"/mmcv-"$MMCV_VERSION"-*.whl
  adopt_flat_wheel
  WHEEL=$(cached_wheel)
  if [[ -n $WHEEL ]]; then
    install_mmcv_wheel "$WHEEL"
    rc=0; mmcv_works || rc=$?
    if [[ $rc == 2 ]]; then
      log "  the cached wheel does not work with this torch: removing it and compiling again"
      rm -f "$WHEEL"
      WHEEL=''
    elif [[ $rc != 0 ]]; then
      die "mmcv from the cached wheel $WHEEL does not import (see above); the wheel is kept"
    fi
  fi
  if [[ -z $WHEEL ]]; then
    build_mmcv
    WHEEL=$(cached_wheel)
    install_mmcv_wheel "$WHEEL"
    mmcv_works || die "the freshly built mmcv does not import (see above); build log: $CACHE/logs/$KEY.log"
  fi
  exec 9>&-
  printf '%s\n' "$KEY" >"$KEY_FILE"
fi

# --------------------------------------------------------------------------------------------------
step '4/6 OpenMMLab stack, runtime and test requirements'
ensure_reqs 'mmengine/mmdet/mmseg, timm, pytest' \
  requirements/mminstall.txt requirements/runtime.txt requirements/tests.txt

# --------------------------------------------------------------------------------------------------
step '5/6 sdt-dense (editable install)'
STAMP_FILE=$VENV/.sdt-dense-editable
STAMP="$(cat setup.py requirements/runtime.txt requirements/mminstall.txt requirements/tests.txt \
  sdt_dense/version.py | cksum) $REPO"
if [[ -f $STAMP_FILE && $(<"$STAMP_FILE") == "$STAMP" ]] && "$VPY" - "$REPO" <<'PY'
import json, pathlib, sys
from importlib import metadata
try:
    info = json.loads(metadata.distribution('sdt-dense').read_text('direct_url.json') or '{}')
except metadata.PackageNotFoundError:
    sys.exit(1)
editable = info.get('dir_info', {}).get('editable', False)
sys.exit(0 if editable and info.get('url') == pathlib.Path(sys.argv[1]).resolve().as_uri() else 1)
PY
then
  log '  already installed (editable)'
else
  pip_install -q --no-deps --no-build-isolation -e "$REPO"
  printf '%s\n' "$STAMP" >"$STAMP_FILE"
fi

# --------------------------------------------------------------------------------------------------
step '6/6 import check'
"$VPY" - <<'PY'
import warnings
warnings.filterwarnings('ignore')
import torch, mmcv, mmcv.ops, mmengine, mmdet, mmseg, sdt_dense  # noqa: E401,F401
print(f'  torch {torch.__version__} (CUDA available: {torch.cuda.is_available()}), mmcv {mmcv.__version__}, '
      f'mmengine {mmengine.__version__}, mmdet {mmdet.__version__}, mmseg {mmseg.__version__}, '
      f'sdt_dense {sdt_dense.__version__}')
PY
log "done: the environment is ready (${VENV#"$REPO"/}/bin/python)"
