#!/usr/bin/env bash
# Build shipped bundles with the project's own CLI. The recipes are data: bfr_core/recipes.py.
# Usage: bash scripts/build_bundle.sh RECIPE... [-- BUILD_OPTIONS]
#   e.g. bash scripts/build_bundle.sh digits moons
#        bash scripts/build_bundle.sh mnist -- --resume              # continue an interrupted build
#        bash scripts/build_bundle.sh cifar10 -- --smoke --out /tmp/c # every stage in minutes
#        python -m bfr_core build --help                             # recipes, --set NAME=VALUE, --dry-run
set -euo pipefail
recipes=()
while [ $# -gt 0 ] && [ "$1" != "--" ]; do recipes+=("$1"); shift; done
[ $# -gt 0 ] && shift
for recipe in "${recipes[@]:?usage: build_bundle.sh RECIPE... [-- BUILD_OPTIONS]}"; do
  ${PYTHON:-python} -m bfr_core build "$recipe" "$@"
done
