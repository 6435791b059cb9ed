"""The app's Refine tab, its links and its bundle menu: callbacks called directly, then the launched app
driven over HTTP by gradio_client."""

import gradio as gr
import numpy as np
import pytest

from app import pictures, registry, urlstate
from app.tabs import lab, refine
from app.ui import build_demo
from app.pictures import grid
from bfr_core.pipeline import Settings
from app_calls import DEFAULTS, call, pixels


def test_bundles_are_shipped():
    assert {"digits", "moons"} <= set(registry.available_bundles())


def test_refine_matches_the_library_bit_for_bit():
    base, refined, diff, summary, hist = call()
    st = registry.pipeline("digits").run(
        16,
        3,
        Settings(
            mode="lfr+dfr",
            lfr_solver="rk4",
            lfr_nfe=4,
            alpha=0.2,
            dfr_solver="rk4",
            dfr_nfe=4,
            base_solver="rk4",
            base_nfe=20,
        ),
    )
    assert np.array_equal(pixels(refined), np.asarray(grid(st.final)))
    assert np.array_equal(pixels(base), np.asarray(grid(st.base)))
    assert "total 28" in summary and "classifier confidence" in summary
    assert hist is not None and pixels(diff).shape[0] == pixels(base).shape[0] + pictures.LEGEND_H


def test_alpha_slider_changes_the_output():
    a = pixels(call(mode="lfr", alpha=0.0)[1])
    b = pixels(call(mode="lfr", alpha=0.5)[1])
    assert not np.array_equal(a, b)


def test_odd_lfr_nfe_uses_euler_and_reflow_is_one_step():
    assert "lfr 3" in call(mode="lfr", lfr_nfe=3)[3]
    assert "lfr 1" in call(mode="lfr", lfr_variant="reflow", lfr_nfe=1)[3]


@pytest.mark.parametrize(
    "overrides,msg",
    [
        (dict(lfr_nfe=0), "LFR NFE must be an integer in 1..10"),
        (dict(dfr_nfe=10**6), "DFR NFE must be an integer"),
        (dict(alpha=-0.1), r"alpha must be a number in \[0, 1\]"),
        (dict(alpha=1.5), r"alpha must be a number in \[0, 1\]"),
        (dict(alpha=0.9), r"alpha must lie in \[0.0, 0.5\]"),
        (dict(n=10**5), "number of samples must be an integer in 1..64"),
        (dict(seed=float("nan")), "seed must be an integer"),
        (dict(seed="abc"), "seed must be an integer"),
        (dict(bundle="cifar"), "unknown bundle 'cifar'"),
        (dict(mode="sdedit"), "unknown mode 'sdedit'"),
        (dict(label="12"), "class must be an integer in 0..9"),
    ],
)
def test_bad_input_is_refused_with_a_message(overrides, msg):
    with pytest.raises(gr.Error, match=msg):
        call(**overrides)


def test_http_api_refine_and_generate(server):
    from gradio_client import Client

    client = Client(server, verbose=False)
    base_path, refined_path, diff_path, summary, _ = client.predict(*DEFAULTS.values(), api_name="/refine")
    assert np.array_equal(pixels(refined_path), pixels(call()[1]))
    assert "lfr+dfr" in summary
    gen = client.predict("digits", 3, 16, "any", "rk4", 20, api_name="/generate")
    assert np.array_equal(pixels(gen), pixels(base_path))


@pytest.mark.parametrize(
    "overrides,msg",
    [
        (
            dict(lfr_nfe=0),
            r"data item 8 \(LFR NFE\) must be a number in 1..10, got 0",
        ),  # the guard, before Gradio
        (
            dict(mode="sdedit"),
            r"data item 6 \(refinement\) must be one of dfr, lfr, lfr\+dfr, none, got \"sdedit\"",
        ),
        (dict(n=10**5), r"data item 2 \(samples\) must be a number in 1..64, got 100000"),
    ],
)
def test_http_api_reports_bad_input(server, overrides, msg):
    from gradio_client import Client

    client = Client(server, verbose=False)
    with pytest.raises(Exception, match=msg):
        client.predict(*{**DEFAULTS, **overrides}.values(), api_name="/refine")


def test_http_api_refuses_pasted_points_over_the_text_bound_before_any_work(server):
    from gradio_client import Client

    from bfr_core.views.lab import USER_POINTS_CHARS

    client = Client(server, verbose=False)
    too_long = "1, 2\n" * (USER_POINTS_CHARS // 5 + 1)
    with pytest.raises(
        Exception, match=rf"data item 3 \(your own points.*at most {USER_POINTS_CHARS:,} characters"
    ):
        client.predict(lab.MY_POINTS, 60, 250, too_long, api_name="/bias_lab")


def test_cli_and_app_give_identical_pixels(tmp_path):
    from bfr_core.cli.main import main

    png = tmp_path / "cli.png"
    assert (
        main(
            [
                "--quiet",
                "sample",
                "--bundle",
                "checkpoints/digits",
                "--n",
                "16",
                "--seed",
                "3",
                "--mode",
                "lfr+dfr",
                "--alpha",
                "0.2",
                "--lfr-solver",
                "rk4",
                "--lfr-nfe",
                "4",
                "--dfr-solver",
                "rk4",
                "--dfr-nfe",
                "4",
                "--out",
                str(png),
            ]
        )
        == 0
    )
    assert np.array_equal(pixels(png), pixels(call()[1]))


def test_image_grids_keep_colour_and_upscale_by_repeating_pixels():
    import torch

    from bfr_core.infra.images import image_grid

    x = torch.zeros(2, 3, 4, 4)
    x[0, 0], x[1, 2] = 1.0, -1.0  # image 0: red channel full; image 1: blue channel zero
    grid = np.asarray(image_grid(x, ncol=2, scale=3, pad=1))
    assert grid.shape == ((1 * 5 + 1) * 3, (2 * 5 + 1) * 3, 3)  # (rows·(h + pad) + pad)·scale, RGB
    assert grid[3 * 1, 3 * 1].tolist() == [255, 128, 128]  # first pixel of image 0 (0 → 127.5 rounds to 128)
    assert grid[3 * 1, 3 * 6].tolist() == [128, 128, 0]  # first pixel of image 1


def test_a_shared_link_restores_the_controls():

    summary = call(seed=5, mode="dfr")[3]
    link = summary.split("(?")[1].split(")")[0]
    query = dict(pair.split("=") for pair in link.split("&"))
    demo = build_demo()
    controls, tab_ids = demo.url_controls, ["refine", "latents"]
    updates = urlstate.url_updates(query, controls, tab_ids)
    values = dict(zip(list(controls) + ["tab"], updates))
    assert values["bundle"]["value"] == "digits" and values["seed"]["value"] == 5
    assert values["mode"]["value"] == "dfr" and values["alpha"]["value"] == 0.2
    assert values["tab"].selected == "refine"
    # every tab's controls: in range and on the slider's step, or left as they are
    query = {"tab": "latents", "l_nfe": "3", "t_time": "0.25", "i_solver": "euler", "o_source": "live"}
    values = dict(zip(list(controls) + ["tab"], urlstate.url_updates(query, controls, tab_ids)))
    assert values["l_nfe"]["value"] == 3 and values["i_solver"]["value"] == "euler"
    assert values["t_time"]["value"] == 0.25 and values["o_source"]["value"] == "live"
    assert values["tab"].selected == "latents" and "value" not in values["bundle"]
    bad = {"seed": "0.6", "mode": "sdedit", "n": "999", "l_nfe": "2.5", "t_time": "nan", "tab": "admin"}
    bad.update({"i_index": "1e9", "bundle": "../etc", "alpha": "0.33", "toy": "x" * 500})
    updates = urlstate.url_updates(bad, controls, tab_ids)
    assert all(u == gr.update() for u in updates)  # refused values leave the controls as they are


def test_a_broken_bundle_is_left_out_of_the_menu(tmp_path, monkeypatch, capsys):
    import shutil

    from app import registry

    shutil.copytree(registry.ROOT / "checkpoints" / "moons", tmp_path / "moons")
    (tmp_path / "broken").mkdir()
    (tmp_path / "broken" / "shared.json").write_text('{"base": "nowhere"}')
    monkeypatch.setattr(registry, "CHECKPOINTS", tmp_path)
    registry._pipeline.cache_clear()
    try:
        assert registry.available_bundles() == ["moons", "broken"]
        assert [n for _, n in registry.bundle_choices()] == ["moons"]
        assert "bundle 'broken' left out of the menu" in capsys.readouterr().err
    finally:
        registry._pipeline.cache_clear()


def test_the_bundles_tab_reads_each_models_own_metadata_and_the_shared_files():
    """The worked example of adding a tab (app/tabs/bundles.py + one line in app/tabs/__init__.py)."""
    from app.tabs import bundles

    card = bundles.bundle_card("mnist-euler8")
    b = registry.pipeline("mnist-euler8").bundle
    assert f"| dfr | {b.cards['dfr'].steps:,} |" in card and "`base` ← mnist" in card
    assert "`bias_plane`: Latents" in card and "?tab=bundles&b_bundle=mnist-euler8" in card
    assert "| base rk4x20 + lfr eulerx1 | 41.45 | 33.38 | 0.03 |" in bundles.bundle_card("mnist")


def test_refine_offers_every_refiner_of_the_registry_and_runs_the_noise_refiner():
    """The LFR and DFR variant controls list the registry's refiners; picking the noise refiner runs it
    (its stored score found by what ran), and a bundle without it refuses by name."""
    from bfr_core.refiners import REFINERS

    offered = [v for space in ("latent", "data") for _, v in refine.variant_choices(space)]
    assert sorted(offered) == sorted(r.variant for r in REFINERS.values())
    args = ("mnist", 0, 8, "any", "rk4", 20, "dfr", "ode", 4, 0.2, 4)
    summary = refine.refine(*args, "noise")[3]
    assert summary.startswith("**base rk4x20 + noise-refiner rk4x4**") and "row 'noise-refiner'" in summary
    assert "dfr_variant=noise" in summary  # the share link keeps it
    with pytest.raises(gr.Error, match="needs noise_refiner.safetensors, which bundle moons does not have"):
        refine.refine("moons", *args[1:], "noise")


def test_toy_bundle_in_the_app():
    base, refined, diff, summary, hist = call(bundle="moons", n=64, alpha=0.1)
    assert "total 28" in summary and hist is None
    assert pixels(refined).shape == (320, 320, 3)
    grey = (pixels(refined) == 200).all(axis=-1).sum()  # the data the 64 samples should lie on, in grey
    assert grey > 500 and (pixels(refined)[..., 2] > pixels(refined)[..., 0] + 100).sum() >= 64  # blue dots
    assert refine.histogram_shown("moons")["visible"] is False and refine.histogram_shown("mnist")["visible"]
