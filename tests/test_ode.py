import math

import pytest
import torch

from bfr_core.generative.nets import MLPVelocity
from bfr_core.generative.ode import DivergenceError, integrate, velocity_field


def test_one_euler_step_is_x_plus_v0():
    torch.manual_seed(0)
    net = MLPVelocity((3,), hidden=32, depth=2).eval()
    x = torch.randn(5, 3)
    res = integrate(velocity_field(net), x, 0.0, 1.0, "euler", 1)
    with torch.no_grad():
        assert torch.allclose(res.x, x + net(torch.zeros(5), x), atol=1e-6)
    assert res.nfe == 1 and res.solver == "euler"


@pytest.mark.parametrize(
    "solver,nfe,steps", [("euler", 7, 7), ("midpoint", 6, 3), ("rk4", 4, 1), ("rk4", 20, 5)]
)
def test_fixed_grid_spends_exactly_nfe(solver, nfe, steps):
    res = integrate(lambda t, x: -x, torch.ones(2), 0.0, 1.0, solver, nfe, return_trajectory=True)
    assert res.nfe == nfe
    assert res.trajectory.shape == (steps + 1, 2)
    assert torch.allclose(res.times, torch.linspace(0, 1, steps + 1))


def test_rk4_single_step_matches_hand_computation():
    # for dx/dt = -x, one RK4 step of size 1 gives 1 - 1 + 1/2 - 1/6 + 1/24
    res = integrate(lambda t, x: -x, torch.ones(1, dtype=torch.float64), 0.0, 1.0, "rk4", 4)
    assert res.x.item() == pytest.approx(1 - 1 + 1 / 2 - 1 / 6 + 1 / 24, abs=1e-12)


def analytic_field(t, x):
    """Nonlinear, time-dependent, smooth: dx/dt = sin(x)·cos(2t) + 0.5·t."""
    return torch.sin(x) * torch.cos(2 * t) + 0.5 * t


def test_rk4_inversion_round_trips():
    x = torch.linspace(-3, 3, 50, dtype=torch.float64)[:, None].repeat(1, 2)
    fwd = integrate(analytic_field, x, 0.0, 1.0, "rk4", 40)
    back = integrate(analytic_field, fwd.x, 1.0, 0.0, "rk4", 40)
    assert (back.x - x).abs().max().item() < 1e-4
    assert (fwd.x - x).abs().max().item() > 0.1  # the map is far from the identity


def test_linear_field_matches_exponential():
    x = torch.ones(3, dtype=torch.float64)
    res = integrate(lambda t, x: 0.7 * x, x, 0.0, 1.0, "rk4", 40)
    assert res.x[0].item() == pytest.approx(math.exp(0.7), rel=1e-6)  # RK4 error at h = 0.1 is ~1e-7
    back = integrate(lambda t, x: 0.7 * x, x, 1.0, 0.0, "dopri5")
    assert back.x[0].item() == pytest.approx(math.exp(-0.7), rel=1e-5)
    assert back.nfe > 0


@pytest.mark.parametrize(
    "solver,nfe,msg",
    [
        ("rk4", 6, "not a multiple of 4"),
        ("euler", 0, "1..1000"),
        ("euler", 10**6, "1..1000"),
        ("heun", 2, "unknown fixed-grid solver"),
        ("midpoint", 3, "not a multiple of 2"),
    ],
)
def test_bad_solver_or_nfe_is_refused(solver, nfe, msg):
    with pytest.raises(ValueError, match=msg):
        integrate(lambda t, x: x, torch.ones(1), solver=solver, nfe=nfe)


def test_divergence_is_detected():
    with pytest.raises(DivergenceError, match="NaN or inf"):
        integrate(lambda t, x: x * float("inf"), torch.ones(2), solver="euler", nfe=2)


def test_solver_for_nfe_spends_exactly_that_budget():
    from bfr_core.generative.ode import grid_steps, solver_for_nfe

    assert [solver_for_nfe(n) for n in (1, 3, 4, 8, 10)] == ["euler", "euler", "rk4", "rk4", "euler"]
    assert all(grid_steps(solver_for_nfe(n), n) * (4 if n % 4 == 0 else 1) == n for n in range(1, 41))


def test_cpu_batches_keep_about_2_to_the_17_input_floats_and_a_gpu_takes_the_whole_batch():
    from bfr_core.generative.ode import rows_per_batch

    cpu, gpu = torch.device("cpu"), torch.device("cuda")
    assert rows_per_batch(torch.zeros(5000, 3, 32, 32), 1000, cpu) == 64  # 2¹⁷ / 3,072 = 42 → at least 64
    assert rows_per_batch(torch.zeros(5000, 1, 28, 28), 1000, cpu) == 2**17 // 784 == 167
    assert rows_per_batch(torch.zeros(5000, 2), 1000, cpu) == 1000  # never more than asked
    assert rows_per_batch(torch.zeros(5000, 3, 32, 32), 1000, gpu) == 1000
    assert rows_per_batch(torch.zeros(0, 2), 1000, cpu) == 1000
