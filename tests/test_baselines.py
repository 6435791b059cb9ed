import pytest
import torch

from bfr_core.eval.baselines import sdedit
from bfr_core.generative.nets import MLPVelocity


def test_sdedit_one_euler_step_matches_formula():
    torch.manual_seed(0)
    base = MLPVelocity((3,), hidden=16, depth=1).eval()
    x = torch.randn(4, 3)
    out, nfe = sdedit(base, x, None, 0.25, "euler", 1, torch.Generator().manual_seed(7))
    eps = torch.randn(4, 3, generator=torch.Generator().manual_seed(7))
    xs = 0.25 * eps + 0.75 * x
    with torch.no_grad():
        expected = xs + 0.25 * base(torch.full((4,), 0.75), xs)
    assert nfe == 1 and torch.allclose(out, expected, atol=1e-6)


def test_sdedit_validates_noise_level():
    with pytest.raises(ValueError, match=r"t_star must lie in \(0, 1\]"):
        sdedit(None, torch.zeros(1, 2), None, 0.0, "euler", 1, torch.Generator())


def test_prior_scale_is_the_rms_of_the_latents():
    from bfr_core.eval.baselines import prior_scale

    z_b = torch.tensor([[3.0, -4.0], [0.0, 0.0]])  # squares 9, 16, 0, 0: mean 6.25, root 2.5
    assert prior_scale(z_b) == 2.5
    assert abs(prior_scale(torch.randn(4000, 784, generator=torch.Generator().manual_seed(0))) - 1) < 1e-3
