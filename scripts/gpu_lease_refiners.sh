#!/usr/bin/env bash
# The second GPU lease (issue 11): the DFRs that the CPU cannot train, and a full-width reflow LFR.
#
#   OUT=DIR BFR_DATA_DIR=DIR bash scripts/gpu_lease_refiners.sh [SECONDS]
#
# run from the repository root on a machine with a CUDA GPU. The question: the 32-channel DFR of the
# first lease got worse from 4,000 to 8,000 steps on held-out images, as if it learned its pool of
# 4,096 base samples by heart. So: a pool of 32,768 (drawn on the GPU), 32 and 64 channels, on
# `mnist` and `mnist-leak`; and `mnist-wide`'s reflow at its teacher's own 64-channel width.
# Every training is time-boxed to the budget (default 420 s) and snapshots along the way; what comes
# back is scored on the CPU with bench/select_refiner.py (held-out training images).
# A smoke run on any machine: DEVICE=cpu STEPS=4 SNAPS="2" POOL=64 PAIRS=32 bash scripts/gpu_lease_refiners.sh 300
set -u
budget=${1:-420}
: "${OUT:?set OUT to a folder for the results}"
export PYTHONPATH=$PWD PYTHONUNBUFFERED=1 OMP_NUM_THREADS=3  # 16 cores, five trainings
DEVICE=${DEVICE:-cuda} STEPS=${STEPS:-24000} SNAPS=${SNAPS:-2000 4000 8000 12000 16000} POOL=${POOL:-32768}
PAIRS=${PAIRS:-32768}
source scripts/gpu_lease_lib.sh

dfr() { # BUNDLE CHANNELS: the first lease's DFR recipe with a pool of $POOL
  local bundle=checkpoints/$1 name=capacity/dfr_c$2_pool
  timeout "$(left)" python3 -m bfr_core train-dfr --bundle "$bundle" --pool "$POOL" --channels "$2" \
    --batch-size 128 --ot-batch 1024 --blur-sigma-min 0.5 --blur-sigma-max 1.0 --steps "$STEPS" \
    --snapshot-at $SNAPS --name $name --device "$DEVICE" >"$LOGS/$1_dfr_c$2.log" 2>&1
}

machine_summary

dfr mnist 32 &
dfr mnist 64 &
dfr mnist-leak 32 &
dfr mnist-leak 64 &
timeout "$(left)" python3 -m bfr_core reflow-lfr --bundle checkpoints/mnist-wide --pairs "$PAIRS" \
  --teacher-nfe 16 --steps "$STEPS" --batch-size 128 --snapshot-at $SNAPS --name capacity/lfr_reflow_c64 \
  --device "$DEVICE" >"$LOGS/mnist-wide_reflow_c64.log" 2>&1 &
timeout 120 python3 -m pytest -q -p no:cacheprovider tests/test_device.py >"$LOGS/pytest.log" 2>&1
wait

logs_summary

python3 scripts/gpu_lease_pack.py "$OUT" "$LOGS/start" checkpoints/mnist/capacity \
  checkpoints/mnist-leak/capacity checkpoints/mnist-wide/capacity >>"$OUT/summary.txt" 2>&1
ls -la "$OUT"
