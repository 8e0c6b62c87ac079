#!/usr/bin/env bash
# Train on a Slurm cluster, one task per GPU (the interface of upstream mmdet's script).
#   [GPUS=8] [GPUS_PER_NODE=8] [CPUS_PER_TASK=5] [SRUN_ARGS=...] \
#     bash tools/slurm_train.sh PARTITION JOB_NAME CONFIG WORK_DIR [tools/train.py options]
# PYTHON selects the interpreter (default: the repository's .venv, else python).
set -euo pipefail
if [[ $# -lt 4 ]]; then
  echo "usage: bash tools/slurm_train.sh PARTITION JOB_NAME CONFIG WORK_DIR [train.py options]" >&2
  exit 2
fi
PARTITION=$1
JOB_NAME=$2
CONFIG=$3
WORK_DIR=$4
exec bash "$(dirname "${BASH_SOURCE[0]}")/slurm_run.sh" "$PARTITION" "$JOB_NAME" \
  train.py "$CONFIG" --work-dir="$WORK_DIR" "${@:5}"
