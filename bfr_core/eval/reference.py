"""Reference statistics shipped inside a bundle, so that scoring needs no dataset on disk.

``reference.safetensors`` holds, for the held-out test split, the features of each of the bundle's
feature extractors (``features`` for ``classifier``, ``features2`` for ``classifier2``), the
training-image features behind ``fid_train`` (``train_features``, the last TRAIN_REFERENCE
training images) and the test labels; its metadata records the median distance from a test image
to its nearest training image (the memorisation ratio's denominator). Features are stored as float16
(FID moves by < 10⁻³ on MNIST) and recomputed exactly when the dataset is present.

With the dataset on disk the metrics are the same, plus the memorisation ratio, which needs the
training images themselves.
"""

from __future__ import annotations

import torch

from bfr_core.infra.checkpoint import CheckpointError, load_tensors, save_tensors
from bfr_core.eval.metrics import ImageReference, image_reference, knn_radii

TRAIN_REFERENCE = 10_000  # the last training images, whose features ``fid_train`` compares against
FILE = "reference.safetensors"


def train_reference_size(n_train: int) -> int:
    """Datasets with more than 2·TRAIN_REFERENCE training images get ``fid_train``; small ones do not."""
    return TRAIN_REFERENCE if n_train > 2 * TRAIN_REFERENCE else 0


def reference_from_data(bundle, ds) -> ImageReference:
    """The test-split reference computed from the dataset (also the memorisation ratio's training images)."""
    return image_reference(
        bundle.models["classifier"],
        ds.x_test,
        ds.x_train,
        bundle.models.get("classifier2"),
        train_reference_size(len(ds.x_train)),
    )


def save_reference(ref: ImageReference, labels: torch.Tensor, meta: dict, path) -> None:
    tensors = {"features": ref.test_features.half(), "labels": labels}
    if ref.second_test_features is not None:
        tensors["features2"] = ref.second_test_features.half()
    if ref.train_features is not None:
        tensors["train_features"] = ref.train_features.half()
    save_tensors(
        tensors, {**meta, "role": "reference", "test_to_train_median": ref.test_to_train_median}, path
    )


def load_reference(bundle, path) -> ImageReference:
    """An ImageReference from the bundle's extractors and the shipped features (no training images, so no
    memorisation ratio). Raises CheckpointError when the file does not match the bundle's extractors."""
    tensors, meta = load_tensors(path)
    feats = tensors.get("features")
    if feats is None or feats.dim() != 2 or "test_to_train_median" not in meta:
        raise CheckpointError(f"{path}: needs 'features' (N, D) and a test_to_train_median entry")
    extractors = {"features": "classifier", "features2": "classifier2", "train_features": "classifier"}
    for key, name in extractors.items():
        if key in tensors and name not in bundle.models:
            raise CheckpointError(f"{path}: holds {key} but the bundle has no {name}.safetensors")
        if key in tensors:
            width = bundle.models[name].head.in_features
            if tensors[key].dim() != 2 or tensors[key].shape[1] != width:
                raise CheckpointError(
                    f"{path}: {key} has shape {tuple(tensors[key].shape)}, {name} gives {width} features"
                )
    second = bundle.models.get("classifier2") if "features2" in tensors else None
    f = feats.double()
    return ImageReference(
        bundle.models["classifier"],
        None,
        f,
        float(meta["test_to_train_median"]),
        knn_radii(f.float()),
        second,
        tensors["features2"].double() if second is not None else None,
        tensors["train_features"].double() if "train_features" in tensors else None,
    )
