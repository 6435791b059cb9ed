"""What every dataset loader returns: a labelled train / test split, and the error that names a bad one."""

from __future__ import annotations

from dataclasses import dataclass

import torch

IMAGE_RANGE = (-1.0, 1.0)  # every image dataset is scaled to this pixel range


class DataError(ValueError):
    """A dataset is missing, malformed or unknown; the message says which file and why."""


@dataclass
class Dataset:
    """A labelled train / test split. ``y_*`` are class indices (all zero for toy sets)."""

    name: str
    x_train: torch.Tensor
    y_train: torch.Tensor
    x_test: torch.Tensor
    y_test: torch.Tensor
    num_classes: int

    @property
    def shape(self) -> tuple[int, ...]:
        return tuple(self.x_train.shape[1:])

    @property
    def is_image(self) -> bool:
        return len(self.shape) == 3
