"""The library behind the app's views: latent_view, sweep and the 2-D bias lab."""

import math
import os

import numpy as np
import pytest
import torch

from app import widgets
from app.tabs import inspector, overrefine, overrefine_views, refine, trajectories
from bfr_core.views.lab import run_bias_lab
from bfr_core.views.latent_view import LatentMap, latent_distances, norm_per_dim
from bfr_core.eval.metrics import energy_distance
from bfr_core.pipeline import Pipeline, Settings
from bfr_core.views.sweep import alpha_nfe_map, lfr_drift, load_alpha_map, nfe_sweep


def test_norm_per_dim_is_the_norm_over_root_d():
    z = torch.stack([torch.ones(2, 3, 3), 2 * torch.ones(2, 3, 3), torch.zeros(2, 3, 3)])
    assert norm_per_dim(z).tolist() == [1.0, 2.0, 0.0]
    v = torch.tensor([[3.0, 4.0, 0.0, 0.0]])
    assert norm_per_dim(v).item() == pytest.approx(5 / 2)


def test_latent_distances_are_energy_distances_of_the_first_points():
    g = torch.Generator().manual_seed(0)
    prior, biased = torch.randn(40, 5, generator=g), 0.5 * torch.randn(40, 5, generator=g)
    d = latent_distances(prior, biased, biased.clone(), max_points=30)
    assert d["refined_to_biased"] == pytest.approx(0.0, abs=1e-12)
    assert d["refined_to_prior"] == pytest.approx(energy_distance(biased[:30], prior[:30]))
    assert d["prior_to_biased"] == d["refined_to_prior"] > 0


def test_latent_map_fits_all_three_clouds_jointly_and_reuses_stored_coordinates():
    g = torch.Generator().manual_seed(1)
    prior, biased = torch.randn(60, 4, generator=g), 0.3 * torch.randn(60, 4, generator=g)
    refined = 0.5 * prior
    lmap = LatentMap(prior, biased, None, refined=refined, n_neighbors=5)
    xy = lmap.fit().coords()
    assert lmap.fit().coords().equal(xy)  # idempotent
    assert xy.shape == (180, 2) and lmap.refined_xy.shape == (60, 2)
    assert np.array_equal(lmap.refined_xy, xy[120:].numpy()) and np.array_equal(
        lmap.prior_xy, xy[:60].numpy()
    )
    stored = LatentMap(prior, biased, None, refined=refined, coords=xy)
    assert stored.fitted and np.array_equal(stored.biased_xy, lmap.biased_xy)
    with pytest.raises(ValueError, match="stored map has"):
        LatentMap(prior, biased, None, coords=xy)  # coordinates for three clouds, two given


def test_umaps_kernels_are_compiled_once_a_machine_into_numbas_disk_cache():
    """After import_umap every module-level umap kernel caches on disk; a fit looks its kernels up there
    (a hit, or a miss that writes the file the next process reads) instead of compiling in every process."""
    from numba.core.caching import FunctionCache

    from bfr_core.views.latent_view import umap_2d
    from bfr_core.views.umap_kernels import cached_kernels, import_umap

    umap = import_umap()
    assert import_umap() is umap
    kernels = cached_kernels(umap.umap_) + cached_kernels(umap.layouts)
    assert len(kernels) > 10 and all(isinstance(k._cache, FunctionCache) for k in kernels)
    umap_2d(np.random.default_rng(0).normal(size=(40, 3)).astype(np.float32), 5, 0)
    used = umap.umap_.smooth_knn_dist
    assert sum(used.stats.cache_hits.values()) + sum(used.stats.cache_misses.values()) >= 1
    assert os.path.exists(used._cache._cache_file._index_path)


def test_latent_map_command_stores_every_slider_setting_on_one_map_the_app_reads(
    tiny_bundle, tmp_path, capsys
):
    import shutil

    from bfr_core.infra.checkpoint import CheckpointError, load_tensors, save_tensors
    from bfr_core.cli.main import main
    from bfr_core.views.latent_view import MAP_FILE, MAP_NFES, bundle_latent_map, slider_settings

    bundle = tmp_path / "digits"
    shutil.copytree(tiny_bundle, bundle)
    live = bundle_latent_map(Pipeline(bundle), alpha=0.3, lfr_nfe=3)  # nothing stored: refined here
    assert not live.fitted and live.refined is not None and live.setting["lfr_solver"] == "euler"
    assert main(["--quiet", "latent-map", "--bundle", str(bundle), "--refined-points", "520"]) == 0
    tensors, meta = load_tensors(bundle / f"{MAP_FILE}.safetensors")
    pipe = Pipeline(bundle)
    settings = slider_settings(pipe)  # α 0, 0.05, …, 0.5 (the LFR's range) × NFE 1..10, default first
    assert len(settings) == 11 * len(MAP_NFES) and len(meta["settings"]) == len(settings)
    s = pipe.resolve(Settings(mode="lfr"))
    assert {k: settings[0][k] for k in ("alpha", "lfr_solver", "lfr_nfe")} == {
        "alpha": s.alpha,
        "lfr_solver": s.lfr_solver,
        "lfr_nfe": s.lfr_nfe,
    }
    k = len(live.prior)
    shown = [x["shown"] for x in meta["settings"]]
    assert shown[0] == k and set(shown[1:]) == {(520 - k) // (len(settings) - 1)}
    assert tensors["xy"].shape == (2 * k + sum(shown), 2) and tensors["refined_norms"].shape == (
        len(settings),
        k,
    )
    # a stored setting is read, never refined: its figures are those of all its refined draws
    no_refining = Pipeline(bundle)
    no_refining.refine = lambda *a, **kw: pytest.fail("a stored setting was refined")
    stored = bundle_latent_map(no_refining, alpha=0.3, lfr_nfe=3)
    assert stored.fitted and stored.refined is None and len(stored.refined_xy) == shown[1]
    assert np.allclose(stored.cloud_norms()["LFR-refined"], live.cloud_norms()["LFR-refined"], atol=1e-6)
    for key, value in live.distances().items():
        assert stored.distances()[key] == pytest.approx(value, rel=1e-9)
    first = bundle_latent_map(no_refining)
    assert np.array_equal(first.prior_xy, stored.prior_xy)  # one map: only the refined cloud moves
    assert len(first.refined_xy) == k
    i = next(i for i, x in enumerate(meta["settings"]) if x["alpha"] == 0.3 and x["lfr_nfe"] == 3)
    start = 2 * k + sum(shown[:i])
    assert torch.equal(torch.from_numpy(stored.refined_xy), tensors["xy"][start : start + shown[i]])
    off_grid = bundle_latent_map(Pipeline(bundle), alpha=0.33, lfr_nfe=3)  # not on the slider grid: live
    assert not off_grid.fitted and off_grid.refined is not None
    assert main(["--quiet", "train-lfr", "--bundle", str(bundle), "--steps", "2", "--alpha-max", "0.5"]) == 0
    assert not bundle_latent_map(Pipeline(bundle)).fitted  # a retrained LFR: the stored map no longer fits
    assert main(["--quiet", "latent-map", "--bundle", str(bundle)]) == 2
    assert "already has a stored map" in capsys.readouterr().err
    (bundle / f"{MAP_FILE}.safetensors").unlink()  # a smaller map: the app reads its clouds at its size
    assert (
        main(["--quiet", "latent-map", "--bundle", str(bundle), "--points", "40", "--refined-points", "150"])
        == 0
    )
    small = bundle_latent_map(Pipeline(bundle), alpha=0.1, lfr_nfe=2)
    assert small.fitted and small.prior.shape[0] == small.biased.shape[0] == 40
    assert len(small.cloud_norms()["LFR-refined"]) == 40
    save_tensors(
        {"xy": torch.zeros(4, 2)}, {"points": 2, "prior_seed": 1}, bundle / f"{MAP_FILE}.safetensors"
    )
    with pytest.raises(CheckpointError, match="not a map of this bundle's first"):
        bundle_latent_map(Pipeline(bundle))
    save_tensors(
        {"xy": torch.zeros(2 * k, 2)},
        {"points": k, "prior_seed": 12345, "lfr": {}},
        bundle / f"{MAP_FILE}.safetensors",
    )
    with pytest.raises(CheckpointError, match="an old map without its settings list"):
        bundle_latent_map(Pipeline(bundle))


class MeanPixel:
    """A deterministic stand-in metric: the mean pixel value."""

    primary = "fid"

    def __call__(self, x, labels):
        return {"fid": float(x.mean()), "fid2": float(x.std())}


def test_nfe_sweep_scores_each_refiner_at_each_euler_nfe(tiny_bundle):
    pipe, score, seen = Pipeline(tiny_bundle), MeanPixel(), []
    sweep = nfe_sweep(pipe, score, n=40, seed=2, nfes=(1, 3), progress=lambda f, t: seen.append(f))
    base = pipe.run(40, 2, Settings(mode="none"))
    assert sweep["metric"] == "fid" and sweep["base"] == score(base.base, None)["fid"]
    s = Settings(mode="dfr", dfr_solver="euler", dfr_nfe=3)
    assert sweep["dfr"][1] == (3, score(pipe.run(40, 2, s).final, None)["fid"])
    assert [n for n, _ in sweep["lfr"]] == [1, 3]
    assert seen == sorted(seen) and seen[-1] == 1.0
    assert list(sweep["metrics"]) == ["base", "lfr 1", "lfr 3", "dfr 1", "dfr 3"]  # every metric kept
    assert sweep["metrics"]["dfr 3"] == score(pipe.run(40, 2, s).final, None)


def test_the_alpha_nfe_map_holds_each_cell_of_the_nfe_sweep_at_that_alpha_and_marks_the_best(tiny_bundle):
    pipe, score = Pipeline(tiny_bundle), MeanPixel()
    found = alpha_nfe_map(pipe, score, n=40, seed=2, alphas=(0.1, 0.4), nfes=(1, 3))
    assert (found["alphas"], found["nfes"], found["metric"]) == ([0.1, 0.4], [1, 3], "fid")
    for row, a in zip(found["quality"], (0.1, 0.4)):  # each α row is the NFE sweep at that α, exactly
        assert row == [q for _, q in nfe_sweep(pipe, score, n=40, seed=2, nfes=(1, 3), alpha=a)["lfr"]]
    assert found["second"]["metric"] == "fid2" and len(found["second"]["quality"]) == 2
    cells = [(q, a, k) for a, r in zip((0.1, 0.4), found["quality"]) for k, q in zip((1, 3), r)]
    q, a, k = min(cells)
    assert found["best"] == {"alpha": a, "nfe": k, "quality": q}
    assert found["quality"][0] != found["quality"][1]  # α changes the refinement
    with pytest.raises(ValueError, match=r"α \[0.9\] outside the LFR's trained range 0..0.5"):
        alpha_nfe_map(pipe, score, n=8, seed=0, alphas=(0.2, 0.9), nfes=(1,))


def test_sweep_alphas_stores_the_map_and_a_fixed_alpha_lfr_is_refused_by_name(tiny_bundle, tmp_path):
    import json
    import shutil

    from bfr_core.cli.main import main
    from bfr_core.bundle import Bundle
    from bfr_core.infra.checkpoint import CheckpointError

    bundle = tmp_path / "digits"
    shutil.copytree(tiny_bundle, bundle)
    assert main(["--quiet", "sweep", "--bundle", str(bundle), "--n", "30", "--alphas", "0.1", "0.3"]) == 0
    stored = load_alpha_map(Bundle(bundle))
    assert stored["map"]["alphas"] == [0.1, 0.3] and stored["n"] == 30
    m = stored["map"]
    assert m["best"]["quality"] == min(min(r) for r in m["quality"])
    broken = json.loads((bundle / "alpha_nfe.json").read_text())
    broken["map"]["quality"][0].pop()  # a ragged grid
    (bundle / "alpha_nfe.json").write_text(json.dumps(broken))
    with pytest.raises(CheckpointError, match="not a valid stored α × NFE map"):
        load_alpha_map(Bundle(bundle))
    fixed = tmp_path / "fixed"
    shutil.copytree(tiny_bundle, fixed)
    argv = ["train-lfr", "--bundle", str(fixed), "--alpha", "0.2", "--steps", "3"]
    assert main(["--quiet", *argv]) == 0
    with pytest.raises(ValueError, match="trained at one fixed α: it has no α axis to map"):
        alpha_nfe_map(Pipeline(fixed), MeanPixel(), n=8, seed=0)


def test_sweep_refiners_remeasures_one_curve_and_keeps_the_others_exactly(tiny_bundle, tmp_path, capsys):
    """After a DFR is retrained, `sweep --refiners dfr` measures its curve on the same draws; the
    stored LFR curve and its provenance stay; another n is refused by name."""
    import json
    import shutil

    from bfr_core.cli.main import main

    bundle = tmp_path / "digits"
    shutil.copytree(tiny_bundle, bundle)
    sweep = ["--quiet", "sweep", "--bundle", str(bundle), "--seed", "2"]
    assert main([*sweep, "--n", "40"]) == 0
    first = json.loads((bundle / "overrefine.json").read_text())
    argv = ["train-dfr", "--bundle", str(bundle), "--pool", "40", "--steps", "3", "--seed", "5"]
    assert main(["--quiet", *argv]) == 0  # a new DFR
    assert main([*sweep, "--n", "40", "--refiners", "dfr"]) == 0
    second = json.loads((bundle / "overrefine.json").read_text())
    assert second["sweep"]["lfr"] == first["sweep"]["lfr"]
    assert second["sweep"]["base"] == first["sweep"]["base"]
    assert second["sweep"]["dfr"] != first["sweep"]["dfr"]
    assert second["kept"] == {"lfr": first["command"]}  # where the kept curve came from
    lfr_rows = {k: v for k, v in second["sweep"]["metrics"].items() if k.startswith("lfr ")}
    assert lfr_rows == {k: v for k, v in first["sweep"]["metrics"].items() if k.startswith("lfr ")}
    assert main([*sweep, "--n", "30", "--refiners", "dfr"]) != 0  # other draws: refused
    assert json.loads((bundle / "overrefine.json").read_text()) == second
    tampered = {**second, "sweep": {**second["sweep"], "metrics": {**second["sweep"]["metrics"]}}}
    tampered["sweep"]["metrics"]["base"] = {**second["sweep"]["metrics"]["base"], "fid": 1.0}
    (bundle / "overrefine.json").write_text(json.dumps(tampered))  # as if another base had made it
    capsys.readouterr()
    assert main([*sweep, "--n", "40", "--refiners", "dfr"]) == 2
    assert "the base row differs from" in capsys.readouterr().err


def test_sweep_same_as_takes_a_siblings_curve_only_when_its_files_are_the_same(tiny_bundle, tmp_path):
    """A bundle sharing base and DFR with a sibling (shared.json) takes the sibling's stored DFR curve:
    exactly what measuring it gives; a DFR of its own is refused by name."""
    import json
    import shutil

    from bfr_core.cli.main import main

    shutil.copytree(tiny_bundle, tmp_path / "digits")
    twin = tmp_path / "twin"
    twin.mkdir()
    for name in ("lfr", "lfr_reflow"):
        shutil.copy(tiny_bundle / f"{name}.safetensors", twin)
    shared = {m: "digits" for m in ("base", "dfr", "classifier", "latents")}
    (twin / "shared.json").write_text(json.dumps(shared))
    for bundle in ("digits", "twin"):
        assert main(["--quiet", "sweep", "--bundle", str(tmp_path / bundle), "--n", "30", "--seed", "4"]) == 0
    measured = json.loads((twin / "overrefine.json").read_text())
    argv = ["--quiet", "sweep", "--bundle", str(twin), "--n", "30", "--seed", "4", "--refiners", "dfr"]
    assert main([*argv, "--same-as", str(tmp_path / "digits")]) == 0
    taken = json.loads((twin / "overrefine.json").read_text())
    assert taken["sweep"] == measured["sweep"] and "as " in taken["kept"]["dfr"]
    shutil.copy(tiny_bundle / "lfr_reflow.safetensors", twin / "dfr.safetensors")  # a DFR of its own
    (twin / "shared.json").write_text(json.dumps({m: "digits" for m in ("base", "classifier", "latents")}))
    with pytest.raises(ValueError, match="--same-as: digits's dfr is not this bundle's file"):
        from bfr_core.bundle import Bundle
        from bfr_core.views.sweep import sibling_sweep

        sibling_sweep(Bundle(twin), Bundle(tmp_path / "digits"), ["dfr"], 30, 4, None)


def test_the_sweep_chart_draws_the_independent_metric_dashed_when_stored():
    from app.figures import sweep_curves

    sweep = {"metric": "fid", "base": 9.0, "lfr": [(1, 8.0), (2, 7.0)], "dfr": [(1, 5.0), (2, 4.0)]}
    assert [t.name for t in sweep_curves(sweep).data] == ["LFR (Euler steps)", "DFR (Euler steps)", "base"]
    sweep["metrics"] = {"base": {"fid2": 6.0}, "lfr 1": {"fid2": 5.0}, "lfr 2": {"fid2": 4.5}}
    fig = sweep_curves(sweep)
    traces = fig.data
    assert [t.name for t in traces] == [
        "LFR (Euler steps)",
        "LFR, FID2 (independent)",
        "DFR (Euler steps)",
        "base",
        "base, FID2",
    ]
    assert list(traces[1].y) == [5.0, 4.5] and traces[1].line.dash == "dot"
    assert list(traces[3].y) == [9.0, 9.0] and list(traces[4].x) == [1, 2]
    # the log axis holds the data and no more (it once ran to 10^18: annotations read in log units)
    lo, hi = fig.layout.yaxis.range
    assert 10**lo == pytest.approx(4.0 / 1.15) and 10**hi == pytest.approx(9.0 * 1.15)
    assert not fig.layout.annotations


def test_lfr_drift_stacks_the_base_then_each_nfe(tiny_bundle):
    pipe = Pipeline(tiny_bundle)
    rows = lfr_drift(pipe, n=6, seed=1, nfes=(1, 2))
    assert rows.shape == (3, 6, 1, 8, 8)
    # one batched base solve decodes every row: the same images as separate runs, to float rounding
    assert torch.allclose(rows[0], pipe.run(6, 1, Settings(mode="none")).base, atol=1e-5)
    s = Settings(mode="lfr", lfr_solver="euler", lfr_nfe=2)
    assert torch.allclose(rows[2], pipe.run(6, 1, s).final, atol=1e-5)
    assert not torch.allclose(rows[1], rows[2], atol=1e-3)


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


def test_overshoot_integrates_the_lfr_past_t1_from_the_same_draws_at_every_factor(tiny_bundle):
    from bfr_core.generative.ode import flow_map
    from bfr_core.views.sweep import lfr_overshoots

    pipe, score = Pipeline(tiny_bundle), MeanPixel()
    r = lfr_overshoots(pipe, score, n=12, seed=5, factors=(1.0, 1.5), alpha=0.2)
    assert [k for *_, k in r["factors"].values()] == [4, 6]  # Euler steps of 0.25 in t
    z, labels = pipe.prior(12, 5), pipe.labels_for(12, None)
    s = pipe.resolve(Settings(mode="none"))
    assert (
        torch.equal(r["base"][0], pipe.generate(z, labels, s).x)
        and r["base"][1] == score(r["base"][0], None)["fid"]
    )
    for f, k in ((1.0, 4), (1.5, 6)):
        z_f = flow_map(pipe.bundle.models["lfr"], z, labels, torch.full((12, 1), 0.2), 0.0, f, "euler", k).x
        images, quality, _ = r["factors"][f]
        assert torch.allclose(images, pipe.generate(z_f, labels, s).x, atol=1e-5)  # one batched decode
        assert quality == score(images, None)["fid"]
    trained = pipe.run(12, 5, Settings(mode="lfr", alpha=0.2, lfr_solver="euler", lfr_nfe=4)).final
    assert torch.allclose(r["factors"][1.0][0], trained, atol=1e-5)  # factor 1: the trained setting
    assert not torch.allclose(r["factors"][1.5][0], trained, atol=1e-3)
    with pytest.raises(ValueError, match="overshoot must be a multiple of 0.25 in 1..3.0, got 1.1"):
        lfr_overshoots(pipe, score, n=4, seed=0, factors=(1.0, 1.1))


def test_overshoot_command_stores_the_apps_view_and_the_app_reads_it_without_solving(
    tiny_bundle, tmp_path, monkeypatch
):
    import shutil

    from app import registry
    from bfr_core.cli.main import main
    from bfr_core.eval.evaluate import scorer_for
    from bfr_core.views.sweep import OVERSHOOT_FACTORS, lfr_overshoots, load_overshoot

    bundle = tmp_path / "digits"
    shutil.copytree(tiny_bundle, bundle)
    assert main(["--quiet", "overshoot", "--bundle", str(bundle), "--n", "12", "--seed", "1"]) == 0
    pipe = Pipeline(bundle)
    stored = load_overshoot(pipe, 12, 1, None)
    live = lfr_overshoots(pipe, scorer_for(pipe.bundle), 12, 1, OVERSHOOT_FACTORS)
    assert stored["metric"] == live["metric"] and stored["base"][1] == pytest.approx(
        live["base"][1], rel=1e-9
    )
    assert torch.allclose(stored["base"][0], live["base"][0][:12], atol=1e-6)
    for f in OVERSHOOT_FACTORS:
        (x, q, k), (x_live, q_live, k_live) = stored["factors"][f], live["factors"][f]
        assert (
            k == k_live and q == pytest.approx(q_live, rel=1e-9) and torch.allclose(x, x_live[:12], atol=1e-6)
        )
    assert load_overshoot(pipe, 12, 1, 0.2) is not None  # the LFR's default α: the stored view
    assert load_overshoot(pipe, 12, 1, 0.3) is None and load_overshoot(pipe, 200, 1, None) is None
    # the app: its view of 200 samples (seed 1) comes from the file, with no solve
    assert main(["--quiet", "overshoot", "--bundle", str(bundle)]) == 0
    caches = (registry._pipeline, registry.scorer, overrefine_views.cached_overshoots)
    monkeypatch.setattr(registry, "CHECKPOINTS", tmp_path)
    monkeypatch.setattr(
        overrefine_views, "lfr_overshoots", lambda *a, **k: pytest.fail("solved instead of read")
    )
    try:
        for cache in caches:
            cache.cache_clear()
        png, text = overrefine_views.overshoot("digits", 0.2, 1.75)
        assert "LFR to t = 1.75 (**extrapolated**" in text and "7 steps" in text
    finally:
        for cache in caches:
            cache.cache_clear()


def test_decoding_a_cached_latent_is_the_second_half_of_the_round_trip(tiny_bundle):
    from bfr_core.generative.ode import flow_map
    from bfr_core.views.roundtrip import decode_latent, round_trip

    pipe = Pipeline(tiny_bundle)
    z, y = pipe.bundle.latents["z"][:1], int(pipe.bundle.latents["y"][0])
    label = torch.tensor([y])
    rt = decode_latent(pipe, z, y, "euler", 8, alpha=0.3, lfr_nfe=3)
    assert rt.image is None and rt.reconstruction_error is None
    decoded = flow_map(pipe.bundle.models["base"], z, label, None, 0, 1, "euler", 8).x
    assert torch.allclose(rt.regenerated, decoded, atol=1e-5)  # decoded in one batch with the LFR's latent
    s = pipe.resolve(Settings("lfr", "euler", 8, lfr_solver="euler", lfr_nfe=3, alpha=0.3))
    moved = pipe.refine("latent", z, label, s, torch.Generator()).x
    assert torch.allclose(rt.lfr_regenerated, pipe.generate(moved, label, s).x, atol=1e-5)
    x = torch.zeros(1, *pipe.bundle.shape)
    with_image = decode_latent(pipe, z, y, "euler", 8, alpha=0.3, lfr_nfe=3, image=x)
    assert with_image.reconstruction_error == pytest.approx(float(rt.regenerated.abs().mean()))
    whole = round_trip(pipe, x, y, "rk4", 8, alpha=0.3)  # invert, then the same decoding
    half = decode_latent(pipe, whole.latent, y, "rk4", 8, alpha=0.3, image=x)
    assert torch.equal(whole.regenerated, half.regenerated) and whole.latent_stats == half.latent_stats


def test_examples_round_trip_through_the_cli_and_the_round_trip_inspector(tiny_bundle, tmp_path):
    import shutil

    from bfr_core.cli.main import main
    from bfr_core.infra.data import load_dataset
    from bfr_core.generative.ode import flow_map
    from bfr_core.generative.inversion import invert
    from bfr_core.views.roundtrip import bias_meter, load_examples, round_trip

    bundle = tmp_path / "digits"
    shutil.copytree(tiny_bundle, bundle)
    assert main(["--quiet", "examples", "--bundle", str(bundle), "--n", "10"]) == 0
    pipe = Pipeline(bundle)
    x, y = load_examples(pipe.bundle)
    ds = load_dataset("digits")
    assert x.shape == (10, 1, 8, 8) and torch.equal(y, ds.y_test[:10])
    assert torch.allclose(x, ds.x_test[:10], atol=1e-3)  # stored as float16
    rt = round_trip(pipe, x[:1], int(y[0]), "rk4", 20, alpha=0.2)
    base, label = pipe.bundle.models["base"], y[:1]
    z = invert(base, x[:1], label, "rk4", 20, desc=None)
    assert torch.equal(rt.latent, z) and rt.latent_stats["norm_per_dim"] == pytest.approx(
        float(norm_per_dim(z))
    )
    back = flow_map(base, z, label, None, 0.0, 1.0, "rk4", 20).x
    # G(z_b) is decoded in one batch with the LFR's latent: the same to float rounding (~1e-8 per pixel)
    assert rt.reconstruction_error == pytest.approx(float((back - x[:1]).abs().mean()), abs=1e-6)
    meter = bias_meter(pipe, x, y, "euler", 8, seed=4)
    z_all = invert(base, x, y, "euler", 8, desc=None)
    prior = torch.randn(z_all.shape, generator=torch.Generator().manual_seed(4))
    assert meter["energy_to_prior"] == pytest.approx(energy_distance(z_all, prior))
    assert meter["shell_width"] == pytest.approx(1 / 128**0.5)


def test_examples_of_the_wrong_shape_are_refused(tiny_bundle, tmp_path):
    import shutil

    from bfr_core.infra.checkpoint import CheckpointError
    from bfr_core.views.roundtrip import EXAMPLES_FILE, load_examples, save_examples

    bundle = tmp_path / "digits"
    shutil.copytree(tiny_bundle, bundle)
    save_examples(torch.zeros(4, 1, 28, 28), torch.zeros(4, dtype=torch.long), {}, bundle / EXAMPLES_FILE)
    with pytest.raises(CheckpointError, match="needs 'x' of shape"):
        load_examples(Pipeline(bundle).bundle)


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


def test_worth_its_nfe_compares_more_base_steps_with_each_refiner_on_the_same_draws(tiny_bundle, tmp_path):
    import json
    import shutil

    from bfr_core.views.budget import BUDGET_FILE, budget_rows, load_budget, worth_its_nfe
    from bfr_core.infra.checkpoint import CheckpointError
    from bfr_core.cli.main import main

    pipe, score = Pipeline(tiny_bundle), MeanPixel()
    assert list(budget_rows(pipe)) == ["base", "base +4", "base +8", "base +16", "lfr", "lfr_reflow", "dfr"]
    rows = {r["row"]: r for r in worth_its_nfe(pipe, score, n=30, seed=5)}
    more = pipe.run(30, 5, Settings(mode="none", base_solver="rk4", base_nfe=28))
    assert rows["base +8"]["total_nfe"] == 28 and rows["base +8"]["fid"] == score(more.base, None)["fid"]
    dfr = pipe.run(30, 5, Settings(mode="dfr"))
    assert rows["dfr"]["fid"] == score(dfr.final, None)["fid"] and rows["dfr"]["extra_nfe"] == 4
    assert (
        rows["lfr_reflow"]["what"] == "base rk4x20 + lfr-reflow eulerx1"
        and rows["lfr_reflow"]["total_nfe"] == 21
    )
    bundle = tmp_path / "digits"
    shutil.copytree(tiny_bundle, bundle)
    assert main(["--quiet", "worth-nfe", "--bundle", str(bundle), "--n", "20", "--seed", "1"]) == 0
    stored = load_budget(Pipeline(bundle).bundle)
    assert stored["n"] == 20 and stored["seed"] == 1 and stored["rows"][0]["row"] == "base"
    (bundle / BUDGET_FILE).write_text(json.dumps({**stored, "rows": [{"row": 1}]}))
    with pytest.raises(CheckpointError, match="not a valid stored equal-NFE comparison"):
        load_budget(Pipeline(bundle).bundle)


def test_the_equal_nfe_view_names_the_refiners_that_beat_every_base_only_setting():

    fig, text = overrefine_views.worth_nfe("digits")
    stored = __import__("json").loads(open("checkpoints/digits/worth_nfe.json").read())
    best = min(r["fid"] for r in stored["rows"] if r["row"].startswith("base"))
    better = [r["row"] for r in stored["rows"] if not r["row"].startswith("base") and r["fid"] < best]
    assert f"{best:.2f}" in text and better and all(b.replace("_", " ").upper() in text for b in better)
    assert [t.name for t in fig.data][:2] == ["more base steps", "default base + a refiner"]
    with pytest.raises(Exception, match="stores no equal-NFE comparison"):
        overrefine_views.worth_nfe("moons")


def test_the_alpha_map_view_draws_the_stored_grid_outlines_the_best_cell_and_explains_a_fixed_alpha():

    fig, text = overrefine_views.alpha_map("digits")
    m_file = __import__("json").loads(open("checkpoints/digits/alpha_nfe.json").read())
    m = m_file["map"]
    heat = fig.data[0]
    assert [list(r) for r in heat.z] == m["quality"] and list(heat.y) == [f"{a:g}" for a in m["alphas"]]
    best = m["best"]
    assert best["quality"] == min(min(r) for r in m["quality"])
    assert f"α = {best['alpha']:g} with {best['nfe']} LFR Euler step(s)" in text
    assert f"stored by `{m_file['command']}`" in text  # beside the chart
    # the chart has half of a 1,024 px page: its title's lines are short enough to be read whole there
    lines = fig.layout.title.text.replace("<sup>", "").replace("</sup>", "").split("<br>")
    assert len(lines) == 2 and max(map(len, lines)) <= 60, lines
    assert f"best α {best['alpha']:g} at NFE {best['nfe']}" in lines[1]
    box = fig.layout.shapes[0]  # the outline sits on the best cell
    assert (box.x0 + box.x1) / 2 == m["nfes"].index(best["nfe"])
    assert (box.y0 + box.y1) / 2 == m["alphas"].index(best["alpha"])
    assert (heat.zmin, heat.zmax) == (best["quality"], max(max(r) for r in m["quality"]))  # digits beats base
    assert f"base {m['base']:.3g}" in heat.colorbar.ticktext
    with pytest.raises(Exception, match="trained at one fixed α, so it has no α axis"):
        overrefine_views.alpha_map("mnist")


def test_an_alpha_map_whose_every_cell_is_worse_than_the_base_has_no_bright_cell():
    """cifar10-cpu: every α × NFE cell is worse than the base, so the colour scale starts at the base's value
    (bright) and the best cell sits well into the dark end, as the text beside it says."""
    fig, text = overrefine_views.alpha_map("cifar10-cpu")
    m = __import__("json").loads(open("checkpoints/cifar10-cpu/alpha_nfe.json").read())["map"]
    heat = fig.data[0]
    assert m["best"]["quality"] > m["base"] and heat.zmin == m["base"]
    assert list(heat.colorbar.ticktext) == [f"base {m['base']:.3g}", f"{heat.zmax:.3g}"]  # one label each
    assert (m["best"]["quality"] - heat.zmin) / (heat.zmax - heat.zmin) > 0.15  # not the bright end
    assert "No cell beats the base" in text


def test_the_alpha_map_calls_over_refinement_only_beyond_the_noise_floor(monkeypatch):

    def stored(last):  # one α: best at 8 steps, then 10 steps scoring ``last``
        row = [9.0, 6.0, 5.0, last]
        best = {"alpha": 0.5, "nfe": 8, "quality": 5.0}
        return {
            "n": 1000,
            "command": "bfr sweep --alphas 0.5",
            "map": {
                "metric": "fid",
                "alphas": [0.5],
                "nfes": [1, 4, 8, 10],
                "base": 9.5,
                "quality": [row],
                "second": None,
                "best": best,
            },
        }

    monkeypatch.setattr(overrefine_views, "load_alpha_map", lambda bundle: stored(5.05))
    assert "no over-refinement beyond noise" in overrefine_views.alpha_map("digits")[1]  # +1%: within 2%
    monkeypatch.setattr(overrefine_views, "load_alpha_map", lambda bundle: stored(5.5))
    assert "10 steps give 5.5: more NFE for less, over-refinement" in overrefine_views.alpha_map("digits")[1]
    monkeypatch.undo()
    text = overrefine_views.alpha_map("mnist-alpha")[1]  # the shipped MNIST map: flat from 8 to 10 steps
    assert "α = 0.5 with 8 LFR Euler step(s), FID 5.69 against the base's 9.15" in text
    assert "no over-refinement beyond noise" in text


def test_a_stored_sweep_is_validated_before_it_is_shown(tmp_path):
    import json
    from types import SimpleNamespace

    from bfr_core.infra.checkpoint import CheckpointError
    from bfr_core.views.sweep import SWEEP_FILE, load_sweep

    bundle = SimpleNamespace(path=tmp_path)
    assert load_sweep(bundle) is None  # none stored: the view measures live
    good = {"n": 2000, "command": "bfr sweep", "alpha": 0.2, "sweep": {"base": 9.0, "lfr": [[1, 8.0]]}}
    (tmp_path / SWEEP_FILE).write_text(json.dumps(good))
    assert load_sweep(bundle) == good
    for bad in (
        {**good, "sweep": {"base": "9"}},
        {**good, "alpha": "x"},
        {k: v for k, v in good.items() if k != "n"},
    ):
        (tmp_path / SWEEP_FILE).write_text(json.dumps(bad))
        with pytest.raises(CheckpointError, match=f"{SWEEP_FILE}: not a valid stored NFE sweep"):
            load_sweep(bundle)
    (tmp_path / SWEEP_FILE).write_text("{not json")
    with pytest.raises(CheckpointError, match="not a valid stored NFE sweep"):
        load_sweep(bundle)


def test_a_file_hash_is_kept_per_version_of_the_file(tmp_path):
    import hashlib
    import os

    from bfr_core.views.sweep import file_sha256

    f = tmp_path / "lfr.safetensors"
    f.write_bytes(b"first")
    assert file_sha256(f) == hashlib.sha256(b"first").hexdigest() == file_sha256(f)
    f.write_bytes(b"other")  # the same size: the modification time tells the versions apart
    os.utime(f, ns=(f.stat().st_atime_ns, f.stat().st_mtime_ns + 1_000_000))
    assert file_sha256(f) == hashlib.sha256(b"other").hexdigest()
