# What both GPU lease scripts share; `source scripts/gpu_lease_lib.sh` after setting OUT.
LOGS=$(mktemp -d)
start=$(date +%s)
touch "$LOGS/start"
left() { echo $((budget - ($(date +%s) - start))); }  # seconds left of the lease script's budget

machine_summary() { # the GPU and torch, first lines of OUT/summary.txt
  {
    nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv
    python3 -c 'import torch; print("torch", torch.__version__, "cuda", torch.cuda.is_available())'
  } >"$OUT/summary.txt" 2>&1
}

logs_summary() { # the tail of every run's log, then the wall time, appended to OUT/summary.txt
  {
    echo "== pytest"; tail -n 5 "$LOGS/pytest.log"
    for log in "$LOGS"/*.log; do
      echo "== $(basename "$log")"
      tr '\r' '\n' <"$log" | grep -v '^\s*$' | tail -n 4
    done
    echo "== wall $(($(date +%s) - start)) s"
  } >>"$OUT/summary.txt" 2>&1
}
