#!/usr/bin/env bash
# Gather, on this (CPU, networked) machine, what the one-shot GPU check needs on a GPU machine that
# has Python 3.12, torch, timm and nvcc but no network and no OpenMMLab packages:
#
#   bash benchmarks/gpu/prepare.sh [--dry-run] [--out DIR]      (default DIR: <repo>/.whl, git-ignored)
#
# DIR receives, for CPython 3.12 on x86-64 Linux:
#   * the pure-Python wheels of mmengine, mmdet, mmsegmentation and of their small pure-Python
#     dependencies (addict, yapf, termcolor, rich, ...), pinned by requirements/constraints.txt;
#   * pycocotools (a small cp312 binary wheel);
#   * the mmcv 2.1.0 source archive.
# How mmcv gets there: there is no mmcv 2.1.0 wheel for torch 2.11/cu130, and opencv alone (54 MiB)
# would not fit beside the repository (about 38 MiB) in the 64 MiB that travels. So
#   1. the backbone measurements never need mmcv: check.sh imports the backbones without mmcv,
#      mmdet and mmseg (benchmarks/gpu/light_import.py);
#   2. `check.sh --build-mmcv` compiles mmcv's CUDA ops there from the archive (MAX_JOBS=16, sm_90);
#      not measured yet (no GPU machine has been lent to this project); expect several minutes;
#   3. without mmcv ops (or without opencv/matplotlib there) check.sh skips the toy segmentation
#      training and the Mask R-CNN step and says so in its summary.
# --dry-run lists what would be downloaded and checks the pins, without downloading.
set -Eeuo pipefail
REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
OUT=$REPO/.whl
DRY=0
while [[ $# -gt 0 ]]; do
  case $1 in
    --dry-run) DRY=1 ;;
    --out) OUT=$2; shift ;;
    *) echo "prepare.sh: unknown argument $1" >&2; exit 2 ;;
  esac
  shift
done
PY=${PYTHON:-$REPO/.venv/bin/python}
[[ -x $PY ]] || PY=python3
BUDGET_MIB=${SDT_WHL_BUDGET_MIB:-20}  # 64 MiB travel in all; the repository takes about 38

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
size=$(du -sm "$OUT" | cut -f1)
ls -1 "$OUT"
echo "prepare.sh: $(ls "$OUT" | wc -l) files, ${size} MiB in $OUT"
if (( size > BUDGET_MIB )); then
  echo "prepare.sh: over the $BUDGET_MIB MiB budget" >&2
  exit 1
fi
echo "prepare.sh: now carry it: run(command='bash benchmarks/gpu/check.sh', carry=['.whl'])"
