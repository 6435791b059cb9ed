"""Why does an LFR stop short of the correction? Test the suspect, the α mixing of its targets.

    python -m bench.alpha_shortfall --bundle checkpoints/mnist-leak [--n 1000] [--seeds 0 1 2]

The LFR is trained towards z1 = √(1 − a)·z_b + √a·ε (a ~ U(0, α)), not towards the inverted latents z_b
themselves, so even a perfect LFR lands between the prior and z_b. If that mixing were why integrating
past t = 1 helps, the mixed targets decoded by the base, G(z1), would score about like the LFR at t = 1,
and G(z_b) about like the overshoot. Per seed, on the same n labels (every target drawn from the
inverted latents of its own class):

- in latent space, the mean squared norm per dimension q (1 for N(0, I)) and the energy distance of each
  set to other draws of z_b;
- in image space, FID and the independent FID2 against the last 10,000 training images of
  G(F₀→₁(ε)) (the LFR at t = 1, Euler steps of 0.25 as the overshoot view), G(F₀→₁.₂₅(ε)), G(z1) (the
  mixed target: a perfect LFR) and G(z_b) (the unmixed target: a perfect LFR with α = 0).

Writes bench/results/alpha_shortfall_BUNDLE.json and .md.
"""

from __future__ import annotations

import argparse
import json
import shlex
import statistics
import sys
import time
from dataclasses import replace
from pathlib import Path

import torch

from bfr_core.eval.validation import validation_scorer
from bfr_core.eval.metrics import energy_distance
from bfr_core.pipeline import Pipeline, Settings
from bfr_core.refiners.lfr import alpha_mix
from bfr_core.views.sweep import OVERSHOOT_STEP, decode_stack

ROOT = Path(__file__).resolve().parent.parent
SETS = ("prior", "lfr t=1", "lfr t=1.25", "mixed target", "unmixed target")


def mean_sq_norm(z: torch.Tensor) -> float:
    """q(z) = mean over samples of ‖z‖² / d (1 for N(0, I))."""
    z = z.flatten(1).double()
    return float((z**2).sum(1).mean() / z.shape[1])


def same_class_draws(y: torch.Tensor, labels: torch.Tensor | None, g: torch.Generator) -> torch.Tensor:
    """For each wanted label, the index of a random stored latent of that class (any latent if unlabelled)."""
    if labels is None:
        return torch.randint(len(y), (len(y),), generator=g)
    out = torch.empty(len(labels), dtype=torch.long)
    for c in labels.unique():
        pool = (y == c).nonzero().flatten()
        where = (labels == c).nonzero().flatten()
        out[where] = pool[torch.randint(len(pool), (len(where),), generator=g)]
    return out


@torch.no_grad()
def one_seed(pipe: Pipeline, score, n: int, seed: int) -> dict:
    """The five sets of one seed: latent statistics and the decoded sets' FIDs."""
    lat = pipe.bundle.latents
    base = pipe.run(n, seed, Settings(mode="none"))
    s = pipe.resolve(Settings(mode="lfr", lfr_solver="euler"))
    g = torch.Generator().manual_seed(10_000 + seed)
    z_b = lat["z"][same_class_draws(lat["y"], base.labels, g)]
    z_mixed, _ = alpha_mix(z_b, s.alpha, g)
    others = lat["z"][same_class_draws(lat["y"], base.labels, g)]  # the reference for energy distances
    f1, f125 = (
        pipe.refine("latent", base.z, base.labels, replace(s, lfr_nfe=round(t / OVERSHOOT_STEP)), g, t1=t).x
        for t in (1.0, 1.25)
    )
    latents = dict(zip(SETS, (base.z, f1, f125, z_mixed, z_b)))
    images = decode_stack(pipe, list(latents.values())[1:], base.labels, s)
    scores = {"prior": score(base.base)} | {k: score(x) for k, x in zip(SETS[1:], images)}
    return {
        k: {
            "q": round(mean_sq_norm(latents[k]), 4),
            "energy_to_z_b": round(energy_distance(latents[k], others), 3),
            **{m: round(v, 3) for m, v in scores[k].items()},
        }
        for k in SETS
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--bundle", type=Path, required=True)
    ap.add_argument("--n", type=int, default=1000)
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    args = ap.parse_args()
    pipe = Pipeline(args.bundle)
    if pipe.bundle.latents is None or not pipe.bundle.has("lfr"):
        ap.error(f"{args.bundle} needs inverted latents and an LFR")
    score = validation_scorer(pipe.bundle)
    t0 = time.perf_counter()
    runs = []
    for seed in args.seeds:
        runs.append(one_seed(pipe, score, args.n, seed))
        print(f"seed {seed}: {runs[-1]}", flush=True)
    keys = list(runs[0]["prior"])
    summary = {
        k: {
            m: [
                round(statistics.mean(r[k][m] for r in runs), 3),
                round(statistics.stdev(r[k][m] for r in runs), 3),
            ]
            for m in keys
        }
        for k in SETS
    }
    out = {
        "command": shlex.join(["python", "-m", "bench.alpha_shortfall", *sys.argv[1:]]),
        "alpha": pipe.resolve(Settings(mode="lfr")).alpha,
        "n": args.n,
        "seeds": args.seeds,
        "wall_s": round(time.perf_counter() - t0, 1),
        "runs": runs,
        "mean_sd": summary,
    }
    dest = ROOT / "bench" / "results" / f"alpha_shortfall_{args.bundle.name}.json"
    dest.write_text(json.dumps(out, indent=1) + "\n")
    dest.with_suffix(".md").write_text(markdown(out, args.bundle.name, keys))
    print(f"wrote {dest} and .md")


def markdown(out: dict, name: str, keys: list) -> str:
    lines = [
        f"# Does the α mixing make the LFR stop short? {name}",
        "",
        f"`{out['command']}` — α = {out['alpha']}, {out['n']} samples per seed, seeds {out['seeds']} "
        f"({out['wall_s']} s); mean ± sd over seeds. q: mean squared norm per dimension (1 for N(0, I)); "
        "energy distance to other inverted latents z_b of the same classes; FIDs against the last 10,000 "
        "training images.",
        "",
        "| set | " + " | ".join(keys) + " |",
        "|---|" + "---|" * len(keys),
    ]
    for k, v in out["mean_sd"].items():
        lines.append(f"| {k} | " + " | ".join(f"{v[m][0]:.3f} ± {v[m][1]:.3f}" for m in keys) + " |")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    main()
