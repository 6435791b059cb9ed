#!/usr/bin/env bash
# One GPU lease, one script: the CUDA checks (issue 14) and the MNIST LFR capacity/data study (issue 11).
#
#   OUT=DIR BFR_DATA_DIR=DIR bash scripts/gpu_lease.sh [SECONDS]
#
# run from the repository root on a machine with a CUDA GPU. Every training is time-boxed to the
# budget (default 420 s) and saves snapshots along the way, so whatever finished comes back even
# when the budget ends a run early; each file's metadata says how many steps it holds and where it
# was trained. The models are then scored here, on the CPU, with bench/capacity.py (held-out
# training images). Results: OUT/summary.txt and tarballs of the new model files.
set -u
budget=${1:-420}
B=checkpoints/mnist
: "${OUT:?set OUT to a folder for the results}"
export PYTHONPATH=$PWD PYTHONUNBUFFERED=1 OMP_NUM_THREADS=2  # 16 cores: five trainings, the DFR pool, pytest
source scripts/gpu_lease_lib.sh
# A smoke test on any machine: DEVICE=cpu STEPS=6 SNAPS="2 4" N_INVERT=200 bash scripts/gpu_lease.sh 120
DEVICE=${DEVICE:-cuda} STEPS=${STEPS:-16000} SNAPS=${SNAPS:-2000 4000 8000 12000} N_INVERT=${N_INVERT:-50000}

lfr() { # NAME CHANNELS LATENTS: fixed α = 0.2, the shipped LFR's recipe, up to 16,000 steps
  local name=$1 channels=$2 latents=$3
  timeout "$(left)" python3 -m bfr_core train-lfr --bundle $B --alpha 0.2 --channels "$channels" \
    --batch-size 128 --steps "$STEPS" --snapshot-at $SNAPS --latents "$latents" \
    --name "capacity/$name" --device "$DEVICE" >"$LOGS/$name.log" 2>&1
}

machine_summary

# Trainings on the shipped 10,000 latents start at once; the 50,000-image inversion runs beside them.
# (The DFR's pool of base samples is drawn on the CPU, as `sample` does, before its GPU training.)
lfr lfr_c32_gpu 32 latents &
lfr lfr_c64_gpu 64 latents &
OMP_NUM_THREADS=6 timeout "$(left)" python3 -m bfr_core train-dfr --bundle $B --steps "$STEPS" --snapshot-at $SNAPS \
  --pool 4096 --channels 32 --batch-size 128 --ot-batch 1024 --blur-sigma-min 0.5 --blur-sigma-max 1.0 \
  --name capacity/dfr_c32_gpu --device "$DEVICE" >"$LOGS/dfr_c32_gpu.log" 2>&1 &
(
  timeout 200 python3 -m bfr_core --quiet invert --bundle $B --n "$N_INVERT" --chunk 5000 \
    --name capacity/latents_50k --device "$DEVICE" >"$LOGS/invert.log" 2>&1 &&
    { lfr lfr_c64_gpu_data50k 64 capacity/latents_50k & lfr lfr_c32_gpu_data50k 32 capacity/latents_50k & wait; }
) &
timeout 240 python3 -m pytest -q -p no:cacheprovider tests/test_device.py tests/test_train.py \
  tests/test_ode.py >"$LOGS/pytest.log" 2>&1
wait

logs_summary
ls -la $B/capacity/ >>"$OUT/summary.txt"

# Files back: at most 8, 16 MiB each (a width-64 net is 6.8 MB), so a run's 4,000-step snapshot and
# its two latest files travel, packed into tarballs.
python3 scripts/gpu_lease_pack.py "$OUT" "$LOGS/start" $B/capacity
ls -la "$OUT"
