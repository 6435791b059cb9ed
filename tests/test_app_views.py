"""The app's teaching views (Latents, the bias lab, Over-refinement, Inspect, Trajectories): their callbacks
called directly on the shipped bundles."""

import gradio as gr
import numpy as np
import pytest

from app import pictures, registry, scrubber
from app.tabs import inspector, lab, latents, overrefine, overrefine_views, refine, trajectories
from app_calls import pixels


def test_latents_view_maps_prior_biased_and_refined_latents_together():
    plane, fig, norms, summary, variance = latents.latents("digits", 0.2, 4)
    biased = registry.latent_map("digits").biased.reshape(-1, 1, 8, 8)
    assert np.allclose(variance.data[0].z[::-1], biased.var(0, ddof=1).mean(0), atol=1e-5)
    names = [t.name for t in fig.data]
    assert names == ["prior z ~ N(0, I)", "biased latents G⁻¹(real)", "LFR-refined latents"]
    # the refined cloud is the LFR of the map's own 1,000 prior draws, fitted jointly with them
    assert [len(t.x) for t in fig.data] == [1000, 1000, 1000]
    assert np.isfinite(np.asarray(fig.data[2].x, dtype=float)).all()
    assert "?tab=latents&l_bundle=digits&l_alpha=0.2&l_nfe=4" in summary
    assert [t.name for t in norms.data] == ["prior N(0, I)", "biased G⁻¹(real)", "LFR-refined"]
    assert "refined → biased" in summary and "Mean ‖z‖/√d" in summary
    # the bias plane: the same three clouds (500 draws each) on axes named by what they measure
    assert [t.name for t in plane.data] == names and [len(t.x) for t in plane.data] == [500, 500, 500]
    assert plane.layout.xaxis.title.text.startswith("‖z‖/√d") and "Collapse" not in summary


def test_the_latents_view_warns_of_the_one_euler_step_collapse_and_says_which_cloud_is_closer():
    """mnist's stored plane: at one Euler step the refined draws shrink to a clump and the text says so;
    at one RK4 step the refined cloud is the biased one's, in numbers and in words."""
    plane, _, _, summary, _ = latents.latents("mnist", 0.2, 1)
    assert summary.startswith("⚠️ **Collapse**") and "closer to the **biased** one" in summary
    refined, biased = plane.data[2], plane.data[1]
    assert max(refined.x) < np.median(biased.x)  # drawn below every typical biased latent
    plane, _, _, summary, _ = latents.latents("mnist", 0.2, 4)
    assert "Collapse" not in summary and "closer to the **biased** one" in summary


def test_latents_sliders_move_the_refined_cloud_on_the_shipped_map_without_fitting(monkeypatch):
    from bfr_core.views.latent_view import LatentMap

    first = latents.latents("digits", 0.2, 4)[1]
    monkeypatch.setattr(LatentMap, "fit", lambda self: pytest.fail("a slider setting was fitted live"))
    _, moved, norms, summary, _ = latents.latents("digits", 0.35, 7)
    assert np.array_equal(moved.data[0].x, first.data[0].x)  # the prior and biased clouds stay put
    assert np.array_equal(moved.data[1].y, first.data[1].y)
    assert 0 < len(moved.data[2].x) < 1000 and "draws shown" in moved.layout.title.text
    assert len(norms.data[2].x) == 1000  # the figures use every refined draw
    assert "LFR α=0.35, euler 7 NFE" in moved.layout.title.text and "refined → biased" in summary


def test_a_ring_on_the_latent_map_carries_its_latent_number_and_inspects_that_latent():
    """The biased ring #i is cached latent i, the inversion of training image i; inspecting it decodes
    that very latent (no inversion) and measures its reconstruction against training image i."""
    from bfr_core.infra.data import load_dataset
    from bfr_core.generative.ode import flow_map

    plane, fig = latents.latents("digits", 0.2, 4)[:2]
    assert list(plane.data[1].customdata) == list(range(500))  # rings are clickable on both maps
    rings = fig.data[1]
    assert list(rings.customdata) == list(range(1000)) and "#7: click to inspect" in rings.text[7]
    assert fig.data[0].customdata is None and fig.data[2].customdata is None  # only rings are clickable
    pipe = registry.pipeline("digits")
    lat, train = pipe.bundle.latents, load_dataset("digits").x_train
    png, text = latents.inspect_latent("digits", 7, 0.2, 4)
    label = lat["y"][7:8]
    back = flow_map(pipe.bundle.models["base"], lat["z"][7:8], label, None, 0.0, 1.0, "rk4", 20).x
    assert f"|G(z_b) − x| = **{float((back - train[7:8]).abs().mean()):.4f}**" in text
    assert f"**Biased latent #7** (class {int(label)})" in text and "nearest other training images" in text
    assert "?tab=latents&l_bundle=digits&l_alpha=0.2&l_nfe=4&l_pick=7" in text
    strip = pixels(png)
    assert 5 * strip.shape[0] < strip.shape[1]  # training image, G(z_b), LFR-moved, 3 nearest: 6 tiles
    with pytest.raises(gr.Error, match="biased latent must be an integer in 0..9999, got 10000"):
        latents.inspect_latent("mnist", 10000, 0.2, 4)
    with pytest.raises(gr.Error, match="LFR NFE must be an integer"):
        latents.inspect_latent("digits", 7, 0.2, 0)
    png, text = latents.inspect_latent("moons", 3, 0.2, 4)  # 2-D points: the numbers, no picture
    assert png is None and "x = (" in text and "G(F_LFR(z_b)) = (" in text


def test_latent_companions_match_their_formulas():
    import torch

    from bfr_core.views.latent_view import latent_distances, norm_per_dim
    from bfr_core.eval.metrics import energy_distance

    z = torch.tensor([[3.0, 4.0], [0.0, 0.0]])
    assert norm_per_dim(z).tolist() == pytest.approx([5 / 2**0.5, 0.0])
    g = torch.Generator().manual_seed(0)
    p, b, r = (torch.randn(50, 4, generator=g) * s for s in (1.0, 0.5, 0.7))
    d = latent_distances(p, b, r, max_points=30)
    assert d["refined_to_biased"] == pytest.approx(energy_distance(r[:30], b[:30]))
    assert d["prior_to_biased"] == pytest.approx(energy_distance(p[:30], b[:30]))


def test_bias_lab_streams_its_training_curves_then_every_panel():
    from bfr_core.views import lab as core_lab

    updates = list(lab.bias_lab("moons", 50, 50))
    data, lat, fixed, bars, md, lfr_field, dfr_field, curves = updates[-1]
    assert "Energy distance" in md and len(fixed.data) > 3
    arrows = [t for t in dfr_field.data if t.name and t.name.startswith("learned velocity")]
    assert len(arrows) == 1 and len(arrows[0].x) == 3 * 15 * 15  # one segment (and a gap) per grid point
    assert list(bars.data[0].x) == ["base", "LFR", "DFR", "real training points"]
    kept = core_lab.cached_bias_lab("moons", 50, 50)
    assert [t.name.split(" (")[0] for t in curves.data] == ["base", "LFR", "DFR"]
    assert [len(t.x) for t in curves.data] == [50, 50, 50]
    assert list(curves.data[1].y) == [loss for _, loss in kept.curves["LFR"]]
    assert f"{kept.energy['dfr']:.4f}" in curves.data[2].name
    for partial in updates[:-1]:  # while training: only the curves change
        assert all(isinstance(u, dict) for u in partial[:-1]) and partial[-1].data
    assert len(list(lab.bias_lab("moons", 50, 50))) == 1  # kept: one answer, no training


def test_the_lab_scrubber_moves_the_lab_runs_points_along_its_paths(monkeypatch):
    """t = 0: the base and the LFR start at the prior draws and the DFR at the base's samples; t = 1: the
    DFR's points are the lab's DFR output; the axes stay put while the points move; play streams every t."""
    from bfr_core.views import lab as core_lab

    with pytest.raises(gr.Error, match="press 'Train live' first"):
        lab.lab_scrub("moons", 50, 60, "", 0.5)
    r = core_lab.cached_bias_lab("moons", 50, 60)
    start = lab.lab_scrub("moons", 50, 60, "", 0.0)
    base, lfr, dfr, text = start
    assert np.allclose(base.data[1].x, r.prior[:, 0]) and np.allclose(lfr.data[1].y, r.prior[:, 1])
    assert np.allclose(dfr.data[1].x, r.generated[:, 0]) and np.allclose(
        lfr.data[0].x, r.biased_latents[:, 0]
    )
    end = lab.lab_scrub("moons", 50, 60, "", 1.0)
    assert (
        np.allclose(end[2].data[1].x, r.dfr_points[:, 0]) and "**t = 1.00** · BASE: step 10 of 10" in end[3]
    )
    middle = lab.lab_scrub("moons", 50, 60, "", 0.45)
    assert "BASE: step 4 of 10" in middle[3] and middle[0].layout.xaxis.range == base.layout.xaxis.range
    assert not np.allclose(middle[0].data[1].x, base.data[1].x)  # the points moved, the axes did not
    with pytest.raises(gr.Error, match="t must be a number in 0..1, got 1.5"):
        lab.lab_scrub("moons", 50, 60, "", 1.5)
    monkeypatch.setattr(scrubber, "PLAY_FRAME_S", 0)
    frames = list(lab.lab_play("moons", 50, 60, ""))
    assert [f[0] for f in frames] == [round(0.05 * k, 4) for k in range(21)]
    assert frames[9][4] == lab.lab_scrub("moons", 50, 60, "", 0.45)[3]


def test_bias_lab_refuses_bad_input_by_name():
    with pytest.raises(gr.Error, match="base steps must be an integer in 10..3000"):
        list(lab.bias_lab("moons", 10**6, 50))
    with pytest.raises(gr.Error, match="paste your points"):
        list(lab.bias_lab(lab.MY_POINTS, 50, 50, "  "))
    with pytest.raises(gr.Error, match="line 2 of your points is not two finite numbers"):
        list(lab.bias_lab(lab.MY_POINTS, 50, 50, "1, 2\nhello"))
    square = "\n".join(f"{i % 10}, {i // 10}" for i in range(100))
    *_, md, _, _, _ = list(lab.bias_lab(lab.MY_POINTS, 50, 50, square))[-1]
    assert "Energy distance" in md


def test_overrefinement_shows_the_stored_curves_instantly_or_measures_live():
    import json

    stored = json.loads((registry.CHECKPOINTS / "digits" / "overrefine.json").read_text())
    fig, *_ = overrefine.overrefine("digits", 0.2, "precomputed")
    assert list(fig.data[0].y) == [q for _, q in stored["sweep"]["lfr"]]
    assert "precomputed by `python -m bfr_core" in fig.layout.title.text and stored["n"] == 2000
    with pytest.raises(gr.Error, match="stores no curves at α = 0.3 .they are at α = 0.2.: choose 'measure"):
        overrefine.overrefine("digits", 0.3, "precomputed")  # another α than stored: never silently live
    with pytest.raises(gr.Error, match="source must be one of precomputed, live"):
        overrefine.overrefine("digits", 0.2, "cached")


def test_overrefinement_curves_and_drift():
    fig, drift, lines = overrefine.overrefine("digits", 0.2, "live")
    lfr, dfr, base = fig.data
    assert list(lfr.x) == [1, 2, 3, 4, 6, 8, 10] and len(dfr.y) == 7
    assert base.name == "base" and list(base.x) == [1, 10]
    assert lfr.y[0] > lfr.y[-1]  # one Euler step collapses; more steps recover (measured, see README)
    assert pixels(drift).shape[0] == pixels(drift).shape[1]  # 8 rows (base + 7 NFE values) of 8 samples
    *samples, mean = lines.data  # one line per strip column, then their mean
    assert len(samples) == 8 and list(mean.x) == [1, 2, 3, 4, 6, 8, 10]
    assert mean.y == pytest.approx([sum(t.y[k] for t in samples) / 8 for k in range(7)])


def test_drift_from_base_is_each_samples_rms_change_from_row_0():
    import torch

    from bfr_core.views.sweep import drift_from_base

    rows = torch.zeros(3, 2, 1, 2, 2)
    rows[1, 0] = 1.0  # sample 0 moves by 1 everywhere at the first setting
    rows[2, 1, 0, 0, 0] = 2.0  # sample 1 moves one of 4 pixels by 2 at the second: RMS sqrt(4 / 4) = 1
    rows[2, 0] = 3.0
    assert drift_from_base(rows).tolist() == [[1.0, 3.0], [0.0, 1.0]]


def test_play_streams_every_scrubber_frame_from_0_to_1_as_the_scrubber_draws_it(monkeypatch):
    monkeypatch.setattr(scrubber, "PLAY_FRAME_S", 0.0)
    frames = list(trajectories.play("digits", 0, 20, 4))
    assert [t for t, *_ in frames] == [round(0.05 * k, 4) for k in range(21)]
    for t, png, text in frames[::5]:  # each frame is the scrubber's picture at that t
        want_png, want_text = trajectories.trajectory("digits", 0, 20, 4, t)
        assert text == want_text and np.array_equal(pixels(png), pixels(want_png))
    with pytest.raises(gr.Error, match="not an image bundle"):
        list(trajectories.play("moons", 0, 20, 4))


def test_overshoot_shows_base_trained_and_extrapolated_side_by_side():
    png, text = overrefine_views.overshoot("digits", 0.2, 1.5)
    assert pixels(png).shape[0] < pixels(png).shape[1]  # three rows of 16 samples
    assert "LFR to t = 1.5 (**extrapolated**" in text and "6 steps" in text and text.count("**") >= 8
    with pytest.raises(gr.Error, match="overshoot must be a number in 1..2, got 2.5"):
        overrefine_views.overshoot("digits", 0.2, 2.5)
    # a 2-D bundle has an LFR but no image rows: a named refusal, not a server error
    with pytest.raises(gr.Error, match="'moons' is a 2-D point set"):
        overrefine_views.overshoot("moons", 0.2, 1.5)


def test_overshoot_solves_every_factor_once_then_moves_the_slider_without_solving(monkeypatch):
    overrefine_views.overshoot("digits", 0.3, 1.25)
    monkeypatch.setattr(overrefine_views, "lfr_overshoots", lambda *a, **k: pytest.fail("solved again"))
    for factor in overrefine_views.OVERSHOOT_FACTORS:
        assert (
            f"LFR to t = {factor:g} (**extrapolated**" in overrefine_views.overshoot("digits", 0.3, factor)[1]
        )
    assert overrefine_views.OVERSHOOT_FACTORS == (1.0, 1.25, 1.5, 1.75, 2.0)


def test_the_overshoot_view_names_under_correction_only_when_past_t1_scores_better():
    r = overrefine_views.cached_overshoots("digits", overrefine_views.overshoot_alpha("digits", 0.2))
    seen = set()
    for factor in overrefine_views.OVERSHOOT_FACTORS:
        text = overrefine_views.overshoot("digits", 0.2, factor)[1]
        better = factor > 1 and r["factors"][factor][1] < r["factors"][1.0][1]
        assert ("under-correction" in text) == better, (factor, text)
        seen.add(better)
    assert seen == {True, False}  # the stored digits view has both cases (t = 1 itself is never "better")


def test_the_ab_view_runs_two_chart_rows_on_the_same_noise():
    from bfr_core.views.budget import budget_rows
    from bfr_core.pipeline import Pipeline

    pipe = Pipeline(registry.pipeline("digits").bundle)
    a_png, b_png, text = overrefine_views.ab_compare("digits", "base +4", "lfr", 2)
    rows = budget_rows(pipe)
    for png, name in ((a_png, "base +4"), (b_png, "lfr")):
        expected = pipe.run(
            overrefine_views.AB_SAMPLES, 2, rows[name]
        ).final  # the same prior draws of seed 2
        assert np.array_equal(pixels(png), pixels(pictures.png_file(pictures.grid(expected))))
    assert "**A: base +4** — base rk4x24, 24 NFE in all" in text and "lfr rk4x4, 24 NFE in all" in text
    assert "ab_a=base+%2B4&ab_b=lfr&ab_seed=2" in text
    assert overrefine_views.ab_compare("digits", "base +4", "lfr", 2)[0] == a_png  # kept: not run again
    with pytest.raises(gr.Error, match="bundle 'digits' has no row 'base \\+99' to compare; its rows: base"):
        overrefine_views.ab_compare("digits", "base +99", "lfr", 2)
    with pytest.raises(gr.Error, match="holds 2-D points"):
        overrefine_views.ab_compare("moons", "base", "lfr", 0)
    with pytest.raises(gr.Error, match="seed must be an integer"):
        overrefine_views.ab_compare("digits", "base", "lfr", -1)


def test_inspect_round_trips_a_shipped_test_image_and_meters_the_bias():
    png, text, hist = inspector.inspect_example("digits", 3, "rk4", 20, 0.2)
    strip = pixels(png)
    assert strip.shape[1] > 4 * strip.shape[0]  # one row: image, regenerated, LFR-moved (+ nearest)
    assert "Reconstruction error" in text and "energy distance to N(0, I)" in text
    assert [t.name for t in hist.data] == ["N(0, I) draws", "real images inverted"]
    with pytest.raises(gr.Error, match="example must be an integer in 0..255, got 300"):
        inspector.inspect_example("digits", 300, "rk4", 20, 0.2)
    with pytest.raises(gr.Error, match="rk4 uses 4 evaluations per step; nfe=6"):
        inspector.inspect_example("digits", 3, "rk4", 6, 0.2)
    with pytest.raises(gr.Error, match="ships no example images"):
        inspector.inspect_example("moons", 0, "rk4", 20, 0.2)


def test_trajectory_scrubber_shows_each_stage_at_time_t_and_steps_wrap():
    png, text = trajectories.trajectory("digits", 0, 20, 4, 0.45)
    assert pixels(png).shape[0] < pixels(png).shape[1]  # three rows of 8 samples
    assert "BASE: step 2 of 5 (t = 0.40)" in text and "LFR: step 1 of 4 (t = 0.25)" in text
    assert scrubber.step_forward(1.0) == 0.0 and scrubber.step_back(0.0) == 1.0
    assert scrubber.step_forward(0.45) == 0.5
    with pytest.raises(gr.Error, match="t must be a number in 0..1, got 1.5"):
        trajectories.trajectory("digits", 0, 20, 4, 1.5)
    with pytest.raises(gr.Error, match="not an image bundle"):
        trajectories.trajectory("moons", 0, 20, 4, 0.5)


def test_every_mnist_view_answers_with_no_dataset_on_disk(monkeypatch, tmp_path):
    """A fresh clone without the MNIST files: the views score from the bundle's shipped reference and
    show its shipped example images; only the nearest training images are missing, and say so."""
    import bfr_core.infra.data
    import bfr_core.infra.dataset

    monkeypatch.setattr(bfr_core.infra.data, "candidate_dirs", lambda name, data_dir: [tmp_path])
    caches = (registry.scorer, registry.training_images, registry.examples, trajectories.cached_paths)
    for cache in caches:
        cache.cache_clear()
    try:
        with pytest.raises(bfr_core.infra.dataset.DataError):
            bfr_core.infra.data.load_dataset("mnist")
        *_, summary, _ = refine.refine("mnist", 0, 4, "any", "rk4", 20, "lfr+dfr", "ode", 4, 0.2, 4)
        assert "NFE per sample" in summary
        fig, drift, _ = overrefine.overrefine("mnist", 0.2, "precomputed")
        assert "precomputed by `python -m bfr_core" in fig.layout.title.text
        png, text, hist = inspector.inspect_example("mnist", 0, "rk4", 20, 0.2)
        assert "the dataset is not on disk" in text and "Reconstruction error" in text
        png, text = trajectories.trajectory("mnist", 0, 8, 2, 0.5)
        assert "BASE: step 1 of 2" in text
    finally:
        for cache in caches:
            cache.cache_clear()


@pytest.mark.parametrize("view", overrefine_views.BUTTON_VIEWS)
def test_every_over_refinement_view_runs_or_its_button_is_disabled_with_the_reason_on_every_bundle(view):
    run = {
        "worth": lambda b: overrefine_views.worth_nfe(b),
        "ab": lambda b: overrefine_views.ab_compare(b, "base", "dfr", 0),
        "alpha_map": lambda b: overrefine_views.alpha_map(b),
        "overshoot": lambda b: overrefine_views.overshoot(b, 0.2, 1.25),
    }[view]
    index = overrefine_views.BUTTON_VIEWS.index(view)
    for bundle in registry.available_bundles():
        why = overrefine_views.unavailable(bundle, view)
        *buttons, note = overrefine_views.view_buttons(bundle)
        assert buttons[index]["interactive"] is (why is None), (bundle, view)
        if why is None:
            answer = run(bundle)
            assert all(part is not None and part != "" for part in answer), (bundle, view)
        else:
            assert why in note
            with pytest.raises(gr.Error) as refused:
                run(bundle)
            assert why[:30] in str(refused.value), (bundle, view)
