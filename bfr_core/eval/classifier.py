"""Training the metric classifier: cross-entropy on noisy, shifted copies of the training images.

The regularisation (additive N(0, noise²) and a random shift of up to ``max_shift`` pixels
per batch) keeps the classifier from over-fitting its training images; otherwise their
features differ from those of unseen images and the train-vs-test FID floor is meaningless.
"""

from __future__ import annotations

import torch

from bfr_core.infra import distributed


def classifier_loss(x_train, y_train, batch_size: int, noise: float = 0.3, max_shift: int = 1):
    """Return ``loss_fn(model, generator, step)`` for :func:`bfr_core.generative.train.fit`."""

    def loss_fn(model, g, step):
        idx = torch.randint(0, len(x_train), (batch_size,), generator=g)
        x = x_train[idx]
        if max_shift and x.dim() == 4:
            dx, dy = torch.randint(-max_shift, max_shift + 1, (2,), generator=g).tolist()
            x = torch.roll(x, (dx, dy), (2, 3))
        x = x + noise * torch.randn(x.shape, generator=g)
        rows = distributed.shard(batch_size)  # this rank's part of the global batch
        return torch.nn.functional.cross_entropy(model(x[rows]), y_train[idx][rows])

    return loss_fn


@torch.no_grad()
def accuracy(model, x, y, batch: int = 2000) -> float:
    pred = torch.cat([model(x[i : i + batch]).argmax(1) for i in range(0, len(x), batch)])
    return float((pred == y).float().mean())


@torch.no_grad()
def batch_summary(model, x: torch.Tensor, labels: torch.Tensor | None) -> dict:
    """Quick metrics for a handful of images: mean confidence, accuracy vs requested labels, histogram."""
    probs = torch.softmax(model(x), 1)
    pred = probs.argmax(1)
    out = {
        "confidence": float(probs.max(1).values.mean()),
        "histogram": torch.bincount(pred, minlength=probs.shape[1]).tolist(),
    }
    if labels is not None:
        out["accuracy"] = float((pred == labels).float().mean())
    return out
