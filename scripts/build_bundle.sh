#!/usr/bin/env bash
# Build a shipped bundle with the project's own CLI, timing every stage.
# Usage: bash scripts/build_bundle.sh digits|moons|mnist|fashion-mnist [OUT_DIR]
# Writes OUT_DIR (default checkpoints/<dataset>) and OUT_DIR/build_times.json.
# Step counts can be overridden (e.g. for a smoke run): BASE_STEPS, REFINER_STEPS,
# CLASSIFIER_STEPS, INVERT_N, POOL, PAIRS, EVAL_N.
set -euo pipefail
dataset=${1:?usage: build_bundle.sh digits|moons [OUT_DIR]}
out=${2:-checkpoints/$dataset}
py=${PYTHON:-python}
cli="$py -m bfr_core --quiet"
case $dataset in
  digits) base_steps=200; lfr_args="--alpha-max 0.5 --alpha 0.2"; has_classifier=1 ;;
  moons|8gaussians|checkerboard|spirals) base_steps=1500; lfr_args="--alpha-max 0.5 --alpha 0.1"; has_classifier=0 ;;
  # MNIST (not yet run at full length): see bench/results/profile_unet.json for the UNet's cost
  # on the 2-core CPU (16 channels: ~0.3 s per training step at batch 128).
  mnist|fashion-mnist) base_steps=5000; refiner_steps=3000; invert_n=10000; pool=4096; pairs=8192
    lfr_args="--alpha-max 0.5 --alpha 0.2"; has_classifier=1; net_args="--channels 16 --batch-size 128" ;;
  *) echo "no recipe for dataset $dataset" >&2; exit 2 ;;
esac
base_steps=${BASE_STEPS:-$base_steps}
refiner_steps=${REFINER_STEPS:-${refiner_steps:-4000}}
classifier_steps=${CLASSIFIER_STEPS:-2000}
invert_n=${INVERT_N:-${invert_n:-}}
pool=${POOL:-${pool:-4096}}
pairs=${PAIRS:-${pairs:-20000}}
eval_n=${EVAL_N:-2000}
net_args=${net_args:-}
mkdir -p "$out"
times="{"
stage() {  # stage NAME COMMAND...
  local name=$1; shift
  local t0=$EPOCHREALTIME
  echo "== $name: $*"
  "$@"
  local dt=$(awk "BEGIN{print $EPOCHREALTIME - $t0}")
  times="$times\"$name\": $dt, "
}
total0=$EPOCHREALTIME
# The base is deliberately trained briefly (biased), so that refinement has work to do.
stage train-base $cli train-base --dataset "$dataset" --out "$out" --steps $base_steps $net_args
if [ $has_classifier = 1 ]; then
  stage train-classifier $cli train-classifier --bundle "$out" --steps $classifier_steps
fi
stage invert $cli invert --bundle "$out" ${invert_n:+--n $invert_n}
stage train-lfr $cli train-lfr --bundle "$out" $lfr_args --steps $refiner_steps $net_args
stage reflow-lfr $cli reflow-lfr --bundle "$out" --steps $refiner_steps --pairs $pairs ${net_args:+--batch-size 128}
stage train-dfr $cli train-dfr --bundle "$out" --steps $refiner_steps --pool $pool $net_args
stage evaluate $cli evaluate --bundle "$out" --n $eval_n --seed 0 --out "$out/evaluate_seed0.json"
total=$(awk "BEGIN{print $EPOCHREALTIME - $total0}")
echo "${times}\"total\": $total}" > "$out/build_times.json"
echo "total wall time: $total s"
cat "$out/build_times.json"
