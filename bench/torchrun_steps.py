"""Time per training step of `train-base` run as one process and under torchrun with 1 and 2 processes.

    python -m bench.torchrun_steps [--dataset mnist] [--steps 40] [--repeats 3]

Each run trains a fresh base at the same global batch and seed; the time per step is the training loop's
wall time that the saved model records (its card's ``wall_s``, start-up excluded) over its steps. Writes
bench/results/torchrun_steps.{json,md} with the median of the repeats. Run it with nothing else running.
torchrun sets OMP_NUM_THREADS=1 per process unless it is set; a plain run uses torch's default threads.
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

from bfr_core.infra.checkpoint import load_tensors


def launchers(python: str) -> dict[str, list[str]]:
    torchrun = [python, "-m", "torch.distributed.run", "--standalone"]
    return {
        "one process (python -m bfr_core, torch's default threads)": [python, "-m", "bfr_core"],
        "torchrun, 1 process (1 thread)": [*torchrun, "--nproc_per_node", "1", "-m", "bfr_core"],
        "torchrun, 2 processes (1 thread each)": [*torchrun, "--nproc_per_node", "2", "-m", "bfr_core"],
    }


def seconds_per_step(launcher: list[str], dataset: str, steps: int, out: Path, extra: list[str]) -> float:
    argv = [
        *launcher,
        "--quiet",
        "train-base",
        "--dataset",
        dataset,
        "--steps",
        str(steps),
        "--out",
        str(out),
    ]
    env = {k: v for k, v in os.environ.items() if k != "OMP_NUM_THREADS"}
    subprocess.run([*argv, *extra], check=True, cwd=ROOT, env=env, capture_output=True)
    card = load_tensors(out / "base.safetensors")[1]
    return card["wall_s"] / card["steps"]


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--dataset", default="mnist")
    ap.add_argument("--steps", type=int, default=40)
    ap.add_argument("--repeats", type=int, default=3)
    args = ap.parse_args()
    extra = ["--channels", "16", "--batch-size", "128"] if args.dataset in ("mnist", "fashion-mnist") else []
    rows = {}
    with tempfile.TemporaryDirectory() as tmp:
        for name, launcher in launchers(sys.executable).items():
            times = [
                seconds_per_step(launcher, args.dataset, args.steps, Path(tmp) / f"{len(rows)}_{r}", extra)
                for r in range(args.repeats)
            ]
            rows[name] = {
                "median_s_per_step": round(statistics.median(times), 4),
                "runs": [round(t, 4) for t in times],
            }
            print(name, rows[name], flush=True)
    first = next(iter(rows.values()))["median_s_per_step"]
    for r in rows.values():
        r["speed_vs_one_process"] = round(first / r["median_s_per_step"], 2)
    report = {
        "command": shlex.join(["python", "bench/torchrun_steps.py", *sys.argv[1:]]),
        "machine": "the project's 2-core CPU machine, nothing else running",
        "dataset": args.dataset,
        "steps": args.steps,
        "train_args": extra,
        "rows": rows,
    }
    out = ROOT / "bench" / "results"
    (out / "torchrun_steps.json").write_text(json.dumps(report, indent=1) + "\n")
    md = f"Command: `{report['command']}` ({args.dataset}, {args.steps} steps, {args.repeats} runs each)\n\n"
    md += "| launch | s per step (median) | speed vs one process |\n|---|---|---|\n"
    md += "".join(
        f"| {k} | {v['median_s_per_step']} | {v['speed_vs_one_process']}× |\n" for k, v in rows.items()
    )
    (out / "torchrun_steps.md").write_text(md)
    print(md)


if __name__ == "__main__":
    main()
