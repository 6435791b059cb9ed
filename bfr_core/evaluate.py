"""Evaluate a bundle: every method row on the same prior draws, against the held-out test split.

Each row maps to metrics (``fid``, ``kid``, ``precision``, ``recall``, ``density``,
``coverage``, ``memorisation_ratio`` … for images; ``energy``, ``sliced_wasserstein`` for
toy 2-D) plus ``nfe`` (network evaluations per sample, base included), ``extra_nfe``
(refiners only), ``solver`` (what ran, e.g. ``base rk4x20 + lfr rk4x4``) and ``wall_s``.
"""
from __future__ import annotations

import time

from tqdm.auto import tqdm

from .data import load_dataset
from .metrics import image_metrics, image_reference, point_metrics
from .pipeline import Bundle, Pipeline, Settings


def method_rows(bundle: Bundle) -> dict[str, Settings]:
    """The methods a bundle can run, each at its default setting, plus diagnostic variants."""
    rows = {"base": Settings(mode="none")}
    if bundle.has("lfr"):
        rows["lfr"] = Settings(mode="lfr")
        rows["lfr-euler1"] = Settings(mode="lfr", lfr_solver="euler", lfr_nfe=1)
        rows["lfr-euler10"] = Settings(mode="lfr", lfr_solver="euler", lfr_nfe=10)
    if bundle.has("lfr_reflow"):
        rows["lfr-reflow-euler1"] = Settings(mode="lfr", lfr_variant="reflow")
    if bundle.has("dfr"):
        rows["dfr"] = Settings(mode="dfr")
        rows["dfr-euler1"] = Settings(mode="dfr", dfr_solver="euler", dfr_nfe=1)
        rows["dfr-euler10"] = Settings(mode="dfr", dfr_solver="euler", dfr_nfe=10)
    if bundle.has("lfr") and bundle.has("dfr"):
        rows["lfr+dfr"] = Settings(mode="lfr+dfr")
    return rows


def describe(s: Settings, nfe: dict) -> str:
    parts = [f"base {s.base_solver}x{nfe['base']}"]
    if "lfr" in nfe:
        parts.append(f"lfr{'-reflow' if s.lfr_variant == 'reflow' else ''} {s.lfr_solver}x{nfe['lfr']}")
    if "dfr" in nfe:
        parts.append(f"dfr {s.dfr_solver}x{nfe['dfr']}")
    return " + ".join(parts)


TRAIN_REFERENCE = 10_000  # the last training images, whose features ``fid_train`` compares against


def bundle_reference(bundle: Bundle, ds):
    """The test-split reference under the bundle's classifier and, when the bundle has one, its
    independent ``classifier2``. Datasets with more than 2·TRAIN_REFERENCE training images also get
    ``fid_train`` against the last TRAIN_REFERENCE of them (the real-data row uses the first ones)."""
    train_ref = TRAIN_REFERENCE if len(ds.x_train) > 2 * TRAIN_REFERENCE else 0
    return image_reference(bundle.models["classifier"], ds.x_test, ds.x_train, bundle.models.get("classifier2"),
                           train_ref)


def evaluate_bundle(bundle: Bundle, n: int, seed: int, data_dir=None, rows: dict | None = None,
                    progress: bool = True) -> dict:
    """Run each method on ``n`` samples of prior seed ``seed`` and measure it against test."""
    ds = load_dataset(bundle.dataset, data_dir)
    pipe = Pipeline(bundle)
    if ds.is_image and not bundle.has("classifier"):
        raise ValueError(f"{bundle.path}: image metrics need classifier.safetensors; run train-classifier")
    z = pipe.prior(n, seed)
    t0 = time.perf_counter()
    base = pipe.run(n, seed, Settings(mode="none"), z=z).base  # shared by rows at the default base settings
    base_wall = time.perf_counter() - t0
    ref = bundle_reference(bundle, ds) if ds.is_image else None
    results = {}
    for name, settings in tqdm((rows or method_rows(bundle)).items(), desc="evaluate", disable=not progress):
        shared = settings.base_solver is None and settings.base_nfe is None
        t0 = time.perf_counter()
        st = pipe.run(n, seed, settings, z=z, base=base if shared else None)
        wall = time.perf_counter() - t0 + (base_wall if shared else 0.0)  # time to produce these samples
        if ds.is_image:
            m = image_metrics(ref, st.final, st.labels)
        else:
            m = point_metrics(st.final, ds.x_test, ds.x_train)
        extra = sum(v for k, v in st.nfe.items() if k != "base")
        results[name] = {**m, "nfe": st.nfe["base"] + extra, "extra_nfe": extra,
                         "solver": describe(st.settings, st.nfe), "wall_s": round(wall, 3)}
    real = ds.x_train[:n]
    floor = (image_metrics(ref, real, ds.y_train[:n])
             if ds.is_image else point_metrics(real, ds.x_test, ds.x_train))
    results["reference-train"] = {**floor, "nfe": 0, "extra_nfe": 0, "solver": "real training images", "wall_s": 0.0}
    return results
