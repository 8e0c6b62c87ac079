#!/usr/bin/env bash
# The one command to run on a lent GPU machine (Python 3.12, torch, timm, nvcc; no network, no
# OpenMMLab), after `bash benchmarks/gpu/prepare.sh` here filled .whl/ and it travelled with the
# repository:
#
#   bash benchmarks/gpu/check.sh [--build-mmcv] [--dry-run]
#
# Writes under $OUT (default <repo>/work_dirs/gpu_check): env.json, one JSON per measurement and
# summary.md (a markdown table of everything). Parts, each under its own time limit so that the
# whole stays under 8 minutes:
#   A. backbone training step (classifier: forward, cross-entropy, backward, AdamW), 10M (arch m)
#      and 19M (arch l) at 224 px: throughput and peak memory, SFA (D=4) against LIF (T=4), in fp32
#      and in bf16 autocast (benchmarks/train_cost.py);                               ~4 min
#   B. the toy segmentation training (configs/toy/fpn_e-spikeformer-t_toy.py), 100 iterations;
#   C. one Mask R-CNN train step at 800x1333, 19M against ResNet-50 (benchmarks/detector_cost.py).
# A needs only torch and timm (+ the pure-Python wheels); B and C need mmcv's ops, opencv and
# matplotlib. mmcv's CUDA ops come from the wheel that prepare.sh built on a CPU machine (.whl/
# mmcv-2.1.0-*.whl, installed like the others: no compiling here); with --build-mmcv and no such
# wheel that loads, they are compiled first (MAX_JOBS=16, sm_90). B and C run only if mmcv's ops
# import, and are reported as skipped if not.
#
# --dry-run: the same sequence on this CPU machine with the project's .venv, at toy sizes (arch t,
# 32 px, 5 iterations), so CI keeps the script from rotting; nothing is installed, except that with
# SDT_CHECK_WHL=DIR the mmcv wheel in DIR is installed into $OUT/site and used, as on the GPU machine.
set -uo pipefail
REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
cd "$REPO"
DRY=0 BUILD=0
for a in "$@"; do
  case $a in
    --dry-run) DRY=1 ;;
    --build-mmcv) BUILD=1 ;;
    *) echo "check.sh: unknown argument $a" >&2; exit 2 ;;
  esac
done
OUT=${OUT:-$REPO/work_dirs/gpu_check}
mkdir -p "$OUT"
T0=$SECONDS
log() { printf '[check %3ds] %s\n' $((SECONDS - T0)) "$*" | tee -a "$OUT/check.log"; }

if [[ $DRY == 1 ]]; then
  PY=${PYTHON:-$REPO/.venv/bin/python}
  DEV=cpu ARCHES=(t) IMG=32 BS=2 ROUNDS=1 WARM=1 STEPS=1 ITERS=5 DET_SIZE=(64 96) TLIM=600
  LIMIT_A=600 LIMIT_B=600 LIMIT_C=900 SDT_CHECK_DEADLINE=${SDT_CHECK_DEADLINE:-3000}
  WHL=${SDT_CHECK_WHL:-}
else
  WHL=$REPO/.whl
  PY=${PYTHON:-python3}
  DEV=cuda ARCHES=(m l) IMG=224 BS=32 ROUNDS=2 WARM=2 STEPS=6 ITERS=100 DET_SIZE=(800 1333)
  LIMIT_A=70 LIMIT_B=100 LIMIT_C=120  # per run of A (4 runs), B, C
  # pure-Python wheels and pycocotools into a private directory, never into the system
  SITE=$OUT/site
  OTHERS=()
  for w in "$REPO"/.whl/*.whl; do [[ -f $w && $(basename "$w") != mmcv-* ]] && OTHERS+=("$w"); done
  if [[ ${#OTHERS[@]} -gt 0 ]]; then
    log "installing ${#OTHERS[@]} wheels from .whl/ into $SITE"
    "$PY" -m pip install -q --no-index --no-deps --target "$SITE" "${OTHERS[@]}" \
      || log 'WARNING: installing the wheels failed'
  else
    log 'WARNING: no .whl/ folder (run benchmarks/gpu/prepare.sh here first and carry .whl)'
  fi
fi
# The carried mmcv wheel with compiled ops (prepare.sh): installed on its own, so that a wheel for
# another Python only costs mmcv, not the other wheels.
SITE=${SITE:-$OUT/site}
if [[ -n $WHL ]] && compgen -G "$WHL/mmcv-*.whl" >/dev/null; then
  log "installing $(basename "$(ls "$WHL"/mmcv-*.whl | head -n 1)") into $SITE (no compiling)"
  "$PY" -m pip install -q --no-index --no-deps --target "$SITE" "$(ls "$WHL"/mmcv-*.whl | head -n 1)" \
    && HAVE_MMCV_WHEEL=1 || log 'WARNING: installing the mmcv wheel failed'
fi
if [[ $DRY == 1 && ${HAVE_MMCV_WHEEL:-0} == 1 ]]; then export PYTHONPATH=$SITE${PYTHONPATH:+:$PYTHONPATH}; fi
if [[ $DRY == 0 ]]; then
  export PYTHONPATH=$REPO:$SITE${PYTHONPATH:+:$PYTHONPATH}
  if [[ $BUILD == 1 && ${HAVE_MMCV_WHEEL:-0} == 1 ]] && "$PY" -c 'import mmcv._ext' 2>/dev/null; then
    log 'mmcv ops from the carried wheel load: --build-mmcv not needed, not compiling'
    BUILD=0
  fi
  if [[ $BUILD == 1 ]]; then
    log 'building mmcv CUDA ops (MAX_JOBS=16, sm_90)'
    bash "$REPO/benchmarks/gpu/build_mmcv.sh" "$SITE" >"$OUT/mmcv_build.log" 2>&1 \
      && log "mmcv built in $((SECONDS - T0)) s" || log "mmcv build failed: $OUT/mmcv_build.log"
  fi
fi

# What this machine has (the summary states it).
"$PY" - "$OUT/env.json" <<'PY'
import importlib, json, platform, sys
import torch
info = dict(python=platform.python_version(), torch=torch.__version__,
            cuda=torch.version.cuda, gpu=torch.cuda.get_device_name(0) if torch.cuda.is_available() else None)
for mod in ('timm', 'cv2', 'matplotlib', 'mmengine', 'mmdet', 'mmseg', 'pycocotools', 'mmcv._ext'):
    try:
        importlib.import_module(mod)
        info[mod] = True
    except Exception as e:  # noqa: BLE001
        info[mod] = f'{type(e).__name__}: {e}'[:200]
if info['mmcv._ext'] is True:  # where mmcv came from, and whether its ops have CUDA kernels
    import mmcv
    from mmcv.ops import get_compiling_cuda_version
    info['mmcv_file'] = mmcv.__file__
    info['mmcv_cuda'] = get_compiling_cuda_version()
json.dump(info, open(sys.argv[1], 'w'), indent=1)
print(json.dumps(info))
PY
FULL=$("$PY" -c "import json,sys; e=json.load(open('$OUT/env.json')); print(int(all(e[k] is True for k in ('cv2','matplotlib','mmdet','mmseg','mmcv._ext'))))")
log "full OpenMMLab stack with mmcv ops: $([[ $FULL == 1 ]] && echo yes || echo no)"
# part A imports the backbones without mmcv/mmdet/mmseg where those cannot load (SDT_CHECK_LIGHT=1
# forces it: CI tests that path)
LIGHT=0
[[ $FULL == 1 && ${SDT_CHECK_LIGHT:-0} != 1 ]] || LIGHT=1

DEADLINE=${SDT_CHECK_DEADLINE:-450}  # seconds for everything: under the 8 minutes asked for
run_part() {  # name, limit (s), command...; never past the deadline
  local name=$1 limit=$2; shift 2
  local left=$((DEADLINE - (SECONDS - T0)))
  (( left < limit )) && limit=$left
  if (( limit < 10 )); then log "$name: skipped (the ${DEADLINE} s deadline is reached)"; return; fi
  log "$name: $*"
  timeout "$limit" "$@" >"$OUT/$name.log" 2>&1
  local rc=$?
  echo "$rc" >"$OUT/$name.rc"
  if [[ $rc == 0 ]]; then log "$name: done"; else log "$name: FAILED (exit $rc), see $name.log"; tail -5 "$OUT/$name.log"; fi
}

# A. backbones
for arch in "${ARCHES[@]}"; do
  for prec in fp32 bf16; do
    amp=(); [[ $prec == bf16 ]] && amp=(--amp)
    run_part "A_train_cost_${arch}_${prec}" "$LIMIT_A" env SDT_BENCH_LIGHT_IMPORT=$LIGHT \
      "$PY" benchmarks/train_cost.py --device "$DEV" \
      --arch "$arch" --img-size "$IMG" --batch-size "$BS" --rounds "$ROUNDS" --warmup "$WARM" \
      --steps "$STEPS" "${amp[@]}" --out "$OUT/A_train_cost_${arch}_${prec}.json"
  done
done

# B. toy segmentation training, C. Mask R-CNN at 800x1333
if [[ $FULL == 1 ]]; then
  DATA=$OUT/data/toy_ade
  run_part B_seg_toy_train "$LIMIT_B" bash -c "
    { [[ -d '$DATA' ]] || '$PY' tools/misc/make_toy_data.py --task seg --out '$DATA'; } &&
    '$PY' tools/train.py configs/toy/fpn_e-spikeformer-t_toy.py --work-dir '$OUT/seg_toy' \
      --cfg-options train_dataloader.dataset.data_root='$DATA' val_dataloader.dataset.data_root='$DATA' \
      test_dataloader.dataset.data_root='$DATA' train_cfg.max_iters=$ITERS train_cfg.val_interval=$ITERS \
      default_hooks.checkpoint.interval=$ITERS param_scheduler.0.end=$((ITERS / 2)) \
      param_scheduler.1.begin=$((ITERS / 2)) param_scheduler.1.end=$ITERS train_dataloader.num_workers=0 \
      val_dataloader.num_workers=0 test_dataloader.num_workers=0 train_dataloader.persistent_workers=False \
      val_dataloader.persistent_workers=False test_dataloader.persistent_workers=False"
  run_part C_detector_cost "$LIMIT_C" "$PY" benchmarks/detector_cost.py --device "$DEV" \
    --detectors esf-19m r50 --img-size "${DET_SIZE[@]}" --rounds 1 --warmup 1 --steps 2 --no-flops \
    --out "$OUT/C_detector_cost.json"
else
  log 'B, C: skipped (no mmcv ops, opencv or matplotlib here; see env.json)'
fi

"$PY" benchmarks/gpu/summarise.py "$OUT" | tee "$OUT/summary.md"
log "finished in $((SECONDS - T0)) s"
