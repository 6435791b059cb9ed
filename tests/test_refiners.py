"""The refiner registry: one entry drives the pipeline, the CLI and evaluate."""
import pytest
import torch

from bfr_core.cli import build_parser
from bfr_core.evaluate import method_rows
from bfr_core.pipeline import MODEL_FILES, Pipeline, Settings, refiner_settings
from bfr_core.refiners import REFINERS, refiner_for, variants


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
    expected = ["base"] + [name for r in REFINERS.values() if pipe.bundle.has(r.name) for name, _, _ in r.rows]
    assert list(rows)[:len(expected)] == expected
    assert rows["lfr-euler1"] == refiner_settings(REFINERS["lfr"], "euler", 1)


def test_a_refiner_applied_alone_is_the_pipeline_stage(tiny_bundle):
    """Refiner.apply on G(z) gives exactly the pipeline's final image for a data refiner."""
    pipe = Pipeline(tiny_bundle)
    s = pipe.resolve(refiner_settings(REFINERS["dfr"], "euler", 2))
    st = pipe.run(16, 4, s)
    direct = REFINERS["dfr"].apply(pipe.bundle, st.base, st.labels, s.alpha, "euler", 2, torch.Generator())
    assert direct.nfe == 2 and torch.equal(direct.x, st.final)
