#!/usr/bin/env bash
# Distributed testing with torchrun (one process per GPU; CPU processes over gloo without GPUs).
#   bash tools/dist_test.sh CONFIG CHECKPOINT GPUS [tools/test.py options]
# Multi-node: NNODES, NODE_RANK, MASTER_ADDR, PORT (defaults 1, 0, 127.0.0.1, 29500).
set -euo pipefail
if [[ $# -lt 3 ]]; then
  echo "usage: bash tools/dist_test.sh CONFIG CHECKPOINT GPUS [tools/test.py options]" >&2
  exit 2
fi
exec bash "$(dirname "${BASH_SOURCE[0]}")/dist_run.sh" test.py "$3" "$1" "$2" "${@:4}"
