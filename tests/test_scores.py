"""Quality and diversity on the Refine tab: stored scores found by what ran, the within-class spread by its
formula, and warnings where a setting is known to be bad."""

import json

import pytest
import torch

from app import registry
from app.tabs import refine
from bfr_core.eval.evaluate import describe
from bfr_core.eval.metrics import within_class_spread
from bfr_core.pipeline import Pipeline, Settings
from bfr_core.views.scores import EVALUATE_FILE, QUALITY, base_scores, stage_nfe, stored_scores, verdict
from conftest import ROOT


def test_within_class_spread_is_the_mean_distance_between_samples_of_one_class():
    x = torch.tensor([[0.0, 0.0], [3.0, 4.0], [10.0, 0.0], [10.0, 1.0]])
    assert within_class_spread(x, torch.tensor([0, 0, 1, 1])) == pytest.approx((5 + 1) / 2)
    assert within_class_spread(x) == pytest.approx(torch.pdist(x.double()).mean().item())
    assert within_class_spread(x, torch.tensor([0, 1, 2, 3])) is None  # no pair of one class


def test_a_setting_finds_its_own_stored_row_by_describing_what_ran():
    pipe = Pipeline(ROOT / "checkpoints" / "mnist")
    rows = json.loads((pipe.bundle.path / EVALUATE_FILE).read_text())
    scores = stored_scores(pipe)
    s = pipe.resolve(Settings(mode="lfr", lfr_solver="euler", lfr_nfe=1))
    assert scores[describe(s, stage_nfe(s))]["fid"] == rows["lfr-euler1"]["fid"]
    assert base_scores(pipe)["fid2"] == rows["base"]["fid2"]
    s = pipe.resolve(Settings(mode="lfr", lfr_solver="euler", lfr_nfe=3))  # only the NFE sweep has it
    assert scores[describe(s, stage_nfe(s))]["source"] == "`bfr sweep`"
    bad = verdict(scores[rows["lfr-euler1"]["solver"]], base_scores(pipe))
    assert len(bad) == 2 and "known bad setting" in bad[0] and "both" in bad[1]
    assert verdict(scores[rows["dfr"]["solver"]], base_scores(pipe)) == []


def test_refine_opens_on_the_default_bundles_best_refined_row_under_both_metrics():
    name = registry.available_bundles()[0]
    pipe = registry.pipeline(name)
    scores, base = stored_scores(pipe), base_scores(pipe)
    better = {k: v for k, v in scores.items() if "+" in k and all(v[m] < base[m] for m in QUALITY)}
    best = min(
        better, key=lambda k: sum(sorted(v[m] for v in better.values()).index(better[k][m]) for m in QUALITY)
    )
    d = refine.REFINE_DEFAULTS
    s = pipe.resolve(Settings(mode=d["mode"], lfr_nfe=d["lfr_nfe"], dfr_nfe=d["dfr_nfe"]))
    assert describe(s, stage_nfe(s)) == best


def test_the_collapse_is_flagged_on_refine_by_its_batch_and_its_stored_recall():
    args = dict(
        bundle="mnist", seed=0, n=16, label="any", base_solver="rk4", base_nfe=20, alpha=0.2, dfr_nfe=4
    )
    summary = refine.refine(**args, mode="lfr", lfr_variant="ode", lfr_nfe=1)[3]
    assert "more alike than the base's" in summary and "known bad setting" in summary
    assert "FID **41.45** (base 7.82)" in summary  # the stored row, as `bfr evaluate` wrote it
    good = refine.refine(**args, mode="dfr", lfr_variant="ode", lfr_nfe=4)[3]
    assert "⚠️" not in good and "FID2 **3.44** (base 8.26)" in good
