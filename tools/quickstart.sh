#!/usr/bin/env bash
# sdt-dense in one command, on a CPU, in about ten minutes, with no download beyond the set-up:
#
#   bash tools/quickstart.sh
#
# 1. sets up the environment (tools/setup_env.sh; seconds when already done);
# 2. writes the toy COCO-format shapes dataset to data/toy_coco/, unless the one there was written
#    with the same seed and size (its toy_data_manifest.json; another one is rewritten);
# 3. trains Mask R-CNN with the tiny E-SpikeFormer, SpikeFPN and spiking heads from scratch
#    (configs/toy/mask-rcnn_e-spikeformer-t_spike-fpn_toy.py);
# 4. evaluates COCO bbox and segm mAP on the toy val split (pycocotools, mmdet's CocoMetric);
# 5. measures firing rates, synaptic operations and energy (tools/analysis_tools/energy.py);
# 6. prints where the checkpoint and the results are.
#
# Knobs (environment variables):
#   WORK_DIR=dir          output directory (default: work_dirs/quickstart)
#   SDT_SKIP_SETUP=1      do not run tools/setup_env.sh (use the existing .venv)
#   ENERGY_IMAGES=n       images measured by the energy tool (default 20)
#   TRAIN_OPTIONS="..."   extra tools/train.py options, e.g. "--cfg-options train_cfg.max_epochs=4"
#   OMP_NUM_THREADS=n     torch threads (default 1: on a small shared CPU, two threads made some
#                         backward convolutions 10-100x slower than one; the data loader uses the
#                         other core)
set -Eeuo pipefail

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$REPO"
PY=${PYTHON:-$REPO/.venv/bin/python}
CONFIG=configs/toy/mask-rcnn_e-spikeformer-t_spike-fpn_toy.py
DATA=data/toy_coco
WORK=${WORK_DIR:-work_dirs/quickstart}
ENERGY_IMAGES=${ENERGY_IMAGES:-20}
T0=$SECONDS
log() { printf '\n[quickstart %4ds] %s\n' $((SECONDS - T0)) "$*"; }
trap 'echo "[quickstart] FAILED at line $LINENO (see the output above)" >&2' ERR

if [[ ${SDT_SKIP_SETUP:-0} != 1 ]]; then
  log "1/5 environment (tools/setup_env.sh)"
  bash tools/setup_env.sh
else
  log "1/5 environment: skipped (SDT_SKIP_SETUP=1)"
fi
export PYTHONPATH="$REPO${PYTHONPATH:+:$PYTHONPATH}"
export OMP_NUM_THREADS=${OMP_NUM_THREADS:-1}

log "2/5 toy data: $DATA (seed 0, default size; reused when its manifest matches)"
"$PY" tools/misc/make_toy_data.py --task det --out "$DATA" --seed 0 --reuse

log "3/5 training $CONFIG (CPU, from scratch)"
# shellcheck disable=SC2086
"$PY" tools/train.py "$CONFIG" --work-dir "$WORK" ${TRAIN_OPTIONS:-}
CKPT=$(cat "$WORK/last_checkpoint")

log "4/5 COCO evaluation of $CKPT on $DATA/val2017"
"$PY" tools/test.py "$CONFIG" "$CKPT" --work-dir "$WORK/test"

ENERGY_DIR=$WORK/energy
log "5/5 firing rates and energy over $ENERGY_IMAGES val images"
"$PY" tools/analysis_tools/energy.py "$CONFIG" "$CKPT" --num-images "$ENERGY_IMAGES" \
  --out "$ENERGY_DIR"

log "done"
"$PY" - "$WORK/test/metrics.json" <<'PYEOF'
import json, sys
m = json.load(open(sys.argv[1]))
for k in ('bbox', 'segm'):
    print(f"  COCO {k} mAP {m[f'coco/{k}_mAP']:.3f}   mAP@50 {m[f'coco/{k}_mAP_50']:.3f}")
PYEOF
echo "  checkpoint:  $CKPT"
echo "  metrics:     $WORK/test/metrics.json"
echo "  energy:      $ENERGY_DIR/energy.md (energy.json, firing_rates.png)"
echo "  train log:   $WORK/$(ls -t "$WORK" | grep -E '^[0-9]{8}_[0-9]{6}$' | head -1)/"
