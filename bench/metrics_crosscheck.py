"""Does torchmetrics' FID give our FID on the bundle's own features? (The adopt-or-not question.)

    pip install torchmetrics && python -m bench.metrics_crosscheck --bundle checkpoints/mnist --n 2000

Scores the first n training images against the first n test images with ``bfr_core.eval.metrics.fid`` on
the bundle classifier's features, and with ``torchmetrics.image.fid.FrechetInceptionDistance`` given
the same feature network; reports both values, their relative difference and wall times.
Writes bench/results/metrics_crosscheck.json.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import torch

from bfr_core.infra.data import load_dataset
from bfr_core.eval.metrics import features_and_probs, fid
from bfr_core.bundle import Bundle

ROOT = Path(__file__).resolve().parent.parent


class Features(torch.nn.Module):
    """The bundle classifier's penultimate features, as torchmetrics calls a feature network."""

    def __init__(self, classifier):
        super().__init__()
        self.classifier = classifier

    def forward(self, x):
        return self.classifier.features(x.float())


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--bundle", type=Path, required=True)
    ap.add_argument("--n", type=int, default=2000)
    args = ap.parse_args(argv)
    import torchmetrics
    from torchmetrics.image.fid import FrechetInceptionDistance

    bundle = Bundle(args.bundle)
    ds = load_dataset(bundle.dataset)
    real, other = ds.x_test[: args.n], ds.x_train[: args.n]
    clf = bundle.models["classifier"]
    t0 = time.perf_counter()
    ours = fid(features_and_probs(clf, real)[0], features_and_probs(clf, other)[0])
    ours_s = time.perf_counter() - t0
    metric = FrechetInceptionDistance(feature=Features(clf), input_img_size=bundle.shape, normalize=True)
    t0 = time.perf_counter()
    metric.update(real, real=True)
    metric.update(other, real=False)
    theirs = float(metric.compute())
    theirs_s = time.perf_counter() - t0
    out = {
        "command": f"python -m bench.metrics_crosscheck --bundle {args.bundle} --n {args.n}",
        "torchmetrics": torchmetrics.__version__,
        "fid_ours": ours,
        "fid_torchmetrics": theirs,
        "relative_difference": abs(ours - theirs) / ours,
        "wall_s_ours": round(ours_s, 2),
        "wall_s_torchmetrics": round(theirs_s, 2),
    }
    dest = ROOT / "bench" / "results" / "metrics_crosscheck.json"
    dest.write_text(json.dumps(out, indent=1) + "\n")
    print(json.dumps(out, indent=1))


if __name__ == "__main__":
    main()
