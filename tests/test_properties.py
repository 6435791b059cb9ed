"""Property tests (hypothesis) on the core's shapes, NFE accounting, α range and input validation."""

import math

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from app.policy import as_alpha, as_int
from bfr_core.generative.flow import ot_assignment, sample_path
from bfr_core.generative.ode import EVALS_PER_STEP, integrate
from bfr_core.refiners.lfr import alpha_mix

FAST = settings(max_examples=40, deadline=None)


@FAST
@given(
    solver=st.sampled_from(sorted(EVALS_PER_STEP)),
    steps=st.integers(1, 12),
    batch=st.integers(1, 5),
    dim=st.integers(1, 4),
    backwards=st.booleans(),
)
def test_fixed_grid_nfe_and_shapes(solver, steps, batch, dim, backwards):
    nfe = steps * EVALS_PER_STEP[solver]
    x = torch.randn(batch, dim, dtype=torch.float64)
    t0, t1 = (1.0, 0.0) if backwards else (0.0, 1.0)
    res = integrate(lambda t, x: torch.cos(t) - 0.3 * x, x, t0, t1, solver, nfe, return_trajectory=True)
    assert res.nfe == nfe and res.x.shape == x.shape and res.x.dtype == x.dtype
    assert res.trajectory.shape == (steps + 1, batch, dim)


@FAST
@given(nfe=st.integers(-10, 5000))
def test_nfe_out_of_range_or_misaligned_is_refused(nfe):
    ok = 1 <= nfe <= 1000 and nfe % 4 == 0
    if ok:
        assert integrate(lambda t, x: x, torch.ones(1), solver="rk4", nfe=nfe).nfe == nfe
    else:
        with pytest.raises(ValueError):
            integrate(lambda t, x: x, torch.ones(1), solver="rk4", nfe=nfe)


@FAST
@given(alpha=st.floats(0, 1), n=st.integers(1, 50))
def test_alpha_mix_stays_within_its_range(alpha, n):
    z = torch.randn(n, 3)
    z1, a = alpha_mix(z, alpha, torch.Generator().manual_seed(0))
    assert z1.shape == z.shape and torch.isfinite(z1).all()
    assert (a >= 0).all() and (a <= alpha).all()


@FAST
@given(alpha=st.one_of(st.floats(allow_nan=True), st.just(float("inf"))))
def test_alpha_outside_unit_interval_is_refused(alpha):
    if math.isfinite(alpha) and 0 <= alpha <= 1:
        assert as_alpha(alpha) == alpha
    else:
        with pytest.raises(ValueError, match="alpha"):
            as_alpha(alpha)


@FAST
@given(
    value=st.one_of(
        st.integers(-(10**9), 10**9),
        st.floats(allow_nan=True, allow_infinity=True),
        st.text(max_size=5),
        st.none(),
        st.booleans(),
    )
)
def test_integer_fields_accept_only_whole_numbers_in_range(
    value,
):
    try:
        out = as_int(value, "seed", 0, 1000)
    except ValueError as e:
        assert "seed must be an integer in 0..1000" in str(e)
    else:
        assert (
            isinstance(out, int) and 0 <= out <= 1000 and float(value) == out and not isinstance(value, bool)
        )


@FAST
@given(n=st.integers(1, 9), seed=st.integers(0, 1000))
def test_ot_is_a_permutation_never_worse_than_identity(n, seed):
    g = torch.Generator().manual_seed(seed)
    x0, x1 = torch.randn(n, 2, generator=g), torch.randn(n, 2, generator=g)
    perm = ot_assignment(x0, x1)
    assert sorted(perm.tolist()) == list(range(n))
    assert ((x0[perm] - x1) ** 2).sum() <= ((x0 - x1) ** 2).sum() + 1e-9


@FAST
@given(t=st.floats(0, 1), shape=st.sampled_from([(2,), (1, 4, 4), (3,)]))
def test_path_interpolates(t, shape):
    x0, x1 = torch.randn(4, *shape, dtype=torch.float64), torch.randn(4, *shape, dtype=torch.float64)
    xt, ut = sample_path(x0, x1, torch.full((4,), t, dtype=torch.float64))
    assert xt.shape == x0.shape
    assert torch.allclose(xt, x0 + t * ut)
