"""Where each refined latent sits: nearer its own prior draw, or nearer a real image's latent?

    python -m bench.latent_neighbours --bundle checkpoints/mnist [--nfes 1 2 4 10]

For the Latents map's clouds (``latent_view.map_clouds``: 1,000 prior draws and biased latents) and the
LFR at each NFE (RK4 at multiples of 4, else Euler; the bundle's α), the medians over draws of:
‖F(z) − z‖ (to its own prior draw), the distance to the nearest biased latent, to the nearest *other*
prior draw, and ‖F(z)‖/√d. UMAP keeps neighbours, so these say what the map can show. Writes
bench/results/latent_neighbours_BUNDLE.json.
"""

from __future__ import annotations

import argparse
import json
import shlex
import sys
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parent.parent

from bfr_core.views.latent_view import map_clouds, map_setting, refine_prior
from bfr_core.pipeline import Pipeline


def neighbours(pipe: Pipeline, nfe: int | None) -> dict:
    prior, biased, _ = map_clouds(pipe)
    setting = map_setting(pipe, None, nfe)
    p, b = prior.flatten(1).double(), biased.flatten(1).double()
    r = refine_prior(pipe, prior, setting).flatten(1).double()
    to_prior = torch.cdist(r, p)
    own = to_prior.diagonal().clone()
    to_prior.fill_diagonal_(float("inf"))

    def median(x):
        return round(float(x.median()), 2)

    return {
        "lfr": f"{setting['lfr_solver']} {setting['lfr_nfe']}",
        "to_own_prior_draw": median(own),
        "to_nearest_other_prior_draw": median(to_prior.min(1).values),
        "to_nearest_biased_latent": median(torch.cdist(r, b).min(1).values),
        "norm_per_dim": round(float((r.norm(dim=1) / r.shape[1] ** 0.5).median()), 3),
        "nearer_own_draw_than_any_biased": round(
            float((own < torch.cdist(r, b).min(1).values).double().mean()), 3
        ),
    }


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--bundle", type=Path, required=True)
    ap.add_argument("--nfes", type=int, nargs="+", default=[1, 2, 4, 10])
    args = ap.parse_args()
    pipe = Pipeline(args.bundle)
    rows = {str(k): neighbours(pipe, k) for k in args.nfes}
    out = {"command": shlex.join(["python", "bench/latent_neighbours.py", *sys.argv[1:]]), "rows": rows}
    path = ROOT / "bench" / "results" / f"latent_neighbours_{args.bundle.name}.json"
    path.write_text(json.dumps(out, indent=1) + "\n")
    print(json.dumps(out, indent=1))


if __name__ == "__main__":
    main()
