#!/usr/bin/env bash
# One GPU lease, one script: the cifar10 bundle's models, its Inception statistics and its Inception-FID rows.
#
#   OUT=DIR BFR_DATA_DIR=DIR BFR_INCEPTION_WEIGHTS=FILE bash scripts/gpu_lease_cifar.sh
#
# run from the repository root on a machine with a CUDA GPU (BFR_DATA_DIR holds cifar10-jpeg-q75.tar.gz).
# Every training is time-boxed (--max-seconds) so it ends with a model file holding the steps it reached;
# each file's metadata records its command, steps, wall time and device. Stages that need nothing from each
# other run side by side on the one GPU:
#   0 s   base (64 channels) | classifier | classifier2 | Inception statistics of the 60,000 images
#   BASE  invert 20,000 training images (LFR data) and 1,200 (shipped) | DFR (pool of 20,000 base samples)
#   then  LFR α = 0.2 | LFR α = 0.5 (chosen later on held-out training images) → reflow of the α = 0.2 LFR
#   end   bench/inception_fid.py: every row × 3 seeds × 2,000 samples
# A smoke run on any machine: DEVICE=cpu SCALE=0.03 N_INVERT=64 N_SHIPPED=32 POOL=64 N_EVAL=20 SEEDS=0 INCEPTION_N=32 \
#   BUNDLE=/tmp/c10 OUT=/tmp/lease bash scripts/gpu_lease_cifar.sh
set -u
: "${OUT:?set OUT to a folder for the results}"
B=${BUNDLE:-checkpoints/cifar10}
DEVICE=${DEVICE:-cuda} SCALE=${SCALE:-1} N_INVERT=${N_INVERT:-20000} N_EVAL=${N_EVAL:-2000}
POOL=${POOL:-20000} N_SHIPPED=${N_SHIPPED:-1200}
export PYTHONPATH=$PWD PYTHONUNBUFFERED=1 OMP_NUM_THREADS=3
LOGS=$OUT/logs
mkdir -p "$B/lease" "$LOGS"
start=$(date +%s)
secs() { awk "BEGIN{print int($1 * $SCALE) + 1}"; }  # a stage's time box, scaled for a smoke run
cli() { python3 -m bfr_core --quiet "$@"; }
net="--channels 64 --batch-size 256 --device $DEVICE"
{
  nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv 2>/dev/null
  python3 -c 'import torch; print("torch", torch.__version__, "cuda", torch.cuda.is_available())'
} >"$OUT/summary.txt" 2>&1

cli train-base --dataset cifar10 --out "$B" $net --lr 5e-4 --steps 200000 --max-seconds "$(secs 190)" \
  >"$LOGS/base.log" 2>&1 &
base=$!
cli train-classifier --bundle "$B" --dataset cifar10 --steps 200000 --max-seconds "$(secs 150)" \
  --device "$DEVICE" >"$LOGS/classifier.log" 2>&1 &
cli train-classifier --bundle "$B" --dataset cifar10 --name classifier2 --arch cnn-wide --noise 0.3 \
  --max-shift 0 --seed 777 --steps 200000 --max-seconds "$(secs 150)" --device "$DEVICE" \
  >"$LOGS/classifier2.log" 2>&1 &
wait $base
cli inception-reference --bundle "$B" --device "$DEVICE" ${INCEPTION_N:+--max-images $INCEPTION_N} >"$LOGS/inception_reference.log" 2>&1 &
cli train-dfr --bundle "$B" $net --pool $POOL --ot-batch 1024 --blur-p 0 --noise-p 0.3 --noise-std 0.01 \
  --steps 200000 --max-seconds "$(secs 200)" >"$LOGS/dfr.log" 2>&1 &
dfr=$!
cli invert --bundle "$B" --n "$N_INVERT" --chunk 5000 --name lease/latents_20k --device "$DEVICE" \
  >"$LOGS/invert.log" 2>&1
cli invert --bundle "$B" --n $N_SHIPPED --device "$DEVICE" >"$LOGS/invert_shipped.log" 2>&1 &
lfr() {  # NAME ALPHA SECONDS
  cli train-lfr --bundle "$B" --latents lease/latents_20k --alpha "$2" --sigma 0 $net --steps 200000 \
    --max-seconds "$(secs "$3")" --name "$1" >"$LOGS/$(basename "$1").log" 2>&1
}
lfr ablation/lfr_alpha05 0.5 110 &
lfr lfr 0.2 110
cli reflow-lfr --bundle "$B" --pairs $POOL --batch-size 256 --steps 200000 --max-seconds "$(secs 60)" \
  --device "$DEVICE" >"$LOGS/reflow.log" 2>&1
wait
echo "== trained after $(($(date +%s) - start)) s" >>"$OUT/summary.txt"
python -m bench.inception_fid --bundle "$B" --n "$N_EVAL" --seeds ${SEEDS:-0 1 2} --device "$DEVICE" \
  --candidate lfr="$B/ablation/lfr_alpha05.safetensors" --out "$OUT/inception_fid_cifar10.json" \
  >"$LOGS/inception_fid.log" 2>&1

{
  for log in "$LOGS"/*.log; do
    echo "== $(basename "$log")"
    tr '\r' '\n' <"$log" | grep -v '^\s*$' | tail -n 3
  done
  echo "== files"; ls -la "$B" "$B/ablation"
  echo "== wall $(($(date +%s) - start)) s"
} >>"$OUT/summary.txt" 2>&1
# Files back: at most 8 of 16 MiB. The new model files go in one tar, cut into 15 MB parts
# (cat models.tar.* > models.tar here); the logs stay in summary.txt.
rm -rf "$B/lease" "$B/.state" "$B/.times" "$B/ablation"  # the α = 0.5 LFR: its rows are in the JSON
tar -cf - -C "$(dirname "$B")" "$(basename "$B")" | split -b 15000000 - "$OUT/models.tar."
rm -rf "$LOGS"
ls -la "$OUT"
