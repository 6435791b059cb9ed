import pytest
import torch

from bfr_core.refiners.dfr import Augment, dfr_batches, gaussian_blur
from bfr_core.refiners.lfr import alpha_mix, lfr_batches


@pytest.mark.parametrize("alpha", [0.1, 0.5, 1.0])
def test_alpha_mix_moments(alpha):
    n, c = 400_000, 2.0
    z1, a = alpha_mix(torch.full((n, 1), c, dtype=torch.float64), alpha, torch.Generator().manual_seed(0))
    e_sqrt = 2 / (3 * alpha) * (1 - (1 - alpha) ** 1.5)  # E√(1−a), a ~ U(0, α)
    mean = c * e_sqrt
    var = c**2 * (1 - alpha / 2 - e_sqrt**2) + alpha / 2  # Var = c²Var√(1−a) + E[a]
    assert z1.mean().item() == pytest.approx(mean, abs=4e-3)
    assert z1.var().item() == pytest.approx(var, rel=1e-2)
    assert 0 <= a.min() and a.max() <= alpha


def test_alpha_zero_is_identity_and_range_checked():
    z = torch.randn(10, 3)
    assert torch.equal(alpha_mix(z, 0.0, torch.Generator())[0], z)
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        alpha_mix(z, 1.5, torch.Generator())


def test_per_sample_alpha():
    z = torch.zeros(3, 1000, dtype=torch.float64)
    z1, a = alpha_mix(z, torch.tensor([0.0, 0.0, 1.0], dtype=torch.float64), torch.Generator().manual_seed(1))
    assert torch.equal(z1[:2], z[:2]) and a[2] > 0
    assert z1[2].var().item() == pytest.approx(a[2].item(), rel=0.15)


def test_blur_tiny_sigma_is_identity_and_constants_are_kept():
    x = torch.randn(3, 1, 8, 8)
    assert torch.allclose(gaussian_blur(x, torch.full((3,), 0.01), 5), x)
    const = torch.full((2, 1, 8, 8), 0.3)
    assert torch.allclose(gaussian_blur(const, torch.tensor([1.0, 3.0]), 5), const)


def test_blur_matches_separable_kernel_in_the_interior():
    x = torch.zeros(1, 1, 9, 9)
    x[0, 0, 4, 4] = 1.0
    k = torch.exp(-(torch.arange(-2, 3.0) ** 2) / 2)
    k = k / k.sum()
    out = gaussian_blur(x, torch.tensor([1.0]), 5)
    assert torch.allclose(out[0, 0, 2:7, 2:7], k[:, None] * k[None, :], atol=1e-6)


def test_augment_probabilities():
    x = torch.zeros(20000, 1, 4, 4)
    out = Augment(noise_p=0.3, noise_std=0.5, blur_p=0.0)(x, torch.Generator().manual_seed(0))
    touched = (out.flatten(1).abs().sum(1) > 0).float().mean().item()
    assert touched == pytest.approx(0.3, abs=0.02)
    with pytest.raises(ValueError, match="noise_p"):
        Augment(noise_p=1.5)


def test_dfr_batches_pair_same_class():
    pool_x = torch.arange(6.0)[:, None] + 100 * torch.tensor([0, 1, 2, 0, 1, 2.0])[:, None]
    pool_y = torch.tensor([0, 1, 2, 0, 1, 2])
    x_train = torch.tensor([[0.0], [1.0], [2.0]])
    y_train = torch.tensor([0, 1, 2])
    draw = dfr_batches(pool_x, pool_y, x_train, y_train, True, Augment(blur_p=0.0))
    b = draw(torch.Generator().manual_seed(0), 64)
    assert torch.equal((b.x0[:, 0] // 100).long(), b.y)


def test_lfr_batches_alpha_input_range():
    z_b = torch.randn(50, 4)
    draw = lfr_batches(z_b, torch.zeros(50, dtype=torch.long), False, alpha_max=0.4)
    b = draw(torch.Generator().manual_seed(0), 256)
    assert b.cond.shape == (256, 1) and 0 <= b.cond.min() and b.cond.max() <= 0.4
    with pytest.raises(ValueError, match="exactly one"):
        lfr_batches(z_b, None, False, alpha=0.1, alpha_max=0.4)


def test_leaky_base_source_matches_the_formula():
    from bfr_core.generative.flow import base_batches

    x = torch.linspace(-1, 1, 40).view(10, 1, 2, 2)
    y = torch.arange(10)
    leaky = base_batches(x, y, True, leak=0.08)(torch.Generator().manual_seed(3), 6)
    plain = base_batches(x, y, True)(torch.Generator().manual_seed(3), 6)  # the same draws without the leak
    assert torch.equal(leaky.x1, plain.x1) and torch.equal(leaky.y, plain.y)
    assert torch.allclose(leaky.x0, (1 - 0.08**2) ** 0.5 * plain.x0 + 0.08 * plain.x1)
    with pytest.raises(ValueError, match=r"leak must lie in \[0, 1\)"):
        base_batches(x, y, True, leak=1.0)
