"""α from the latents (bfr_core/views/alpha_suggestion.py): the formulas, the stored file, the app's marks."""

import json
import math
import shutil

import pytest
import torch

from bfr_core.cli.main import main
from bfr_core.eval.metrics import energy_distance
from bfr_core.infra.checkpoint import CheckpointError
from bfr_core.pipeline import Pipeline, Settings
from bfr_core.views.alpha_suggestion import (
    SUGGESTION_FILE,
    alpha_curve,
    energy_halfway,
    estimate_loss,
    load_alpha_suggestion,
    mixed_targets,
    suggest_alpha,
    variance_deficit,
)


def test_mixed_targets_follow_the_formula_row_by_row():
    g = torch.Generator().manual_seed(0)
    z, eps, u = torch.randn(5, 3, generator=g), torch.randn(5, 3, generator=g), torch.rand(5, generator=g)
    out = mixed_targets(z, 0.4, u, eps)
    for i in range(5):
        a = 0.4 * u[i]
        assert torch.allclose(out[i], math.sqrt(1 - a) * z[i] + math.sqrt(a) * eps[i], atol=1e-6)
    assert torch.equal(mixed_targets(z, 0.0, u, eps), z)


def test_variance_deficit_is_one_minus_the_mean_per_dimension_variance_clipped():
    z = torch.tensor([[0.0, 1.0], [2.0, 1.0], [4.0, 4.0]])  # variances 4 and 3: clipped to 0
    assert variance_deficit(z) == 0.0
    z = torch.tensor([[0.0, 0.0], [0.5, 1.0]])  # variances 0.125 and 0.5: 1 − 0.3125
    assert variance_deficit(z) == pytest.approx(1 - 0.3125)
    assert variance_deficit(torch.zeros(4, 2)) == 1.0


def test_energy_halfway_is_1_when_even_the_alpha_1_targets_stay_nearer_the_latents():
    """a ~ U(0, α) mixes in on average α/2: latents far from the prior never get halfway by α = 1."""
    g = torch.Generator().manual_seed(1)
    z = 0.2 * torch.randn(400, 6, generator=g) + 1.5
    assert energy_halfway(z, seed=3) == 1.0
    zd = z.double()
    g = torch.Generator().manual_seed(3)  # the draws energy_halfway makes, in its order
    u = torch.rand(len(zd), generator=g, dtype=torch.float64)
    eps = torch.randn(zd.shape, generator=g, dtype=torch.float64)
    prior = torch.randn(zd.shape, generator=g, dtype=torch.float64)
    t = mixed_targets(zd, 1.0, u, eps)
    assert energy_distance(t, zd) < energy_distance(t, prior)


def test_suggest_alpha_reports_both_estimates_and_refuses_too_few_latents():
    z = 0.5 * torch.randn(300, 1, 4, 4, generator=torch.Generator().manual_seed(2))
    found = suggest_alpha(z, points=200)
    assert found["points"] == 200 and found["alpha"] == found["estimates"][found["suggested"]]
    assert found["estimates"]["variance_deficit"] == round(variance_deficit(z[:200]), 4)
    with pytest.raises(ValueError, match="at least 2 inverted latents"):
        suggest_alpha(z[:1])


def test_estimate_loss_is_the_relative_gap_of_the_seed_means_to_the_best_alpha():
    curve = {
        "alphas": [0.1, 0.5, 1.0],
        "seeds": [0, 1],
        "scores": {
            "0.1": [{"fid": 4.0}, {"fid": 6.0}],
            "0.5": [{"fid": 3.0}, {"fid": 5.0}],
            "1": [{"fid": 8}] * 2,
        },
    }
    loss = estimate_loss(curve, 0.1, "fid")
    assert loss == {"best_alpha": 0.5, "best": 4.0, "at_estimate": 5.0, "loss": 0.25}
    with pytest.raises(ValueError, match="0.3 was not measured"):
        estimate_loss(curve, 0.3, "fid")


def test_the_cli_stores_the_estimate_a_sibling_sharing_the_latents_reads_and_a_broken_file_is_refused(
    tiny_bundle, tmp_path
):
    bundle = tmp_path / "digits"
    shutil.copytree(tiny_bundle, bundle)
    assert main(["--quiet", "suggest-alpha", "--bundle", str(bundle), "--n", "200"]) == 0
    stored = json.loads((bundle / SUGGESTION_FILE).read_text())
    pipe = Pipeline(bundle)
    assert stored["estimates"] == suggest_alpha(pipe.bundle.latents["z"], points=200)["estimates"]
    sibling = tmp_path / "sibling"  # shares the latents (and the base they invert)
    sibling.mkdir()
    for name in ("base", "lfr"):
        shutil.copy(bundle / f"{name}.safetensors", sibling)
    (sibling / "shared.json").write_text(json.dumps({"latents": "digits"}))
    assert load_alpha_suggestion(Pipeline(sibling).bundle)["alpha"] == stored["alpha"]
    (bundle / SUGGESTION_FILE).write_text(json.dumps({**stored, "alpha": 7}))
    with pytest.raises(CheckpointError, match="not a valid stored α suggestion"):
        load_alpha_suggestion(pipe.bundle)


def test_alpha_curve_scores_the_base_and_each_alpha_on_the_same_draws(tiny_bundle):
    pipe = Pipeline(tiny_bundle)

    def score(x):
        return {"mean": float(x.mean())}

    curve = alpha_curve(pipe, score, [0.1, 0.4], 8, [0, 1])
    assert set(curve["scores"]) == {"base", "0.1", "0.4"} and curve["seeds"] == [0, 1]
    base = pipe.run(8, 1, Settings(mode="none")).base
    assert curve["scores"]["base"][1]["mean"] == pytest.approx(float(base.mean()), abs=1e-6)
    lfr = pipe.run(8, 1, Settings(mode="lfr", alpha=0.4)).final  # the default end: one RK4 step
    assert curve["scores"]["0.4"][1]["mean"] == pytest.approx(float(lfr.mean()), abs=1e-4)
    with pytest.raises(ValueError, match="outside the LFR's trained range"):
        alpha_curve(pipe, score, [0.9], 8, [0])


def test_the_app_marks_the_suggested_alpha_on_the_slider_and_the_map():
    from app import figures
    from app.tabs.overrefine_views import alpha_map
    from app.tabs.refine import alpha_hint

    stored = json.loads(open("checkpoints/digits/alpha_suggestion.json").read())
    assert f"suggested α from its latents: {stored['alpha']:.2f}" in alpha_hint("digits")["info"]
    fig, text = alpha_map("digits")
    lines = [s for s in fig.layout.shapes if s.type == "line"]
    alphas = json.loads(open("checkpoints/digits/alpha_nfe.json").read())["map"]["alphas"]
    row = figures.suggested_row(alphas, stored["alpha"])
    assert [s.line.color for s in lines] == ["black", "white"]  # a white dash on a black casing
    assert [s.y0 for s in lines] == [pytest.approx(row)] * 2
    # named in the subtitle: a label on the map would cover a cell's value
    assert f"dashed: suggested α {stored['alpha']:.2f}" in fig.layout.title.text
    assert not fig.layout.annotations
    assert f"**{stored['alpha']:.2f}** (the dashed line)" in text and "at the estimate" in text
    assert figures.suggested_row([0.1, 0.2, 0.5], 0.35) == pytest.approx(1.5)
    assert figures.suggested_row([0.1, 0.2, 0.5], 0.6) is None
    _, text = alpha_map("mnist-alpha")  # mnist's latents: its estimate, beyond this map's rows
    assert "outside this map's α range" in text


def test_the_open_questions_tab_states_the_estimate_its_evidence_or_the_command_that_stores_it(tmp_path):
    from app.tabs.questions import alpha_view

    stored = json.loads(open("checkpoints/mnist/alpha_suggestion.json").read())
    text = alpha_view("mnist-euler8")  # shares mnist's latents, so mnist's estimate and check
    assert f"**Suggested α = {stored['alpha']:.2f}**" in text
    fid = stored["validation"]["losses"]["fid"]
    assert f"at the estimate {fid['at_estimate']:.2f} ({fid['loss']:+.1%})" in text
    moons = json.loads(open("checkpoints/moons/alpha_suggestion.json").read())
    assert "Not checked on this bundle yet" in alpha_view("moons") and f"{moons['alpha']:.2f}" in alpha_view(
        "moons"
    )


def test_the_check_says_when_the_base_beats_every_alpha():
    """A stored check whose base (no LFR, same draws) beats the best α says the LFR hurts at any α; one
    where the best α beats the base does not."""
    from app.tabs.overrefine_views import validation_text

    check = {
        "alphas": [0.05, 0.5],
        "seeds": [0, 1],
        "n": 300,
        "reference": "last 10 training images",
        "losses": {"fid": {"best_alpha": 0.05, "best": 29.76, "at_estimate": 33.11, "loss": 0.112}},
        "base": {"fid": 24.93},
    }
    text = validation_text({"validation": check})
    assert "Without an LFR the base scores FID 24.93" in text and "hurts at any α" in text
    check["base"] = {"fid": 31.0}
    assert "hurts" not in validation_text({"validation": check})
    stored = json.loads(open("checkpoints/cifar10-cpu/alpha_suggestion.json").read())["validation"]
    assert stored["base"]["fid"] < stored["losses"]["fid"]["best"]  # CIFAR on the CPU: the base beats every α
