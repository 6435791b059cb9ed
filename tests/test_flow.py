import itertools

import pytest
import torch

from bfr_core.generative.flow import (
    FlowBatch,
    cfm_loss,
    couple,
    coupled_batch,
    flow_loss,
    ot_assignment,
    sample_path,
)
from bfr_core.generative.nets import MLPVelocity


def test_sample_path_matches_formula():
    x0 = torch.tensor([[1.0, 2.0], [3.0, -1.0]])
    x1 = torch.tensor([[0.0, 4.0], [1.0, 1.0]])
    t = torch.tensor([0.25, 0.5])
    eps = torch.tensor([[1.0, -1.0], [0.5, 0.0]])
    xt, ut = sample_path(x0, x1, t, sigma=0.1, noise=eps)
    assert torch.allclose(xt, torch.tensor([[0.75 + 0.1, 2.5 - 0.1], [2.0 + 0.05, 0.0]]))
    assert torch.equal(ut, torch.tensor([[-1.0, 2.0], [-2.0, 2.0]]))


def test_path_endpoints_without_noise():
    x0, x1 = torch.randn(4, 3), torch.randn(4, 3)
    assert torch.allclose(sample_path(x0, x1, torch.zeros(4))[0], x0)
    assert torch.allclose(sample_path(x0, x1, torch.ones(4))[0], x1)


def test_cfm_loss_equals_formula():
    v = torch.tensor([[1.0, 2.0], [0.0, 0.0]])
    u = torch.tensor([[0.0, 0.0], [1.0, 3.0]])
    assert cfm_loss(v, u).item() == pytest.approx((1 + 4 + 1 + 9) / 4)


@pytest.mark.parametrize("n,seed", [(4, 0), (5, 1), (6, 2), (7, 3)])
def test_ot_matches_brute_force(n, seed):
    g = torch.Generator().manual_seed(seed)
    x0, x1 = torch.randn(n, 3, generator=g), torch.randn(n, 3, generator=g)
    cost = torch.cdist(x0, x1) ** 2
    best = min(sum(cost[p[i], i].item() for i in range(n)) for p in itertools.permutations(range(n)))
    perm = ot_assignment(x0, x1)
    assert sorted(perm.tolist()) == list(range(n))
    assert sum(cost[perm[i], i].item() for i in range(n)) == pytest.approx(best, rel=1e-9)


def test_ot_per_class_keeps_classes_and_is_optimal_within_each():
    g = torch.Generator().manual_seed(0)
    y = torch.tensor([0, 1, 0, 1, 0, 1])
    x1 = torch.randn(6, 2, generator=g)
    x0 = x1 + 10 * y[:, None]  # x0[i] is tagged with its class by a large offset
    shuffled = torch.tensor([2, 3, 4, 5, 0, 1])  # permutes within classes
    out = couple(FlowBatch(x0[shuffled], x1, y), "ot-per-class")
    assert torch.equal(((out.x0[:, 0] - x1[:, 0]) > 5).long(), y)  # every pair same-class
    assert torch.allclose(out.x0, x0)  # the optimal pairing is the identity here


def line_draw(g, n):
    """1-D sources and targets: on a line the OT plan is the monotone (sorted) matching."""
    return FlowBatch(
        torch.randn(n, 1, generator=g), 3 + torch.randn(n, 1, generator=g), cond=torch.arange(n)[:, None]
    )


def test_coupled_batch_keeps_a_subset_of_the_larger_ot_plan():
    big = couple(line_draw(torch.Generator().manual_seed(5), 64), "ot")
    out = coupled_batch(line_draw, "ot", 16, 64, torch.Generator().manual_seed(5))
    assert out.x0.shape == (16, 1)
    idx = out.cond[:, 0]  # cond follows x1, so it names each kept pair's row in the big batch
    assert len(set(idx.tolist())) == 16
    assert torch.equal(out.x0, big.x0[idx]) and torch.equal(out.x1, big.x1[idx])
    order = torch.argsort(out.x1[:, 0])  # monotone: sorted targets have sorted sources
    assert torch.equal(torch.sort(out.x0[:, 0]).values, out.x0[order, 0])


def test_coupled_batch_without_a_larger_ot_batch_is_plain_coupling():
    plain = couple(line_draw(torch.Generator().manual_seed(1), 16), "ot")
    for ot_batch in (None, 8, 16):
        out = coupled_batch(line_draw, "ot", 16, ot_batch, torch.Generator().manual_seed(1))
        assert torch.equal(out.x0, plain.x0) and torch.equal(out.x1, plain.x1)


def test_larger_ot_batch_gives_closer_pairs():
    """Same distribution on both sides: the OT cost of n samples shrinks towards 0 as n grows."""

    def draw(g, n):
        return FlowBatch(torch.randn(n, 1, generator=g), torch.randn(n, 1, generator=g))

    def cost(ot_batch):
        b = coupled_batch(draw, "ot", 32, ot_batch, torch.Generator().manual_seed(2))
        return float(((b.x1 - b.x0) ** 2).mean())

    assert cost(1024) < cost(32) / 5


def test_unknown_coupling_is_named():
    with pytest.raises(ValueError, match="unknown coupling 'magic'"):
        couple(FlowBatch(torch.zeros(2, 2), torch.zeros(2, 2)), "magic")


def test_flow_loss_equals_manual_computation():
    net = MLPVelocity((2,), hidden=16, depth=1)
    x0, x1 = torch.randn(8, 2), torch.randn(8, 2)
    loss = flow_loss(net, FlowBatch(x0, x1), sigma=0.1, generator=torch.Generator().manual_seed(5))
    g = torch.Generator().manual_seed(5)
    t = torch.rand(8, generator=g)
    eps = torch.randn(8, 2, generator=g)
    xt = (1 - t[:, None]) * x0 + t[:, None] * x1 + 0.1 * eps
    assert loss.item() == pytest.approx(((net(t, xt) - (x1 - x0)) ** 2).mean().item(), rel=1e-6)
