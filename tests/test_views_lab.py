"""The 2-D bias lab, the trajectory frames, and the app's caches and start-up warm-up."""

import math

import pytest
import torch

from app import widgets
from app.tabs import inspector, overrefine, overrefine_views, refine, trajectories
from bfr_core.views.lab import run_bias_lab
from bfr_core.eval.metrics import energy_distance
from bfr_core.pipeline import Pipeline, Settings


def test_velocity_grid_is_the_field_at_t0_on_a_grid_over_the_points():
    from bfr_core.views.lab import velocity_grid

    class Shift(torch.nn.Module):  # v(t, x) = (1, 2) − x: points flow towards (1, 2)
        def forward(self, t, x, y, cond):
            return torch.tensor([1.0, 2.0]) - x

    pts = torch.stack([torch.linspace(0, 1, 101), torch.linspace(-1, 1, 101)], 1)
    grid, v = velocity_grid(Shift(), pts, n=3)
    assert grid.shape == (9, 2) and torch.allclose(v, torch.tensor([1.0, 2.0]) - grid)
    assert grid[:, 0].min() == pytest.approx(0.02) and grid[:, 1].max() == pytest.approx(0.96)


def test_bias_lab_exposes_and_reports(tmp_path):
    fractions = []
    r = run_bias_lab(
        "moons", base_steps=25, refine_steps=25, n=200, seed=3, progress=lambda f, text: fractions.append(f)
    )
    assert r.generated.shape == r.biased_latents.shape == r.lfr_points.shape == (200, 2)
    assert r.dfr_trajectory.shape == (11, 200, 2)
    assert torch.equal(r.dfr_trajectory[-1], r.dfr_points)
    assert set(r.energy) == {"base", "lfr", "dfr", "train", "latents_vs_prior"}
    assert r.energy["latents_vs_prior"] == pytest.approx(energy_distance(r.biased_latents, r.prior))
    assert fractions and all(0 < f <= 1 for f in fractions)
    grid, v = r.dfr_field
    assert grid.shape == v.shape == (225, 2) and torch.isfinite(v).all()
    with pytest.raises(ValueError, match="base steps must be an integer in 10..3000, got 5"):
        run_bias_lab("moons", base_steps=5)


def test_paths_end_where_the_pipeline_ends_and_frames_hold_between_grid_times(tiny_bundle):
    from bfr_core.views.trajectories import frame_at, pipeline_paths

    pipe = Pipeline(tiny_bundle)
    s = Settings(base_solver="rk4", base_nfe=8, lfr_solver="euler", lfr_nfe=2, dfr_solver="euler", dfr_nfe=4)
    paths = pipeline_paths(pipe, 5, 3, s)
    assert paths["base"].times.tolist() == [0.0, 0.5, 1.0] and paths["dfr"].frames.shape == (5, 5, 1, 8, 8)
    assert torch.equal(paths["base"].frames[0], pipe.prior(5, 3))
    for mode, name in (("none", "base"), ("lfr", "lfr"), ("dfr", "dfr")):
        run = pipe.run(5, 3, Settings(**{**s.__dict__, "mode": mode}))
        assert torch.allclose(paths[name].frames[-1], run.final, atol=1e-6), name
    base = paths["base"]
    assert torch.equal(frame_at(base, 0.49), base.frames[0]) and torch.equal(
        frame_at(base, 0.5), base.frames[1]
    )
    assert torch.equal(frame_at(base, 1.0), base.frames[2])


def test_the_bias_lab_is_remembered_by_its_arguments_and_the_cache_is_bounded(monkeypatch):
    """cached_bias_lab trains once per (toy, base steps, refiner steps): a repeat returns the kept
    result without training or reporting progress, and only LAB_CACHE_SIZE results are kept."""
    from bfr_core.views import lab as core_lab

    calls = []
    monkeypatch.setattr(
        core_lab,
        "run_bias_lab",
        lambda *a, progress=None, data=None, curves=None: calls.append(a) or object(),
    )
    monkeypatch.setattr(core_lab, "_kept", type(core_lab._kept)())
    monkeypatch.setattr(core_lab, "LAB_CACHE_SIZE", 2)
    first = core_lab.cached_bias_lab("moons", 60, 250)
    assert core_lab.cached_bias_lab("moons", 60, 250, progress=lambda *_: 1 / 0) is first and len(calls) == 1
    core_lab.cached_bias_lab("spirals", 60, 250)
    core_lab.cached_bias_lab("moons", 60, 250)  # used last, so kept; the spirals result is the oldest
    core_lab.cached_bias_lab("checkerboard", 60, 250)
    assert (
        list(core_lab._kept) == [("moons", 60, 250, None), ("checkerboard", 60, 250, None)]
        and len(calls) == 3
    )


def test_the_warm_up_computes_the_first_views_so_the_first_request_reuses_them(monkeypatch):
    from app import registry, warmup
    from app.tabs import lab as lab_tab
    from bfr_core.views import lab as core_lab

    monkeypatch.setattr(core_lab, "DEFAULT_LAB", ("moons", 10, 10))
    monkeypatch.setattr(lab_tab, "DEFAULT_LAB", ("moons", 10, 10))
    registry._latent_map.cache_clear()
    took = warmup.warm("digits")
    expected = ["refine digits", "latents digits", "trajectories digits", "inspect digits"]
    expected += ["overrefine digits", "lab digits"]  # in the order of the tabs: the longest job last
    assert list(took) == expected and all(s >= 0 for s in took.values())

    hits = trajectories.cached_paths.cache_info().hits, inspector.cached_bias_meter.cache_info().hits
    (
        trajectories.trajectory("digits", **trajectories.DEFAULTS),
        inspector.inspect_example("digits", **inspector.DEFAULTS),
    )
    assert (trajectories.cached_paths.cache_info().hits, inspector.cached_bias_meter.cache_info().hits) == (
        hits[0] + 1,
        hits[1] + 1,
    )
    assert registry._latent_map.cached("digits", None, None)
    assert overrefine_views.cached_overshoots.cached("digits", overrefine_views.OVERSHOOT_DEFAULTS["alpha"])
    assert overrefine.cached_drift_rows.cached("digits", widgets.ALPHA_DEFAULT)
    kept_strip = overrefine.cached_drift_rows("digits", widgets.ALPHA_DEFAULT)
    monkeypatch.setattr(
        overrefine, "lfr_drift", lambda *a, **k: pytest.fail("the drift strip was solved again")
    )
    assert overrefine.overrefine("digits", widgets.ALPHA_DEFAULT)[1].endswith(
        ".png"
    )  # Over-refinement, first view
    assert overrefine.cached_drift_rows("digits", widgets.ALPHA_DEFAULT) is kept_strip
    assert core_lab.cached_bias_lab("moons", 10, 10) is core_lab._kept[("moons", 10, 10, None)]
    from bfr_core.pipeline import Pipeline

    def no_sampling(*args, **kwargs):
        raise AssertionError("the default Refine answer was computed again")

    monkeypatch.setattr(Pipeline, "run", no_sampling)
    first = refine.refine("digits", **refine.REFINE_DEFAULTS)  # the kept answer: no sampling
    assert first is refine.refine("digits", **refine.REFINE_DEFAULTS) and first[0].endswith(".png")
    with pytest.raises(Exception, match="computed again"):  # another seed is a new request
        refine.refine("digits", **{**refine.REFINE_DEFAULTS, "seed": 1})
    failed = warmup.warm("no-such-bundle")  # logged, never raised
    assert "latents no-such-bundle" in failed and "overrefine no-such-bundle" in failed


def test_concurrent_callers_of_one_key_share_one_computation_and_failures_are_not_kept():
    import threading

    from app.memo import single_flight

    started, release, calls = threading.Event(), threading.Event(), []

    @single_flight(maxsize=2)
    def slow(key):
        calls.append(key)
        started.set()
        release.wait(10)
        if key == "bad":
            raise ValueError("bad key")
        return [key]

    results = []
    first = threading.Thread(target=lambda: results.append(slow("a")))
    first.start()
    started.wait(10)
    second = threading.Thread(target=lambda: results.append(slow("a")))
    second.start()
    release.set()
    first.join(10), second.join(10)
    assert calls == ["a"] and results[0] is results[1] == ["a"]
    for _ in range(2):
        with pytest.raises(ValueError, match="bad key"):
            slow("bad")
    assert calls == ["a", "bad", "bad"] and not slow.cached("bad")
    slow("b"), slow("c")
    assert not slow.cached("a") and slow.cached("c")  # bounded: the oldest key is dropped
    slow.set_maxsize(0)  # keep nothing (the app's --no-answer-cache): every sequential call computes
    assert not slow.cached("c")
    n = len(calls)
    assert slow("c") == slow("c") == ["c"] and calls[n:] == ["c", "c"] and not slow.cached("c")


def test_pasted_points_become_a_standardised_held_out_split_and_bad_lines_are_named():
    from bfr_core.views.lab import USER_POINTS, points_dataset

    pts = torch.randn(60, 2, generator=torch.Generator().manual_seed(4)) * 3 + 5
    text = "\n".join(
        f"{x:.6f}, {y:.6f}" if i % 2 else f"{x:.6f}\t{y:.6f}" for i, (x, y) in enumerate(pts.tolist())
    )
    ds = points_dataset(text + "\n\n", seed=1)
    assert (len(ds.x_train), len(ds.x_test)) == (48, 12)  # 20% held out
    allx = torch.cat([ds.x_train, ds.x_test])
    centred = pts - pts.mean(0)
    expected = centred / centred.pow(2).mean().sqrt()  # (x − mean) / RMS
    assert torch.allclose(allx.mean(0), torch.zeros(2), atol=1e-5)
    assert torch.allclose(allx.pow(2).mean(), torch.tensor(1.0), atol=1e-5)
    assert torch.allclose(allx.sort(0).values, expected.sort(0).values, atol=1e-5)
    with pytest.raises(ValueError, match=r"line 3 of your points is not two finite numbers: '1, nan'"):
        points_dataset("0, 1\n2, 3\n1, nan\n")
    with pytest.raises(
        ValueError, match=rf"paste between {USER_POINTS[0]} and {USER_POINTS[1]} points.*got 2"
    ):
        points_dataset("0, 1\n2, 3")
    with pytest.raises(ValueError, match="all lie on one spot"):
        points_dataset("1, 1\n" * 60)


def test_the_bias_lab_trains_on_pasted_points():
    from bfr_core.views.lab import points_dataset, run_bias_lab

    g = torch.Generator().manual_seed(0)
    ring = torch.randn(200, 2, generator=g)
    ring = ring / ring.norm(dim=1, keepdim=True)
    text = "\n".join(f"{x}, {y}" for x, y in ring.tolist())
    ds = points_dataset(text)
    r = run_bias_lab("my points", 20, 20, n=100, data=ds)
    assert r.biased_latents.shape == r.lfr_points.shape == (100, 2) and torch.equal(r.real, ds.x_train[:100])
    assert all(math.isfinite(v) for v in r.energy.values())
