"""bench/select_refiner.py scores candidates against training images, consistently with the pipeline."""

import json

from bench import select_refiner
from bfr_core.infra.data import load_dataset
from bfr_core.eval.metrics import features_and_probs, fid
from bfr_core.pipeline import Pipeline, Settings


def test_candidate_fid_is_the_pipelines_dfr_scored_on_training_images(tiny_bundle, tmp_path):
    out = tmp_path / "sel.json"
    dfr = tiny_bundle / "dfr.safetensors"
    select_refiner.main(
        ["--bundle", str(tiny_bundle), "--candidate", str(dfr), "--n", "40", "--out", str(out)]
    )
    result = json.loads(out.read_text())
    pipe = Pipeline(tiny_bundle)
    st = pipe.run(40, 7, Settings(mode="dfr"), z=pipe.prior(40, 7))
    classifier = pipe.bundle.models["classifier"]
    ref = features_and_probs(classifier, load_dataset("digits").x_train[-select_refiner.VALIDATION :])[0]
    assert result["base_fid"] == fid(ref, features_and_probs(classifier, st.base)[0])
    assert (
        abs(result["candidates"][str(dfr)]["fid"] - fid(ref, features_and_probs(classifier, st.final)[0]))
        < 1e-6
    )
    assert result["reference"] == "last 10000 training images"


def test_lfr_candidate_fid_is_the_pipelines_lfr_images(tiny_bundle, tmp_path):
    """An LFR candidate refines the prior draws and the base regenerates from them."""
    out = tmp_path / "sel_lfr.json"
    lfr = tiny_bundle / "lfr.safetensors"
    select_refiner.main(
        [
            "--bundle",
            str(tiny_bundle),
            "--role",
            "lfr",
            "--candidate",
            str(lfr),
            "--n",
            "40",
            "--out",
            str(out),
        ]
    )
    result = json.loads(out.read_text())
    pipe = Pipeline(tiny_bundle)
    st = pipe.run(40, 7, Settings(mode="lfr"), z=pipe.prior(40, 7))
    classifier = pipe.bundle.models["classifier"]
    ref = features_and_probs(classifier, load_dataset("digits").x_train[-select_refiner.VALIDATION :])[0]
    row = result["candidates"][str(lfr)]
    assert abs(row["fid"] - fid(ref, features_and_probs(classifier, st.final)[0])) < 1e-6
    assert (result["role"], row["alpha"], row["solver"]) == ("lfr", st.settings.alpha, "rk4 NFE 4")


def test_settings_score_each_candidate_at_each_solver(tiny_bundle, tmp_path):
    """--setting euler:2 runs the DFR at 2 Euler steps: the pipeline's images at those settings."""
    out = tmp_path / "sel_setting.json"
    dfr = tiny_bundle / "dfr.safetensors"
    argv = ["--bundle", str(tiny_bundle), "--candidate", str(dfr), "--n", "40", "--out", str(out)]
    select_refiner.main([*argv, "--setting", "euler:2", "--setting", "rk4:4"])
    rows = json.loads(out.read_text())["candidates"]
    assert list(rows) == [f"{dfr} @ euler 2", f"{dfr} @ rk4 4"]
    pipe = Pipeline(tiny_bundle)
    st = pipe.run(40, 7, Settings(mode="dfr", dfr_solver="euler", dfr_nfe=2), z=pipe.prior(40, 7))
    classifier = pipe.bundle.models["classifier"]
    ref = features_and_probs(classifier, load_dataset("digits").x_train[-select_refiner.VALIDATION :])[0]
    got = rows[f"{dfr} @ euler 2"]
    assert got["solver"] == "euler NFE 2"
    assert abs(got["fid"] - fid(ref, features_and_probs(classifier, st.final)[0])) < 1e-6


def test_a_malformed_setting_is_refused_by_name():
    import argparse

    import pytest

    assert select_refiner.solver_setting("midpoint:6") == ("midpoint", 6)
    for bad in ("rk4", "rk5:4", "rk4:0", "rk4:x"):
        with pytest.raises(argparse.ArgumentTypeError, match="a setting is SOLVER:NFE"):
            select_refiner.solver_setting(bad)
