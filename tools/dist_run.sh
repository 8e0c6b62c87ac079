#!/usr/bin/env bash
# torchrun launcher shared by dist_train.sh and dist_test.sh (one process per GPU; CPU processes
# over gloo without GPUs).
#   bash tools/dist_run.sh SCRIPT NPROC [SCRIPT arguments]     (SCRIPT: a path under tools/)
# Multi-node: NNODES, NODE_RANK, MASTER_ADDR, PORT (defaults 1, 0, 127.0.0.1, 29500).
set -euo pipefail
SCRIPT=$1
NPROC=$2
REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
PYTHON=${PYTHON:-$REPO/.venv/bin/python}

exec "$PYTHON" -m torch.distributed.run \
  --nnodes="${NNODES:-1}" \
  --node_rank="${NODE_RANK:-0}" \
  --master_addr="${MASTER_ADDR:-127.0.0.1}" \
  --nproc_per_node="$NPROC" \
  --master_port="${PORT:-29500}" \
  "$REPO/tools/$SCRIPT" "${@:3}" --launcher pytorch
