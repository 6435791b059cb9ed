"""Evaluate a bundle: every method row on the same prior draws, against the held-out test split.

Each row maps to metrics (``fid``, ``kid``, ``precision``, ``recall``, ``density``,
``coverage``, ``memorisation_ratio`` … for images; ``energy``, ``sliced_wasserstein`` for
toy 2-D) plus ``nfe`` (network evaluations per sample, base included), ``extra_nfe``
(refiners only), ``solver`` (what ran, e.g. ``base rk4x20 + lfr rk4x4``) and ``wall_s``.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from tqdm.auto import tqdm

from bfr_core.infra.data import load_dataset
from bfr_core.infra.dataset import DataError, Dataset
from bfr_core.eval.metrics import ImageReference, image_metrics, point_metrics
from bfr_core.bundle import Bundle
from bfr_core.pipeline import Pipeline, Settings, refiner_settings
from bfr_core.eval.reference import load_reference, reference_from_data
from bfr_core.eval.runner import run_rows
from bfr_core.refiners import REFINERS


def method_rows(bundle: Bundle) -> dict[str, Settings]:
    """The methods a bundle can run: the base, each refiner it holds at the rows its registry entry
    lists (its default setting and diagnostic solver variants), and LFR followed by DFR."""
    rows = {"base": Settings(mode="none")}
    for r in REFINERS.values():
        if bundle.has(r.name):
            for name, solver, nfe in r.rows:
                rows[name] = refiner_settings(r, solver, nfe)
    if bundle.has("lfr") and bundle.has("dfr"):
        rows["lfr+dfr"] = Settings(mode="lfr+dfr")
    return rows


def describe(s: Settings, nfe: dict) -> str:
    """What ran, e.g. ``base rk4x20 + lfr-reflow eulerx1 + dfr rk4x4``."""
    parts = [f"base {s.base_solver}x{nfe['base']}"]
    for r in s.refiners():
        parts.append(f"{r.name.replace('_', '-')} {s.solver(r.stage)[0]}x{nfe[r.stage]}")
    return " + ".join(parts)


@dataclass
class Scorer:
    """Scores a batch of one bundle's samples: image metrics against ``ref``, or point-cloud distances
    against the toy set ``ds``. ``ds`` is None when a bundle is scored from its shipped reference."""

    ref: ImageReference | None
    ds: Dataset | None

    @property
    def primary(self) -> str:
        return "fid" if self.ref is not None else "energy"

    def __call__(self, x: torch.Tensor, labels) -> dict:
        if self.ref is not None:
            return image_metrics(self.ref, x, labels)
        return point_metrics(x, self.ds.x_test, self.ds.x_train)


def scorer_for(bundle: Bundle, data_dir=None) -> Scorer:
    """From the dataset when it is on disk (exact features, plus the memorisation ratio); otherwise from
    the bundle's shipped ``reference.safetensors``; otherwise the DataError naming the missing files."""
    try:
        ds = load_dataset(bundle.dataset, data_dir)
    except DataError:
        path = bundle.file("reference")
        if path is None or not bundle.has("classifier"):
            raise
        return Scorer(load_reference(bundle, path), None)
    if not ds.is_image:
        return Scorer(None, ds)
    if not bundle.has("classifier"):
        raise ValueError(f"{bundle.path}: image metrics need classifier.safetensors; run train-classifier")
    return Scorer(reference_from_data(bundle, ds), ds)


def add_inception(score: Scorer, weights=None, n_reference: int = 10_000, device: str = "cpu") -> Scorer:
    """Give ``score`` the ``fid_inception`` metric: FID on the FID Inception network's 2,048 pool features,
    against the first ``n_reference`` test images. Needs the dataset's images on disk and local weights
    (``bfr_core.eval.inception``: never downloaded); a clear error otherwise."""
    from bfr_core.eval.inception import inception_features, load_inception

    if score.ref is None or score.ds is None:
        raise ValueError("Inception-FID needs the dataset's test images on disk (--data-dir or BFR_DATA_DIR)")
    net = load_inception(weights, device)
    score.ref.inception = net
    score.ref.inception_test_features = inception_features(net, score.ds.x_test[:n_reference])
    return score


def evaluate_bundle(
    bundle: Bundle,
    n: int,
    seed: int,
    data_dir=None,
    rows: dict | None = None,
    progress: bool = True,
    samples: dict | None = None,
    inception: dict | None = None,
) -> dict:
    """Run each method on ``n`` samples of prior seed ``seed`` and measure it against test.

    ``samples``, when given, receives each row's samples and labels (to rescore them later);
    ``inception``, when given, is ``add_inception``'s keyword arguments (adds ``fid_inception``)."""
    score = scorer_for(bundle, data_dir)
    if inception is not None:
        score = add_inception(score, **inception)
    rows = rows or method_rows(bundle)
    results = {}
    runs = run_rows(Pipeline(bundle), rows, n, seed)
    for name, run in tqdm(runs, total=len(rows), desc="evaluate", disable=not progress):
        if samples is not None:
            samples[name] = (run.x, run.labels)
        results[name] = {
            **score(run.x, run.labels),
            "nfe": run.nfe["base"] + run.extra_nfe,
            "extra_nfe": run.extra_nfe,
            "solver": describe(run.settings, run.nfe),
            "wall_s": run.wall_s,
        }
    if score.ds is not None:  # the floor: real training images, scored like samples
        floor = score(score.ds.x_train[:n], score.ds.y_train[:n])
        if samples is not None:
            samples["reference-train"] = (score.ds.x_train[:n], score.ds.y_train[:n])
        results["reference-train"] = {
            **floor,
            "nfe": 0,
            "extra_nfe": 0,
            "solver": "real training images",
            "wall_s": 0.0,
        }
    return results
