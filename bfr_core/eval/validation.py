"""Scores for choosing, never for reporting: FID against held-out *training* images.

A setting or a file chosen by these scores does not tune a reported number, because reported numbers are
taken on the test split. ``split="test"`` exists only to check a choice already made.
"""

from __future__ import annotations

from bfr_core.bundle import Bundle
from bfr_core.eval.metrics import features_and_probs, fid
from bfr_core.infra.data import load_dataset

VALIDATION = 10_000  # the last training images


def validation_scorer(bundle: Bundle, split: str = "validation", data_dir=None):
    """``score(x) -> {"fid": …, "fid2": …}``: FID under each feature extractor the bundle has (classifier,
    and the independent classifier2), against the last VALIDATION *training* images (``split="test"``: the
    test split, only to check a choice already made on the training images); ``score.metrics`` names them."""
    if split not in ("validation", "test"):
        raise ValueError(f"split must be 'validation' or 'test', got {split!r}")
    ds = load_dataset(bundle.dataset, data_dir)
    images = ds.x_train[-VALIDATION:] if split == "validation" else ds.x_test
    extractors = {
        m: bundle.models[n] for m, n in (("fid", "classifier"), ("fid2", "classifier2")) if bundle.has(n)
    }
    refs = {m: features_and_probs(net, images)[0] for m, net in extractors.items()}

    def one(m: str, x) -> float:
        return fid(refs[m], features_and_probs(extractors[m], x)[0])

    def score(x) -> dict:
        return {m: one(m, x) for m in extractors}

    score.metrics, score.one = tuple(extractors), one
    score.reference = (
        f"last {len(images)} training images" if split == "validation" else f"{len(images)} test images"
    )
    return score
