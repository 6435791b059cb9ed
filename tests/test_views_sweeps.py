"""The Over-refinement tab's stored analyses: the NFE sweep, the α × NFE map, the LFR drift, the overshoot
past t = 1 and the equal-NFE comparison, each against a deterministic stand-in metric."""

import pytest
import torch

from app.tabs import overrefine_views
from bfr_core.pipeline import Pipeline, Settings
from bfr_core.views.sweep import alpha_nfe_map, lfr_drift, load_alpha_map, nfe_sweep


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


def test_lfr_drift_stacks_the_base_then_each_nfe(tiny_bundle):
    pipe = Pipeline(tiny_bundle)
    rows = lfr_drift(pipe, n=6, seed=1, nfes=(1, 2))
    assert rows.shape == (3, 6, 1, 8, 8)
    # one batched base solve decodes every row: the same images as separate runs, to float rounding
    assert torch.allclose(rows[0], pipe.run(6, 1, Settings(mode="none")).base, atol=1e-5)
    s = Settings(mode="lfr", lfr_solver="euler", lfr_nfe=2)
    assert torch.allclose(rows[2], pipe.run(6, 1, s).final, atol=1e-5)
    assert not torch.allclose(rows[1], rows[2], atol=1e-3)


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
