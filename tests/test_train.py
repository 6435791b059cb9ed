import pytest
import torch

from bfr_core.generative.flow import FlowBatch
from bfr_core.generative.nets import MLPVelocity
from bfr_core.generative.flow import train_flow
from bfr_core.generative.train import TrainConfig, fit


def draw(g, bs):
    x1 = torch.randn(bs, 2, generator=g) * 0.3 + 2.0
    return FlowBatch(torch.randn(bs, 2, generator=g), x1)


def run(tmp_path, steps, resume=False, stop_at=None):
    torch.manual_seed(0)
    net = MLPVelocity((2,), hidden=16, depth=1)
    cfg = TrainConfig(steps=steps, save_every=5, progress=False, seed=3)

    def on_step(step, loss):
        if stop_at is not None and step == stop_at:
            raise KeyboardInterrupt

    return train_flow(net, draw, "ot", 0.0, 32, cfg, tmp_path / "state.pt", resume, on_step)


def test_resume_after_interrupt_is_bit_identical(tmp_path):
    reference = run(tmp_path / "a", 20).model.state_dict()
    with pytest.raises(KeyboardInterrupt):
        run(tmp_path / "b", 20, stop_at=13)  # last checkpoint at step 10
    assert torch.load(tmp_path / "b" / "state.pt", weights_only=True)["step"] == 10
    resumed = run(tmp_path / "b", 20, resume=True).model.state_dict()
    for k in reference:
        assert torch.equal(reference[k], resumed[k]), k


def test_training_learns_the_target():
    torch.manual_seed(0)
    net = MLPVelocity((2,), hidden=64, depth=2)
    res = train_flow(net, draw, "ot", 0.0, 128, TrainConfig(steps=300, progress=False), None)
    from bfr_core.generative.ode import flow_map

    x = flow_map(res.model, torch.randn(2000, 2), solver="rk4", nfe=8).x
    assert (x.mean(0) - 2.0).abs().max() < 0.1
    assert x.std(0).max() < 0.45


def test_nan_loss_stops_with_a_message():
    net = MLPVelocity((2,), hidden=8, depth=1)
    with pytest.raises(FloatingPointError, match="loss became nan at step 0"):
        fit(
            net,
            lambda m, g, s: torch.tensor(float("nan"), requires_grad=True),
            TrainConfig(steps=3, progress=False),
        )


def test_a_time_box_stops_after_the_step_that_passes_it_and_keeps_those_steps(tmp_path, monkeypatch):
    import bfr_core.generative.train as train

    clock = iter(range(0, 10_000))  # perf_counter: 1 s per call
    monkeypatch.setattr(train.time, "perf_counter", lambda: float(next(clock)))
    net = MLPVelocity((2,), hidden=8, depth=1)
    cfg = TrainConfig(steps=1000, progress=False, max_seconds=3.5, save_every=1000)
    res = fit(net, lambda m, g, s: m(torch.zeros(4), torch.zeros(4, 2)).pow(2).mean(), cfg, tmp_path / "s.pt")
    # t0 = 0; the check before step k reads k + 1 s: steps 0, 1, 2 run (1, 2, 3 ≤ 3.5), step 3 sees 4 s
    assert res.steps == 3 and res.stopped_early
    assert torch.load(tmp_path / "s.pt", weights_only=True)["step"] == 3  # resumable from there
