"""Add the refined latents to the latent maps that were stored before `bfr latent-map` kept them.

    python scripts/store_refined_in_latent_maps.py checkpoints/mnist checkpoints/mnist-leak ...

The Latents view's first answer refined 1,000 prior draws through the LFR (several seconds on MNIST) even
with the UMAP coordinates stored. `bfr latent-map` now stores those refined latents beside the coordinates;
this adds them to an existing map without refitting: the refinement is deterministic (the map's prior seed
and generator), so they are exactly the latents the stored coordinates were fitted on. Skips a bundle whose
map belongs to another LFR file (its stored setting does not match).
"""

import sys
from pathlib import Path

import torch

from bfr_core.checkpoint import load_tensors, save_tensors
from bfr_core.latent_view import MAP_FILE, bundle_latent_map
from bfr_core.pipeline import Pipeline


def main(paths: list[str]) -> None:
    for path in map(Path, paths):
        f = path / f"{MAP_FILE}.safetensors"
        if not f.is_file():
            print(f"{path}: no map of its own (shared or none); skipped")
            continue
        tensors, meta = load_tensors(f)
        lmap = bundle_latent_map(Pipeline(path))
        if lmap.refined is None or meta.get("lfr") != lmap.setting:
            print(f"{path}: no LFR, or the map was fitted with another LFR file; skipped")
            continue
        tensors["refined"] = torch.from_numpy(lmap.refined).view(
            len(lmap.refined), *Pipeline(path).bundle.shape
        )
        meta["refined_added_by"] = "python scripts/store_refined_in_latent_maps.py"
        save_tensors(tensors, meta, f)
        print(f"{path}: stored {tuple(tensors['refined'].shape)} refined latents beside the coordinates")


if __name__ == "__main__":
    main(sys.argv[1:])
