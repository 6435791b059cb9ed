"""The over-refinement stop rule (bfr_core.views.stop_rule) on small cases: a candidate counts only when
both metrics gain on every seed beyond the default's spread; the rule then takes the largest summed gain; the
stored form is what the pipeline gives on the same draws; the app reads it and ignores a broken file."""

import json

import pytest

from bfr_core.infra.checkpoint import CheckpointError
from bfr_core.pipeline import Pipeline, Settings
from bfr_core.views.stop_rule import (
    CANDIDATES,
    PAPER_DEFAULT,
    STOP_RULE_FILE,
    LfrEnd,
    choose,
    load_stop_rule,
    measure,
    paired_verdict,
    summary,
)

METRICS = ("fid", "fid2")


def gains(fid: float, fid2: float, counts: bool) -> dict:
    return {"fid": {"mean_gain": fid}, "fid2": {"mean_gain": fid2}, "counts": counts}


def test_the_rule_keeps_the_default_unless_a_candidate_counts_on_both_metrics():
    assert choose({}, METRICS) == PAPER_DEFAULT.name == "rk4x4 to t=1"
    assert choose({"a": gains(5.0, 5.0, False)}, METRICS) == PAPER_DEFAULT.name
    assert choose({"a": gains(2.109, 2.479, True), "b": gains(0.957, 2.474, True)}, METRICS) == "a"
    assert choose({"a": gains(0.5, 0.5, True), "b": gains(1.0, 0.2, True)}, METRICS) == "b"
    assert choose({"a": gains(5.0, 5.0, False)}, METRICS, default="1") == "1"


def test_a_candidate_counts_when_every_seed_gains_and_the_mean_gain_exceeds_the_defaults_spread():
    default = [{"fid": 9.0, "fid2": 9.0}, {"fid": 8.0, "fid2": 9.5}]  # spread: sd 0.707 / 0.354
    better = [{"fid": 7.0, "fid2": 8.0}, {"fid": 7.5, "fid2": 8.4}]  # gains 2, 0.5 / 1, 1.1
    one_seed_loses = [{"fid": 9.5, "fid2": 7.0}, {"fid": 7.0, "fid2": 7.0}]
    small = [{"fid": 8.9, "fid2": 8.9}, {"fid": 7.9, "fid2": 9.4}]  # gains 0.1 on every seed < spread
    v = paired_verdict(default, better, METRICS)
    assert v["fid"] == {"gains": [2.0, 0.5], "mean_gain": 1.25, "default_spread": 0.707, "counts": True}
    assert v["fid2"]["mean_gain"] == 1.05 and v["counts"]
    assert not paired_verdict(default, one_seed_loses, METRICS)["counts"]
    assert not paired_verdict(default, small, METRICS)["counts"]


def test_measure_scores_the_pipelines_own_images_on_the_same_draws(tiny_bundle):
    pipe = Pipeline(tiny_bundle)

    def score(x):  # an exact stand-in for a metric: the images' mean and their mean square
        x = x.double()
        return {"fid": float(x.mean()), "fid2": float((x**2).mean())}

    ends = (PAPER_DEFAULT, LfrEnd("euler", 5, 1.25))
    found = measure(pipe, score, 12, [3, 4], ends)
    for k, seed in enumerate((3, 4)):
        base = pipe.run(12, seed, Settings(mode="none")).base
        lfr = pipe.run(12, seed, Settings(mode="lfr", lfr_solver="rk4", lfr_nfe=4)).x_from_refined
        assert found["scores"]["base"][k] == pytest.approx({m: round(v, 3) for m, v in score(base).items()})
        assert found["scores"]["rk4x4 to t=1"][k]["fid"] == pytest.approx(
            round(score(lfr)["fid"], 3), abs=2e-3
        )
    v = paired_verdict(found["scores"]["rk4x4 to t=1"], found["scores"]["eulerx5 to t=1.25"], METRICS)
    got = found["verdicts"]["eulerx5 to t=1.25"]  # judged on unrounded scores: gains within rounding
    assert all(got[m]["mean_gain"] == pytest.approx(v[m]["mean_gain"], abs=2e-3) for m in METRICS)
    assert found["choice"] == choose(found["verdicts"], METRICS)
    with pytest.raises(ValueError, match="first end must be the paper's default"):
        measure(pipe, score, 4, [0, 1], CANDIDATES[1:])


def test_the_app_reads_a_stored_rule_and_refuses_a_broken_file_by_name(tmp_path):
    class Stub:
        path = tmp_path

    assert load_stop_rule(Stub) is None
    for broken in (b"{not json", b"\xff\xfe", b'{"scores": {}, "choice": "x", "default": "y"}'):
        (tmp_path / STOP_RULE_FILE).write_bytes(broken)
        with pytest.raises(CheckpointError, match="stop_rule.json: not a valid stored stop rule"):
            load_stop_rule(Stub)
    stored = {
        "command": "bfr stop-rule",
        "n": 1000,
        "seeds": [0, 1],
        "metrics": ["fid"],
        "default": "rk4x4 to t=1",
        "choice": "eulerx5 to t=1.25",
        "scores": {
            "rk4x4 to t=1": [{"fid": 9.0}, {"fid": 8.0}],
            "eulerx5 to t=1.25": [{"fid": 7.0}, {"fid": 6.0}],
        },
    }
    (tmp_path / STOP_RULE_FILE).write_text(json.dumps(stored))
    assert load_stop_rule(Stub) == stored
    text = summary(stored)
    assert "**LFR eulerx5 to t=1.25** (6.50 ± 0.71)" in text and "LFR rk4x4 to t=1 (8.50 ± 0.71)" in text
    assert (
        "better on its one metric on every seed" in text and "chosen on the held-out training images" in text
    )
    kept = summary(stored | {"choice": "rk4x4 to t=1"})
    assert "keep the paper's default, **LFR rk4x4 to t=1** (8.50 ± 0.71)" in kept


def test_the_cli_stores_the_rule_in_the_bundle(tiny_bundle, tmp_path, capsys):
    from bfr_core.cli.main import main

    import shutil

    bundle = tmp_path / "digits"
    shutil.copytree(tiny_bundle, bundle)
    assert main(["--quiet", "stop-rule", "--bundle", str(bundle), "--n", "16", "--seeds", "0", "1"]) == 0
    stored = load_stop_rule(type("B", (), {"path": bundle}))
    assert stored["seeds"] == [0, 1] and stored["n"] == 16 and stored["default"] == PAPER_DEFAULT.name
    assert set(stored["scores"]) == {"base", *(e.name for e in CANDIDATES)}
    assert f"the stop rule picks LFR {stored['choice']}" in capsys.readouterr().out
    assert main(["--quiet", "stop-rule", "--bundle", str(bundle), "--seeds", "0", "0"]) == 2
    assert "at least two different seeds" in capsys.readouterr().err


def test_the_summary_says_when_the_base_without_an_lfr_beats_every_end():
    """The rule picks among LFR ends; where the base scores better than its choice on every metric (as on
    cifar10-cpu), the summary says the right stop is no LFR; where one metric prefers the LFR, it does not."""

    def runs(fid, fid2):
        return [{"fid": fid, "fid2": fid2}, {"fid": fid + 0.2, "fid2": fid2 + 0.2}]

    stored = {
        "metrics": ["fid", "fid2"],
        "n": 300,
        "seeds": [0, 1],
        "default": "rk4x4 to t=1",
        "choice": "rk4x4 to t=1",
        "scores": {"base": runs(24.9, 6.6), "rk4x4 to t=1": runs(31.2, 8.3)},
    }
    assert "the right stop is no LFR" in summary(stored) and "(25.00 ± 0.14 / 6.70 ± 0.14)" in summary(stored)
    stored["scores"]["rk4x4 to t=1"] = runs(31.2, 6.0)  # FID2 prefers the LFR
    assert "no LFR" not in summary(stored)
    del stored["scores"]["base"]
    assert "no LFR" not in summary(stored)
