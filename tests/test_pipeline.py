from pathlib import Path

import pytest
import torch

from bfr_core.infra.checkpoint import CheckpointError
from bfr_core.eval.evaluate import evaluate_bundle
from bfr_core.bundle import Bundle
from bfr_core.pipeline import Pipeline, Settings


@pytest.fixture(scope="module")
def pipe(tiny_bundle):
    return Pipeline(Bundle(tiny_bundle))


def test_stages_shapes_and_nfe(pipe):
    st = pipe.run(12, seed=3, settings=Settings(mode="lfr+dfr", lfr_nfe=4, dfr_solver="euler", dfr_nfe=2))
    for x in (st.z, st.z_refined, st.base, st.x_from_refined, st.final):
        assert x.shape == (12, 1, 8, 8) and torch.isfinite(x).all()
    assert st.nfe == {"base": 20, "lfr": 4, "dfr": 2}
    assert st.labels.tolist() == [i % 10 for i in range(12)]


def test_same_seed_is_bit_identical_and_stages_compose(pipe):
    a = pipe.run(8, seed=7, settings=Settings(mode="lfr+dfr"))
    b = pipe.run(8, seed=7, settings=Settings(mode="lfr+dfr"))
    assert torch.equal(a.final, b.final)
    none = pipe.run(8, seed=7, settings=Settings(mode="none"))
    assert torch.equal(none.base, a.base) and torch.equal(none.final, none.base)
    dfr_only = pipe.run(8, seed=7, settings=Settings(mode="dfr"))
    s = dfr_only.settings
    assert torch.equal(dfr_only.final, pipe.refine("data", a.base, a.labels, s, torch.Generator()).x)


def test_alpha_changes_the_lfr_latents(pipe):
    lo = pipe.run(4, 0, Settings(mode="lfr", alpha=0.0)).z_refined
    hi = pipe.run(4, 0, Settings(mode="lfr", alpha=0.5)).z_refined
    assert (lo - hi).abs().max() > 1e-4


def test_reflow_variant_defaults_to_one_euler_step(pipe):
    st = pipe.run(4, 0, Settings(mode="lfr", lfr_variant="reflow"))
    assert st.nfe["lfr"] == 1 and st.settings.lfr_solver == "euler"


@pytest.mark.parametrize(
    "settings,msg",
    [
        (Settings(mode="magic"), "unknown mode 'magic'"),
        (Settings(lfr_nfe=0), "lfr_nfe|nfe must be"),
        (Settings(dfr_solver="rk4", dfr_nfe=6), "not a multiple of 4"),
        (Settings(alpha=0.9), r"alpha must lie in \[0.0, 0.5\]"),
        (Settings(base_solver="dopri5"), "base_solver must be one of"),
    ],
)
def test_bad_settings_are_refused_before_work(pipe, settings, msg):
    with pytest.raises(ValueError, match=msg):
        pipe.run(4, 0, settings)


@pytest.mark.parametrize("n", [0, 10**6, 2.5, True])
def test_bad_sample_counts(pipe, n):
    with pytest.raises(ValueError, match="number of samples"):
        pipe.run(n, 0)


def test_class_label(pipe):
    assert pipe.run(3, 0, Settings(mode="none"), label=4).labels.tolist() == [4, 4, 4]
    with pytest.raises(ValueError, match=r"class must be in 0..9"):
        pipe.run(3, 0, Settings(mode="none"), label=10)


def test_evaluate_rows(tiny_bundle):
    rows = evaluate_bundle(Bundle(tiny_bundle), 200, 0, progress=False)
    assert {"base", "lfr", "lfr-euler1", "lfr-reflow-euler1", "dfr", "lfr+dfr", "reference-train"} <= set(
        rows
    )
    for name, r in rows.items():
        assert {
            "fid",
            "precision",
            "recall",
            "density",
            "coverage",
            "nfe",
            "solver",
            "memorisation_ratio",
        } <= set(r)
    assert (
        rows["lfr"]["extra_nfe"] == 4 and rows["lfr-euler1"]["extra_nfe"] == 1 and rows["base"]["nfe"] == 20
    )


def test_shipped_digits_bundle_draws_the_requested_digits():
    from bfr_core.eval.classifier import batch_summary

    pipe = Pipeline("checkpoints/digits")
    assert pipe.bundle.meta["classifier"]["test_accuracy"] > 0.97
    st = pipe.run(300, 0, Settings(mode="lfr+dfr"))
    clf = pipe.bundle.models["classifier"]
    for stage in (st.base, st.x_from_refined, st.final):
        assert batch_summary(clf, stage, st.labels)["accuracy"] > 0.8
    for name in ("base", "lfr", "lfr_reflow", "dfr", "classifier"):
        meta = pipe.bundle.meta[name]
        assert meta["command"].startswith("python -m bfr_core") and meta["steps"] > 0
        assert meta.get("wall_s", 0) > 0 or "snapshot_of_steps" in meta  # a snapshot of a GPU run: no wall_s


def test_snapshot_is_the_earlier_checkpoint_of_the_same_run(tiny_bundle, tmp_path):
    """--snapshot-at 30 during a 60-step run equals a separate 30-step run, bit for bit."""
    from bfr_core.infra.checkpoint import load_tensors
    from bfr_core.cli.main import main

    assert (
        main(["--quiet", "train-base", "--dataset", "digits", "--out", str(tmp_path), "--steps", "30"]) == 0
    )
    snap, meta = load_tensors(tiny_bundle / "snapshots" / "base_step30" / "base.safetensors")
    short, _ = load_tensors(tmp_path / "base.safetensors")
    assert meta["steps"] == 30 and meta["role"] == "base"
    assert snap.keys() == short.keys() and all(torch.equal(snap[k], short[k]) for k in snap)


def test_with_model_swaps_one_model_and_checks_it(tiny_bundle, pipe):
    early = Pipeline(
        pipe.bundle.with_model("base", tiny_bundle / "snapshots" / "base_step30" / "base.safetensors")
    )
    assert early.bundle.models["dfr"] is pipe.bundle.models["dfr"]  # refiners reused, not retrained
    assert pipe.bundle.meta["base"]["steps"] == 60 and early.bundle.meta["base"]["steps"] == 30
    a, b = pipe.run(8, 0, Settings(mode="lfr+dfr")), early.run(8, 0, Settings(mode="lfr+dfr"))
    assert torch.equal(a.z_refined, b.z_refined) and not torch.equal(a.base, b.base)
    with pytest.raises(ValueError, match="model name must be one of"):
        pipe.bundle.with_model("decoder", tiny_bundle / "dfr.safetensors")
    with pytest.raises(CheckpointError, match="data shape"):  # a moons model cannot refine digits
        pipe.bundle.with_model("dfr", "checkpoints/moons/dfr.safetensors")


def test_shipped_mnist_bundle_is_complete_and_draws_the_requested_digits():
    from bfr_core.eval.classifier import batch_summary

    root = Path("checkpoints/mnist")
    pipe = Pipeline(root)
    assert {"base", "lfr", "lfr_reflow", "dfr", "classifier"} <= set(pipe.bundle.models)
    assert pipe.bundle.meta["latents"]["n"] >= 10000 and pipe.bundle.latents["z"].shape[1:] == (1, 28, 28)
    for f in root.rglob("*.safetensors"):
        assert f.stat().st_size < 20 * 2**20, f
    for name in ("base", "lfr", "lfr_reflow", "dfr", "classifier"):
        meta = pipe.bundle.meta[name]
        assert meta["command"].startswith("python -m bfr_core") and meta["steps"] > 0
        assert meta.get("wall_s", 0) > 0 or "snapshot_of_steps" in meta  # a snapshot of a GPU run: no wall_s
    st = pipe.run(40, 0, Settings(mode="lfr+dfr"))
    clf = pipe.bundle.models["classifier"]
    for stage in (st.base, st.x_from_refined, st.final):
        assert batch_summary(clf, stage, st.labels)["accuracy"] > 0.85


def test_shipped_mnist_alpha_bundle_maps_its_alpha_conditioned_lfr():
    """mnist-alpha: mnist's base and everything else but an α-conditioned LFR made by the CLI, with its
    α × NFE map and a latent map of every α and NFE of the sliders stored."""
    from bfr_core.infra.checkpoint import load_tensors
    from bfr_core.views.latent_view import slider_settings
    from bfr_core.views.sweep import load_alpha_map

    root = Path("checkpoints/mnist-alpha")
    pipe = Pipeline(root)
    assert (
        "lfr" not in pipe.bundle.shared_files() and pipe.bundle.shared_files()["base"].parent.name == "mnist"
    )
    assert pipe.bundle.alpha_range() == (0.0, 0.5)
    card = pipe.bundle.meta["lfr"]
    assert card["command"].startswith("python -m bfr_core") and card["steps"] == 2000
    m = load_alpha_map(pipe.bundle)["map"]
    assert m["alphas"] == [0.05, 0.1, 0.2, 0.3, 0.4, 0.5] and len(m["quality"]) == 6
    assert m["second"] is not None and all(len(row) == len(m["nfes"]) for row in m["second"]["quality"])
    _, meta = load_tensors(root / "latent_map.safetensors")
    assert len(meta["settings"]) == len(slider_settings(pipe)) == 11 * 10 and meta["points"] == 400


def test_shipped_mnist_wide_bundle_has_its_wider_refiners_and_stored_views():
    """mnist-wide: mnist's base, latents, DFR and extractors (shared.json) with GPU-trained wider LFRs, every
    model made by the CLI with its device and steps recorded, and the views the app shows stored."""
    from bfr_core.views.budget import load_budget
    from bfr_core.infra.checkpoint import load_tensors
    from bfr_core.eval.classifier import batch_summary
    from bfr_core.views.sweep import load_sweep

    root = Path("checkpoints/mnist-wide")
    pipe = Pipeline(root)
    assert set(pipe.bundle.shared_files()) == {
        "base",
        "latents",
        "dfr",  # mnist's 64-channel DFR
        "classifier",
        "classifier2",
        "reference",
        "examples",
        "inception_reference",  # mnist's FID-Inception statistics
    }
    width = {name: pipe.bundle.meta[name]["net"]["channels"] for name in ("lfr", "lfr_reflow", "dfr")}
    assert width == {"lfr": 64, "lfr_reflow": 64, "dfr": 64}
    for name in ("lfr", "lfr_reflow", "dfr"):
        meta = pipe.bundle.meta[name]
        assert meta["command"].startswith("python -m bfr_core") and meta["steps"] > 0 and meta["device"]
    assert pipe.bundle.meta["lfr_reflow"]["teacher"]["channels"] == 64
    for f in root.rglob("*.safetensors"):
        assert f.stat().st_size < 20 * 2**20, f
    assert load_sweep(pipe.bundle)["n"] == 2000 and load_budget(pipe.bundle)["n"] >= 500
    _, map_meta = load_tensors(root / "latent_map.safetensors")
    default = map_meta["settings"][0]  # the default setting first, every slider NFE after it
    assert (default["lfr_solver"], default["lfr_nfe"], default["shown"]) == ("rk4", 4, map_meta["points"])
    assert sorted(s["lfr_nfe"] for s in map_meta["settings"]) == list(range(1, 11))
    st = pipe.run(40, 0, Settings(mode="lfr+dfr"))
    clf = pipe.bundle.models["classifier"]
    for stage in (st.base, st.x_from_refined, st.final):
        assert batch_summary(clf, stage, st.labels)["accuracy"] > 0.85


def test_bundles_share_feature_extractors_through_shared_json(tiny_bundle, tmp_path):
    import json
    import shutil

    sibling = tmp_path / "leaky"
    sibling.mkdir()
    shutil.copy(tiny_bundle / "base.safetensors", sibling)
    shutil.copytree(tiny_bundle, tmp_path / "digits")
    (sibling / "shared.json").write_text(json.dumps({"classifier": "digits"}))
    b = Bundle(sibling)
    own = Bundle(tiny_bundle).models["classifier"].state_dict()
    assert all(torch.equal(v, b.models["classifier"].state_dict()[k]) for k, v in own.items())
    for spec, msg in (
        ({"classifier": "../digits"}, "must name a sibling bundle directory"),
        ({"notes": "digits"}, "only base, .* examples can be shared, not 'notes'"),
        ({"classifier2": "digits"}, "classifier2.safetensors is missing from bundle 'digits'"),
    ):
        (sibling / "shared.json").write_text(json.dumps(spec))
        with pytest.raises(CheckpointError, match=msg):
            Bundle(sibling)


def test_a_bundle_card_samples_a_shared_base_differently(tiny_bundle, tmp_path):
    import json
    import shutil

    shutil.copytree(tiny_bundle, tmp_path / "digits")
    coarse = tmp_path / "digits-euler2"
    coarse.mkdir()
    (coarse / "shared.json").write_text(json.dumps({"base": "digits", "lfr": "digits", "latents": "digits"}))
    card = {"description": "discretization: 2 Euler steps", "base_sampling": {"solver": "euler", "nfe": 2}}
    (coarse / "bundle.json").write_text(json.dumps(card))
    b = Bundle(coarse)
    assert b.description == card["description"] and set(b.models) == {"base", "lfr"}
    assert torch.equal(b.latents["z"], Bundle(tiny_bundle).latents["z"])
    s = Pipeline(b).resolve(Settings(mode="lfr"))
    assert (s.base_solver, s.base_nfe) == ("euler", 2)
    own = Pipeline(tiny_bundle)
    z = own.prior(8, 0)
    labels = own.labels_for(8, None)
    coarse_x = Pipeline(b).run(8, 0, Settings(mode="none")).base
    assert torch.allclose(coarse_x, own.generate(z, labels, own.resolve(replace_sampling("euler", 2))).x)
    for bad, msg in (
        ({"base_sampling": {"solver": "rk4", "nfe": 3}}, "'base_sampling' must be"),
        ({"base_sampling": {"solver": "dopri5", "nfe": 8}}, "'base_sampling' must be"),
        ({"description": "two\nlines"}, "one line of at most 200 characters"),
        ({"weights": "x"}, "holds only base_sampling, description, dfr_clip"),
    ):
        (coarse / "bundle.json").write_text(json.dumps(bad))
        with pytest.raises(CheckpointError, match=msg):
            Bundle(coarse)
    (coarse / "bundle.json").write_text("{not json")
    with pytest.raises(CheckpointError, match="not valid JSON"):
        Bundle(coarse)


def replace_sampling(solver: str, nfe: int) -> Settings:
    return Settings(mode="none", base_solver=solver, base_nfe=nfe)


def test_settings_set_one_stage_by_a_typed_method_not_by_built_names():
    s = Settings(mode="lfr", alpha=0.3)
    t = s.with_stage("lfr", "euler", 2, "reflow")
    assert (t.lfr_solver, t.lfr_nfe, t.lfr_variant, t.alpha) == ("euler", 2, "reflow", 0.3)
    assert t.solver("lfr") == ("euler", 2) and s.solver("lfr") == (None, None)  # a copy: s unchanged
    assert s.with_stage("dfr", "rk4", 8).solver("dfr") == ("rk4", 8)
    with pytest.raises(ValueError, match="stage must be one of base, lfr, dfr"):
        s.with_stage("base", "rk4", 8, "ode")
