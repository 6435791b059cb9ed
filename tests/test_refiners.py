"""The refiner registry: one entry drives the pipeline, the CLI and evaluate."""

import pytest
from pathlib import Path

import torch

from bfr_core.infra.checkpoint import CheckpointError
from bfr_core.cli.main import build_parser
from bfr_core.eval.evaluate import method_rows
from bfr_core.bundle import MODEL_FILES
from bfr_core.pipeline import Pipeline, Settings, refiner_settings
from bfr_core.refiners import REFINERS, refiner_for, variants


ROOT = Path(__file__).resolve().parent.parent


def test_every_refiner_has_its_training_command_and_model_file():
    parser = build_parser()
    commands = parser._subparsers._group_actions[0].choices
    for r in REFINERS.values():
        assert r.command in commands, r.command
        assert r.name in MODEL_FILES
        assert refiner_for(r.space, r.variant) is r


def test_a_bad_variant_is_named():
    with pytest.raises(ValueError, match="lfr_variant must be one of 'ode', 'reflow'.*got 'fast'"):
        refiner_for("latent", "fast")
    with pytest.raises(ValueError, match="dfr_variant"):
        Settings(mode="dfr", dfr_variant="nope").refiners()
    with pytest.raises(ValueError, match="space must be one of latent, data"):
        variants("pixels")


def test_settings_name_their_refiners_in_order():
    s = Settings(mode="lfr+dfr", lfr_variant="reflow")
    assert [r.name for r in s.refiners()] == ["lfr_reflow", "dfr"]
    assert Settings(mode="none").refiners() == []


def test_evaluate_rows_come_from_the_registry(tiny_bundle):
    pipe = Pipeline(tiny_bundle)
    rows = method_rows(pipe.bundle)
    expected = ["base"] + [
        name for r in REFINERS.values() if pipe.bundle.has(r.name) for name, _, _ in r.rows
    ]
    assert list(rows)[: len(expected)] == expected
    assert rows["lfr-euler1"] == refiner_settings(REFINERS["lfr"], "euler", 1)


def test_a_refiner_applied_alone_is_the_pipeline_stage(tiny_bundle):
    """Refiner.apply on G(z) gives exactly the pipeline's final image for a data refiner."""
    pipe = Pipeline(tiny_bundle)
    s = pipe.resolve(refiner_settings(REFINERS["dfr"], "euler", 2))
    st = pipe.run(16, 4, s)
    direct = REFINERS["dfr"].apply(pipe.bundle, st.base, st.labels, s.alpha, "euler", 2, torch.Generator())
    assert direct.nfe == 2 and torch.equal(direct.x, st.final)


def test_dfr_clips_images_to_the_pixel_range_when_the_bundle_card_says_so(tiny_bundle, tmp_path):
    """DFR's output is its flow's end point, clipped to [-1, 1] only under ``"dfr_clip": true``."""
    import shutil

    from bfr_core.generative.ode import flow_map

    bundle = tmp_path / "digits"
    shutil.copytree(tiny_bundle, bundle)
    pipe = Pipeline(bundle)
    x = 1.5 * torch.randn(32, 1, 8, 8, generator=torch.Generator().manual_seed(0))
    labels = pipe.labels_for(32, None)
    flow = flow_map(pipe.bundle.models["dfr"], x, labels, None, 0.0, 1.0, "euler", 2).x
    assert (flow.abs() > 1).any()  # the unclipped flow leaves the range here
    out = REFINERS["dfr"].apply(pipe.bundle, x, labels, None, "euler", 2, torch.Generator()).x
    assert torch.equal(out, flow)  # no card: as the flow ends
    (bundle / "bundle.json").write_text('{"dfr_clip": true}')
    clipped = REFINERS["dfr"].apply(Pipeline(bundle).bundle, x, labels, None, "euler", 2, torch.Generator()).x
    assert torch.equal(clipped, flow.clamp(-1, 1))
    (bundle / "bundle.json").write_text('{"dfr_clip": "yes"}')
    with pytest.raises(CheckpointError, match="'dfr_clip' must be true or false"):
        Pipeline(bundle)


def test_noise_refiner_pairs_are_an_image_and_its_noised_copy():
    from bfr_core.refiners.noise_refiner import noised_batches

    x = torch.randn(50, 1, 8, 8)
    g1, g2 = torch.Generator().manual_seed(3), torch.Generator().manual_seed(3)
    batch = noised_batches(x, torch.zeros(50, dtype=torch.long), False, 0.3)(g1, 16)
    idx = torch.randint(0, 50, (16,), generator=g2)
    eps = torch.randn(16, 1, 8, 8, generator=g2)
    assert torch.equal(batch.x1, x[idx]) and torch.allclose(batch.x0, x[idx] + 0.3 * eps)
    with pytest.raises(ValueError, match="noise level must be positive"):
        noised_batches(x, None, False, 0.0)


def test_noise_refiner_is_a_flow_from_the_noised_sample_and_one_file_in_the_registry(tiny_bundle, tmp_path):
    """Trained through its own CLI command, then applied: F(x + τ·ε) with ε from the given generator."""
    import shutil

    from bfr_core.cli.main import main
    from bfr_core.generative.ode import flow_map

    bundle = tmp_path / "digits"
    shutil.copytree(tiny_bundle, bundle)
    assert (
        main(
            [
                "--quiet",
                "train-noise-refiner",
                "--bundle",
                str(bundle),
                "--noise-level",
                "0.2",
                "--steps",
                "5",
            ]
        )
        == 0
    )
    pipe = Pipeline(bundle)
    refiner = REFINERS["noise_refiner"]
    x = torch.randn(6, 1, 8, 8)
    labels = torch.arange(6)
    out = refiner.apply(pipe.bundle, x, labels, None, "euler", 2, torch.Generator().manual_seed(9))
    noised = x + 0.2 * torch.randn(6, 1, 8, 8, generator=torch.Generator().manual_seed(9))
    expected = flow_map(pipe.bundle.models["noise_refiner"], noised, labels, None, 0.0, 1.0, "euler", 2).x
    assert torch.allclose(out.x, expected)
    st = pipe.run(8, 0, Settings(mode="dfr", dfr_variant="noise"))
    assert st.nfe == {"base": 20, "dfr": 4} and "noise-refiner" in method_rows(pipe.bundle)


def test_a_dfr_pool_larger_than_one_run_is_drawn_in_runs_of_consecutive_seeds(tiny_bundle, monkeypatch):
    """train-dfr's pool may exceed MAX_SAMPLES: run k of it is the pipeline's base for seed + k."""
    import bfr_core.pipeline as pipeline

    pipe = Pipeline(tiny_bundle)
    base = Settings(mode="none")
    small_x, small_y = pipe.base_pool(7, seed=3)
    one = pipe.run(7, seed=3, settings=base)
    assert torch.equal(small_x, one.base) and torch.equal(small_y, one.labels)
    monkeypatch.setattr(pipeline, "MAX_SAMPLES", 4)
    x, y = pipe.base_pool(10, seed=3)
    runs = [pipe.run(n, seed=s, settings=base) for n, s in ((4, 3), (4, 4), (2, 5))]
    assert torch.equal(x, torch.cat([r.base for r in runs]))
    assert torch.equal(y, torch.cat([r.labels for r in runs]))  # each run's own balanced labels
