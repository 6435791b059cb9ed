#!/usr/bin/env bash
# Build a shipped bundle with the project's own CLI, timing every stage.
# Usage: bash scripts/build_bundle.sh digits|moons [OUT_DIR]
# Writes OUT_DIR (default checkpoints/<dataset>) and OUT_DIR/build_times.json.
set -euo pipefail
dataset=${1:?usage: build_bundle.sh digits|moons [OUT_DIR]}
out=${2:-checkpoints/$dataset}
py=${PYTHON:-python}
cli="$py -m bfr_core --quiet"
case $dataset in
  digits) base_steps=200; lfr_args="--alpha-max 0.5 --alpha 0.2"; has_classifier=1 ;;
  moons|8gaussians|checkerboard|spirals) base_steps=1500; lfr_args="--alpha-max 0.5 --alpha 0.1"; has_classifier=0 ;;
  *) echo "no recipe for dataset $dataset" >&2; exit 2 ;;
esac
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
stage train-base $cli train-base --dataset "$dataset" --out "$out" --steps $base_steps
[ $has_classifier = 1 ] && stage train-classifier $cli train-classifier --bundle "$out" --steps 2000
stage invert $cli invert --bundle "$out"
stage train-lfr $cli train-lfr --bundle "$out" $lfr_args --steps 4000
stage reflow-lfr $cli reflow-lfr --bundle "$out" --steps 4000
stage train-dfr $cli train-dfr --bundle "$out" --steps 4000
stage evaluate $cli evaluate --bundle "$out" --n 2000 --seed 0 --out "$out/evaluate_seed0.json"
total=$(awk "BEGIN{print $EPOCHREALTIME - $total0}")
echo "${times}\"total\": $total}" > "$out/build_times.json"
echo "total wall time: $total s"
cat "$out/build_times.json"
