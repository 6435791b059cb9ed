import numpy as np
import pytest
import torch

from bfr_core.eval.metrics import (
    density_coverage,
    energy_distance,
    fid,
    kid,
    knn_radii,
    latent_bias,
    manifold_metrics,
    memorisation_ratio,
    precision_recall,
    sliced_wasserstein,
)


def test_fid_one_dimensional_closed_form():
    g = torch.Generator().manual_seed(0)
    a, b = torch.randn(500, 1, generator=g), 2 + 3 * torch.randn(400, 1, generator=g)
    sa, sb = np.std(a.numpy(), ddof=1), np.std(b.numpy(), ddof=1)
    expected = (a.mean() - b.mean()).item() ** 2 + (sa - sb) ** 2
    assert fid(a, b) == pytest.approx(expected, rel=1e-6)


def test_fid_of_identical_sets_is_zero():
    x = torch.randn(300, 8)
    assert fid(x, x) == pytest.approx(0, abs=1e-6)


@pytest.mark.parametrize("n", [400, 12], ids=["full-rank", "fewer-samples-than-dimensions"])
def test_fid_trace_term_equals_the_matrix_square_root_of_the_product(n):
    """tr((Σ_r Σ_f)^½) by two symmetric eigendecompositions = by scipy.s sqrtm, for non-commuting Σ."""
    from scipy import linalg

    from bfr_core.eval.frechet import frechet_distance, gaussian_stats

    g = torch.Generator().manual_seed(1)
    mix = torch.randn(20, 20, generator=g, dtype=torch.float64)
    a = torch.randn(n, 20, generator=g, dtype=torch.float64) @ mix
    b = torch.randn(n, 20, generator=g, dtype=torch.float64) * torch.linspace(0.2, 3, 20, dtype=torch.float64)
    (mu_a, cov_a), (mu_b, cov_b) = gaussian_stats(a), gaussian_stats(b)
    root = linalg.sqrtm(cov_a @ cov_b).real
    want = ((mu_a - mu_b) ** 2).sum() + np.trace(cov_a) + np.trace(cov_b) - 2 * np.trace(root)
    assert frechet_distance(mu_a, cov_a, mu_b, cov_b) == pytest.approx(want, rel=1e-6)


def test_kid_equals_the_unbiased_mmd_formula():
    g = torch.Generator().manual_seed(0)
    x, y = torch.randn(5, 2, generator=g).double(), torch.randn(5, 2, generator=g).double() + 0.5
    k = lambda a, b: (a @ b.T / 2 + 1) ** 3  # noqa: E731
    m = 5
    off = lambda K: (K.sum() - K.diag().sum()) / (m * (m - 1))  # noqa: E731
    expected = off(k(x, x)) + off(k(y, y)) - 2 * k(x, y).mean()
    assert kid(x, y, subsets=1, subset_size=5) == pytest.approx(expected.item(), rel=1e-9)


def test_kid_separates_distributions():
    g = torch.Generator().manual_seed(1)
    a, b = torch.randn(600, 8, generator=g), torch.randn(600, 8, generator=g)
    assert abs(kid(a, b)) < 0.02
    assert kid(a, b + 1) > 0.2


def test_precision_recall_density_coverage():
    x = torch.randn(200, 4)
    assert precision_recall(x, x) == (1.0, 1.0)
    density, coverage = density_coverage(x, x)
    assert coverage == 1.0 and density >= 1.0
    far = x + 100
    assert precision_recall(x, far) == (0.0, 0.0)
    assert density_coverage(x, far) == (0.0, 0.0)


def test_point_cloud_distances():
    x = torch.randn(500, 1, dtype=torch.float64)
    assert energy_distance(x, x) == pytest.approx(0, abs=1e-9)
    assert sliced_wasserstein(x, x + 0.7) == pytest.approx(0.7, abs=1e-9)  # 1-D: every direction is ±1
    assert energy_distance(x, x + 1) > 0.1


def test_memorisation_ratio_flags_copies():
    train, test = torch.randn(300, 16), torch.randn(100, 16)
    assert memorisation_ratio(train[:50], train, test) == 0.0
    assert memorisation_ratio(torch.randn(100, 16), train, test) == pytest.approx(1.0, abs=0.15)


def test_latent_bias_of_prior_and_shrunk_latents():
    prior = latent_bias(torch.randn(4000, 16))
    assert prior["var_mean"] == pytest.approx(1, abs=0.05) and prior["mean_abs"] < 0.05
    shrunk = latent_bias(0.5 * torch.randn(4000, 16) + 0.3)
    assert shrunk["var_mean"] == pytest.approx(0.25, abs=0.02) and shrunk["mean_abs"] == pytest.approx(
        0.3, abs=0.02
    )
    assert shrunk["energy_to_prior"] > 10 * prior["energy_to_prior"]


def test_manifold_metrics_match_their_definitions():
    """Brute force, from Kynkäänniemi et al. (precision/recall) and Naeem et al. (density/coverage)."""
    g = torch.Generator().manual_seed(3)
    real, fake, k = torch.randn(40, 3, generator=g), torch.randn(30, 3, generator=g) + 0.5, 3

    def radius(p, cloud):  # distance to the k-th nearest other point
        return sorted(float((p - q).norm()) for q in cloud)[k]

    r_real = [radius(p, real) for p in real]
    r_fake = [radius(p, fake) for p in fake]
    inside = [[float((f - r).norm()) <= rr for r, rr in zip(real, r_real)] for f in fake]
    expected = {
        "precision": sum(any(row) for row in inside) / len(fake),
        "recall": sum(any(float((r - f).norm()) <= rf for f, rf in zip(fake, r_fake)) for r in real)
        / len(real),
        "density": sum(map(sum, inside)) / (k * len(fake)),
        "coverage": sum(min(float((f - r).norm()) for f in fake) <= rr for r, rr in zip(real, r_real))
        / len(real),
    }
    got = manifold_metrics(real, fake, k)
    assert got == pytest.approx(expected, abs=1e-6)
    assert manifold_metrics(real, fake, k, real_radii=knn_radii(real, k)) == got


def test_second_extractor_and_train_reference_are_scored_with_the_same_formulas():
    from bfr_core.eval.metrics import features_and_probs, image_metrics, image_reference
    from bfr_core.generative.nets import build_net, default_classifier_config

    g = torch.Generator().manual_seed(0)
    nets = [
        build_net(default_classifier_config((1, 8, 8), 10, arch), torch.Generator().manual_seed(i))
        for i, arch in enumerate(("cnn", "mlp"))
    ]
    test, train, fake = (torch.rand(n, 1, 8, 8, generator=g) * 2 - 1 for n in (120, 300, 100))
    ref = image_reference(nets[0], test, train, second=nets[1], train_reference=150)
    m = image_metrics(ref, fake, None)
    f2_test, f2_fake = features_and_probs(nets[1], test)[0], features_and_probs(nets[1], fake)[0]
    assert m["fid2"] == pytest.approx(fid(f2_test, f2_fake)) and m["kid2"] == pytest.approx(
        kid(f2_test, f2_fake)
    )
    f_train, f_fake = features_and_probs(nets[0], train[-150:])[0], features_and_probs(nets[0], fake)[0]
    assert m["fid_train"] == pytest.approx(fid(f_train, f_fake))
    assert "fid2" not in image_metrics(image_reference(nets[0], test, train), fake, None)
