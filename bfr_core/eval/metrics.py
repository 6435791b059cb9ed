"""Sample-quality metrics on classifier features, point-cloud distances, and latent bias.

All functions take feature matrices (N, D) as torch tensors unless stated otherwise.
- FID  = ‖μ_r − μ_g‖² + Tr(Σ_r + Σ_g − 2(Σ_r Σ_g)^½)
- KID  = unbiased MMD² with the kernel k(a, b) = (aᵀb / D + 1)³, averaged over subsets
- precision / recall (Kynkäänniemi et al. 2019) with k-NN balls, k = 5
- density / coverage (Naeem et al. 2020), k = 5
- energy distance = 2E‖X − Y‖ − E‖X − X'‖ − E‖Y − Y'‖ (V-statistic)
- sliced Wasserstein-2 over random unit directions
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from bfr_core.eval.frechet import fid
from bfr_core.eval.inception import inception_features

K_NEAREST = 5


def kid(
    real: torch.Tensor, fake: torch.Tensor, subsets: int = 20, subset_size: int = 300, seed: int = 0
) -> float:
    g = torch.Generator().manual_seed(seed)
    m = min(subset_size, len(real), len(fake))
    d = real.shape[1]
    total = 0.0
    for _ in range(subsets):
        x = real[torch.randperm(len(real), generator=g)[:m]].double()
        y = fake[torch.randperm(len(fake), generator=g)[:m]].double()
        kxx, kyy, kxy = ((a @ b.T / d + 1) ** 3 for a, b in ((x, x), (y, y), (x, y)))
        off = 1 - torch.eye(m, dtype=torch.float64)
        total += ((kxx * off).sum() + (kyy * off).sum()) / (m * (m - 1)) - 2 * kxy.mean()
    return float(total / subsets)


def knn_radii(x: torch.Tensor, k: int = K_NEAREST) -> torch.Tensor:
    """Distance from each row to its k-th nearest other row."""
    d = torch.cdist(x, x)
    return d.kthvalue(k + 1, dim=1).values  # +1 skips the zero self-distance


def manifold_metrics(real, fake, k: int = K_NEAREST, real_radii: torch.Tensor | None = None) -> dict:
    """Precision, recall, density and coverage from one (fake × real) distance matrix.

    precision = share of fakes inside some real k-NN ball; recall = share of reals inside some
    fake k-NN ball; density = Σ_fakes #(real balls containing it) / (k·F); coverage = share of
    real balls holding at least one fake. ``real_radii`` may pass knn_radii(real, k) computed once.
    """
    r_real = knn_radii(real, k) if real_radii is None else real_radii
    r_fake = knn_radii(fake, k)
    d = torch.cdist(fake, real)  # (F, R)
    inside = d <= r_real[None]
    return {
        "precision": inside.any(1).float().mean().item(),
        "recall": (d.T <= r_fake[None]).any(1).float().mean().item(),
        "density": inside.sum().item() / (k * len(fake)),
        "coverage": (d.min(0).values <= r_real).float().mean().item(),
    }


def precision_recall(real, fake, k: int = K_NEAREST) -> tuple[float, float]:
    m = manifold_metrics(real, fake, k)
    return m["precision"], m["recall"]


def density_coverage(real, fake, k: int = K_NEAREST) -> tuple[float, float]:
    m = manifold_metrics(real, fake, k)
    return m["density"], m["coverage"]


def nearest_distance(queries: torch.Tensor, pool: torch.Tensor, batch: int = 2048) -> torch.Tensor:
    """Euclidean distance from each query row to its nearest pool row (flattened)."""
    q, p = queries.flatten(1).float(), pool.flatten(1).float()
    return torch.cat([torch.cdist(q[i : i + batch], p).min(1).values for i in range(0, len(q), batch)])


def memorisation_ratio(samples, train, test) -> float:
    """median NN distance (samples → train) / median NN distance (test → train).

    ≈ 1 means samples sit as far from the training set as unseen real data; ≪ 1 means copying.
    """
    return float(nearest_distance(samples, train).median() / nearest_distance(test, train).median())


def within_class_spread(x: torch.Tensor, labels: torch.Tensor | None = None) -> float | None:
    """Diversity of one batch: the mean Euclidean distance ‖x_i − x_j‖ over pairs i ≠ j of the same class
    (every pair when ``labels`` is None); None when no such pair exists. A collapse onto class means
    (one Euler step of an LFR) halves it on MNIST while the images look cleaner."""
    flat = x.flatten(1).double()
    pairs = ~torch.eye(len(flat), dtype=torch.bool)
    if labels is not None:
        pairs &= labels[:, None] == labels[None, :]
    if not pairs.any():
        return None
    return float(torch.cdist(flat, flat)[pairs].mean())


def energy_distance(x: torch.Tensor, y: torch.Tensor) -> float:
    x, y = x.flatten(1).double(), y.flatten(1).double()
    return float(2 * torch.cdist(x, y).mean() - torch.cdist(x, x).mean() - torch.cdist(y, y).mean())


def sliced_wasserstein(x: torch.Tensor, y: torch.Tensor, projections: int = 256, seed: int = 0) -> float:
    """SW₂ between equal-size clouds: √ mean over directions θ of mean (sort(xθ) − sort(yθ))²."""
    x, y = x.flatten(1).double(), y.flatten(1).double()
    n = min(len(x), len(y))
    g = torch.Generator().manual_seed(seed)
    theta = torch.randn(x.shape[1], projections, generator=g, dtype=torch.float64)
    theta = theta / theta.norm(dim=0, keepdim=True)
    px = (x[torch.randperm(len(x), generator=g)[:n]] @ theta).sort(0).values
    py = (y[torch.randperm(len(y), generator=g)[:n]] @ theta).sort(0).values
    return float(((px - py) ** 2).mean().sqrt())


def latent_bias(z: torch.Tensor, seed: int = 0, max_points: int = 2000) -> dict:
    """How far latents depart from N(0, I): moments and a two-sample distance to prior draws."""
    z = z.flatten(1).double()
    g = torch.Generator().manual_seed(seed)
    prior = torch.randn(z.shape, generator=g, dtype=torch.float64)
    zs = z[:max_points]
    return {
        "mean_abs": float(z.mean(0).abs().mean()),  # per-dimension |mean|, averaged; 0 for N(0,I)
        "var_mean": float(z.var(0).mean()),  # per-dimension variance, averaged; 1 for N(0,I)
        "norm2_per_dim": float((z**2).sum(1).mean() / z.shape[1]),  # 1 for N(0,I)
        "energy_to_prior": energy_distance(zs, prior[: len(zs)]),
        "energy_prior_to_prior": energy_distance(
            prior[: len(zs)], torch.randn(zs.shape, generator=g, dtype=torch.float64)
        ),
    }


@dataclass
class ImageReference:
    """What every comparison against one test split shares, computed once.

    ``second`` is an independent feature extractor (the bundle's ``classifier2``) with its test
    features: ``fid2``/``kid2`` are measured there. ``train_features`` are the main extractor's
    features of training images: ``fid_train`` is FID against them (the paper's reference set).
    """

    classifier: torch.nn.Module
    train_x: torch.Tensor | None  # training images (memorisation ratio); None from a shipped reference
    test_features: torch.Tensor
    test_to_train_median: float  # median nearest-training-image distance of the test images
    test_radii: torch.Tensor | None = None  # knn_radii of the test features, computed once
    second: torch.nn.Module | None = None
    second_test_features: torch.Tensor | None = None
    train_features: torch.Tensor | None = None
    inception: torch.nn.Module | None = (
        None  # the optional FID Inception network (``bfr_core.eval.inception``)
    )
    inception_test_features: torch.Tensor | None = None


@torch.no_grad()
def features_and_probs(classifier, x, batch: int = 1000):
    fs, ps = [], []
    for i in range(0, len(x), batch):
        f = classifier.features(x[i : i + batch])
        fs.append(f)
        ps.append(torch.softmax(classifier.head(f), 1))
    return torch.cat(fs).double(), torch.cat(ps)


def image_reference(classifier, test_x, train_x, second=None, train_reference: int = 0) -> ImageReference:
    """Reference statistics of the test split; ``train_reference`` > 0 also keeps the features of
    the last that many training images (for ``fid_train``)."""
    features = features_and_probs(classifier, test_x)[0]
    return ImageReference(
        classifier,
        train_x,
        features,
        float(nearest_distance(test_x, train_x).median()),
        knn_radii(features.float()),
        second,
        None if second is None else features_and_probs(second, test_x)[0],
        features_and_probs(classifier, train_x[-train_reference:])[0] if train_reference else None,
    )


@torch.no_grad()
def image_metrics(ref: ImageReference, samples, labels) -> dict:
    """Everything the evaluate command reports for a batch of generated images.

    Args:
        ref: the test split's features under the bundle's classifier (and the independent extractor),
            from the dataset or the bundle's shipped ``reference.safetensors``.
        samples: generated images N×C×H×W in [-1, 1]; labels: the classes they were drawn for, or None.

    Returns:
        {"fid", "kid", "precision", "recall", "density", "coverage", "confidence", "class_histogram"},
        plus "accuracy" (with labels), "memorisation_ratio" (with the training images on disk) and
        "fid2" / "kid2" (with the independent extractor), "fid_inception" (with Inception weights).
        FID = ‖μ_r − μ_g‖² + Tr(Σ_r + Σ_g − 2(Σ_rΣ_g)^½).
    """
    f_test = ref.test_features
    f_gen, probs = features_and_probs(ref.classifier, samples)
    pred = probs.argmax(1)
    out = {
        "fid": fid(f_test, f_gen),
        "kid": kid(f_test, f_gen),
        **manifold_metrics(f_test.float(), f_gen.float(), real_radii=ref.test_radii),
        "confidence": float(probs.max(1).values.mean()),
        "class_histogram": torch.bincount(pred, minlength=probs.shape[1]).tolist(),
    }
    if labels is not None:
        out["accuracy"] = float((pred == labels).float().mean())
    if ref.train_x is not None:  # absent when scoring from a shipped reference (no training images)
        out["memorisation_ratio"] = (
            float(nearest_distance(samples, ref.train_x).median()) / ref.test_to_train_median
        )
    if ref.second is not None:
        f2 = features_and_probs(ref.second, samples)[0]
        out["fid2"], out["kid2"] = fid(ref.second_test_features, f2), kid(ref.second_test_features, f2)
    if ref.train_features is not None:
        out["fid_train"] = fid(ref.train_features, f_gen)
    if ref.inception is not None:  # the FID papers quote: 2,048 Inception pool features
        out["fid_inception"] = fid(ref.inception_test_features, inception_features(ref.inception, samples))
    return out


def point_metrics(samples, test_x, train_x) -> dict:
    """Toy 2-D: distances between point clouds plus the memorisation ratio."""
    n = min(len(samples), len(test_x), 4000)
    return {
        "energy": energy_distance(samples[:n], test_x[:n]),
        "sliced_wasserstein": sliced_wasserstein(samples, test_x),
        "memorisation_ratio": memorisation_ratio(samples[:n], train_x, test_x[:n]),
    }
