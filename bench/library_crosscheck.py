"""Adopt or not: the OT coupling (POT, torchcfm) and the flow path (Meta's flow_matching) against ours.

    pip install pot flow_matching && pip install --no-deps torchcfm
    python -m bench.library_crosscheck

For MNIST-sized batches (784 dimensions, the batch sizes our trainings use) it measures, on the same
inputs: the total squared cost of our exact assignment (``bfr_core.generative.flow.ot_assignment``, SciPy's
``linear_sum_assignment``) and of POT's exact plan (``ot.emd``), the median time of each and of
torchcfm's ``OTPlanSampler("exact")``, how many distinct sources torchcfm's pairs keep, and the largest
difference between our path (``sample_path``) and flow_matching's ``AffineProbPath(CondOTScheduler())``.
Writes bench/results/library_crosscheck.json. Libraries that are not installed are reported as such.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from pathlib import Path

import numpy as np
import torch

from bfr_core.generative.flow import ot_assignment, sample_path

ROOT = Path(__file__).resolve().parent.parent


def median_s(fn, reps: int) -> float:
    times = []
    for _ in range(reps):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return round(statistics.median(times), 5)


def squared_cost(x0: torch.Tensor, x1: torch.Tensor, perm: torch.Tensor) -> float:
    """Σ_i ‖x0[perm[i]] − x1[i]‖² of a pairing (lower is better; equal for two exact solvers)."""
    return float(((x0[perm] - x1).flatten(1).double() ** 2).sum())


def pot_assignment(x0: torch.Tensor, x1: torch.Tensor) -> torch.Tensor:
    """POT's exact plan on uniform weights, read back as a permutation (each row's largest entry)."""
    import ot

    cost = torch.cdist(x0.flatten(1).double(), x1.flatten(1).double()) ** 2
    n = len(x0)
    plan = ot.emd(np.full(n, 1 / n), np.full(n, 1 / n), cost.numpy())
    return torch.as_tensor(plan.argmax(axis=0))  # column i (target i) ← its source


def check_ot(batch: int, reps: int, g: torch.Generator) -> dict:
    x0 = torch.randn(batch, 1, 28, 28, generator=g)
    x1 = torch.rand(batch, 1, 28, 28, generator=g) * 2 - 1
    ours = ot_assignment(x0, x1)
    row = {
        "batch": batch,
        "cost_ours": squared_cost(x0, x1, ours),
        "cost_independent": squared_cost(x0, x1, torch.arange(batch)),
        "ours_s": median_s(lambda: ot_assignment(x0, x1), reps),
    }
    try:
        import ot  # noqa: F401
    except ImportError:
        return {**row, "pot": "not installed"}
    theirs = pot_assignment(x0, x1)
    row |= {
        "cost_pot": squared_cost(x0, x1, theirs),
        "pot_is_a_permutation": len(set(theirs.tolist())) == batch,
        "pot_s": median_s(lambda: pot_assignment(x0, x1), reps),
    }
    try:
        from torchcfm.optimal_transport import OTPlanSampler
    except ImportError:
        return {**row, "torchcfm": "not installed"}
    sampler = OTPlanSampler("exact")
    np.random.seed(0)  # torchcfm draws its pairs from NumPy's global generator; seeded here only
    a, _ = sampler.sample_plan(x0, x1)
    distinct = len({tuple(v[:8].tolist()) for v in a.flatten(1)})
    row |= {
        "torchcfm_s": median_s(lambda: sampler.sample_plan(x0, x1), reps),
        "torchcfm_distinct_sources": distinct,
    }
    return row


def check_path(g: torch.Generator) -> dict:
    try:
        from flow_matching.path import AffineProbPath
        from flow_matching.path.scheduler import CondOTScheduler
    except ImportError:
        return {"flow_matching": "not installed"}
    x0 = torch.randn(256, 1, 28, 28, generator=g)
    x1 = torch.rand(256, 1, 28, 28, generator=g) * 2 - 1
    t = torch.rand(256, generator=g)
    xt, ut = sample_path(x0, x1, t)
    theirs = AffineProbPath(scheduler=CondOTScheduler()).sample(x_0=x0, x_1=x1, t=t)
    return {
        "max_abs_diff_xt": float((xt - theirs.x_t).abs().max()),
        "max_abs_diff_ut": float((ut - theirs.dx_t).abs().max()),
        "ours_s": median_s(lambda: sample_path(x0, x1, t), 50),
        "flow_matching_s": median_s(
            lambda: AffineProbPath(scheduler=CondOTScheduler()).sample(x_0=x0, x_1=x1, t=t), 50
        ),
    }


def versions() -> dict:
    out = {"torch": torch.__version__}
    for name, module in (("pot", "ot"), ("torchcfm", "torchcfm"), ("flow_matching", "flow_matching")):
        try:
            out[name] = getattr(__import__(module), "__version__", "installed")
        except ImportError:
            out[name] = None
    return out


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--batches", type=int, nargs="+", default=[128, 256, 1024])
    ap.add_argument("--reps", type=int, default=5)
    ap.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "library_crosscheck.json")
    args = ap.parse_args(argv)
    g = torch.Generator().manual_seed(0)
    result = {
        "command": "python -m bench.library_crosscheck",
        "threads": torch.get_num_threads(),
        "versions": versions(),
        "ot": [check_ot(b, args.reps, g) for b in args.batches],
        "path": check_path(g),
    }
    args.out.write_text(json.dumps(result, indent=1))
    print(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
