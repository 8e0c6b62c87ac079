#!/usr/bin/env bash
# Gather, on this (CPU, networked) machine, what the one-shot GPU check needs on a GPU machine that
# has Python 3.12, torch, timm and nvcc but no network and no OpenMMLab packages:
#
#   bash benchmarks/gpu/prepare.sh [--dry-run] [--no-mmcv-cuda] [--out DIR]   (DIR: <repo>/.whl, ignored)
#
# DIR receives, for CPython 3.12 on x86-64 Linux:
#   * the pure-Python wheels of mmengine, mmdet, mmsegmentation and of their small pure-Python
#     dependencies (addict, yapf, termcolor, rich, ...), pinned by requirements/constraints.txt;
#   * pycocotools (a small cp312 binary wheel);
#   * the mmcv 2.1.0 source archive;
#   * an mmcv 2.1.0 wheel with CUDA ops for sm_90 built HERE, without a GPU, against the GPU
#     machine's torch and Python (SDT_DEVICE_TORCH=2.11.0, SDT_DEVICE_PYTHON=3.12 by default, as
#     seen there), so that check.sh spends the device minutes measuring, not compiling. It comes
#     from the cache ($SDT_CACHE/wheels/mmcv2.1.0-torch<ver>-py3.12-cuda13.0-sm90/), else it is
#     built (tools/build_mmcv_cuda.sh: CUDA toolkit from PyPI; a build venv with that torch in
#     $SDT_CACHE/gpu-check/; about an hour on 2 cores, once), then its debug info is stripped.
# There is no mmcv 2.1.0 wheel for torch 2.11/cu130 on PyPI. opencv and matplotlib are on the GPU
# machine already. Without mmcv ops (--no-mmcv-cuda, or a wheel that does not load there) check.sh
# imports the backbones without mmcv (benchmarks/gpu/light_import.py), runs part A and reports B
# and C as skipped; `check.sh --build-mmcv` compiles there instead.
# The budget: 63 MiB less the repository's tracked files (64 MiB travel in all).
# --dry-run lists what would be downloaded and checks the pins, without downloading.
set -Eeuo pipefail
REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
OUT=$REPO/.whl
DRY=0 MMCV_CUDA=1
while [[ $# -gt 0 ]]; do
  case $1 in
    --dry-run) DRY=1 ;;
    --no-mmcv-cuda) MMCV_CUDA=0 ;;
    --out) OUT=$2; shift ;;
    *) echo "prepare.sh: unknown argument $1" >&2; exit 2 ;;
  esac
  shift
done
PY=${PYTHON:-$REPO/.venv/bin/python}
[[ -x $PY ]] || PY=python3
CACHE=${SDT_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/sdt-dense}
DEVICE_PYTHON=${SDT_DEVICE_PYTHON:-3.12}
DEVICE_TORCH=${SDT_DEVICE_TORCH:-2.11.0}
ARCHS=${TORCH_CUDA_ARCH_LIST:-9.0}
REPO_MIB=$(git -C "$REPO" ls-files -z 2>/dev/null | (cd "$REPO" && xargs -0 du -cb 2>/dev/null) \
  | awk 'END { printf "%d", $1 / 1048576 + 0.999 }')
BUDGET_MIB=${SDT_WHL_BUDGET_MIB:-$((63 - ${REPO_MIB:-38}))}  # 64 MiB travel in all

# Pure-Python distributions (name only; versions from constraints.txt).
PURE=(mmengine mmdet mmsegmentation addict yapf termcolor platformdirs rich markdown-it-py mdurl
      pygments terminaltables prettytable wcwidth six tqdm)
BINARY=(pycocotools)

pin() {  # "name==version" from constraints.txt (case-insensitive, - and _ equivalent)
  local want=${1,,}; want=${want//_/-}
  local line
  while IFS= read -r line; do
    line=${line%%#*}; [[ $line == *==* ]] || continue
    local name=${line%%==*}; name=${name,,}; name=${name//_/-}; name=${name// /}
    [[ $name == "$want" ]] && { echo "${line// /}"; return 0; }
  done < "$REPO/requirements/constraints.txt"
  echo "prepare.sh: $1 has no pin in requirements/constraints.txt" >&2
  return 1
}

SPECS=()
for p in "${PURE[@]}" "${BINARY[@]}"; do SPECS+=("$(pin "$p")"); done
MMCV=$(pin mmcv)

echo "prepare.sh: target $OUT (budget $BUDGET_MIB MiB), Python 3.12 x86-64 wheels:"
printf '  %s\n' "${SPECS[@]}" "$MMCV (source archive)"
[[ $MMCV_CUDA == 0 ]] || echo "  $MMCV with CUDA ops for sm_${ARCHS//./} (TORCH_CUDA_ARCH_LIST=$ARCHS), built for" \
  "torch==$DEVICE_TORCH, Python $DEVICE_PYTHON (cache: $CACHE/wheels/mmcv2.1.0-torch$DEVICE_TORCH*)"
if [[ $DRY == 1 ]]; then
  echo 'prepare.sh: dry run, nothing downloaded'
  exit 0
fi
mkdir -p "$OUT"
PIP=("$PY" -m pip download --no-deps --disable-pip-version-check -d "$OUT")
"${PIP[@]}" --only-binary=:all: --python-version 3.12 --implementation cp --abi cp312 \
  --platform manylinux2014_x86_64 --platform manylinux_2_17_x86_64 --platform manylinux_2_28_x86_64 \
  "${SPECS[@]}" >/dev/null
"${PIP[@]}" --no-binary=:all: --no-build-isolation "$MMCV" >/dev/null 2>&1 \
  || "${PIP[@]}" --no-binary=:all: "$MMCV" >/dev/null
if [[ $MMCV_CUDA == 1 ]]; then
  bash "$REPO/benchmarks/gpu/mmcv_cuda_wheel.sh" "$OUT" || { echo 'prepare.sh: no CUDA mmcv wheel' >&2; exit 1; }
fi
size=$(du -sm "$OUT" | cut -f1)
ls -1 "$OUT"
echo "prepare.sh: $(ls "$OUT" | wc -l) files, ${size} MiB in $OUT"
if (( size > BUDGET_MIB )); then
  echo "prepare.sh: over the $BUDGET_MIB MiB budget" >&2
  exit 1
fi
echo "prepare.sh: now carry it: run(command='bash benchmarks/gpu/check.sh', carry=['.whl'])"
