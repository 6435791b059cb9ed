"""A bundle's shipped reference scores samples like the dataset does, so no dataset is needed."""

import pytest
import torch

from bfr_core.eval import evaluate
from bfr_core.infra.checkpoint import CheckpointError, save_tensors
from bfr_core.cli.main import main
from bfr_core.infra.data import load_dataset
from bfr_core.infra.dataset import DataError
from bfr_core.bundle import Bundle
from bfr_core.pipeline import Pipeline, Settings
from bfr_core.eval.reference import load_reference, reference_from_data


@pytest.fixture(scope="module")
def with_reference(tiny_bundle):
    assert main(["--quiet", "reference", "--bundle", str(tiny_bundle)]) == 0
    yield Bundle(tiny_bundle)
    (tiny_bundle / "reference.safetensors").unlink()


def no_dataset(*args, **kwargs):
    raise DataError("digits: not installed")


def test_shipped_reference_scores_like_the_dataset(with_reference):
    bundle = with_reference
    exact = evaluate.Scorer(reference_from_data(bundle, load_dataset("digits")), None)
    shipped = evaluate.Scorer(load_reference(bundle, bundle.file("reference")), None)
    st = Pipeline(bundle).run(200, 4, Settings(mode="dfr"))
    a, b = exact(st.final, st.labels), shipped(st.final, st.labels)
    assert b["fid"] == pytest.approx(a["fid"], rel=1e-2)  # float16 features
    assert b["precision"] == pytest.approx(a["precision"], abs=0.02)
    assert "memorisation_ratio" in a and "memorisation_ratio" not in b  # that one needs the training images


def test_evaluate_without_the_dataset_uses_the_reference(with_reference, monkeypatch):
    monkeypatch.setattr(evaluate, "load_dataset", no_dataset)
    rows = evaluate.evaluate_bundle(with_reference, 80, 0, rows={"dfr": Settings(mode="dfr")}, progress=False)
    assert set(rows) == {"dfr"} and rows["dfr"]["fid"] > 0  # no real-data row without training images


def test_without_dataset_or_reference_the_data_error_stands(tiny_bundle, tmp_path, monkeypatch):
    import shutil

    bare = tmp_path / "digits"
    bare.mkdir()
    for name in ("base", "classifier"):
        shutil.copy(tiny_bundle / f"{name}.safetensors", bare)
    monkeypatch.setattr(evaluate, "load_dataset", no_dataset)
    with pytest.raises(DataError, match="not installed"):
        evaluate.scorer_for(Bundle(bare))


def test_a_reference_that_does_not_fit_the_extractor_is_refused(with_reference, tmp_path):
    bad = tmp_path / "reference.safetensors"
    save_tensors(
        {"features": torch.zeros(10, 3), "labels": torch.zeros(10, dtype=torch.long)},
        {"test_to_train_median": 1.0},
        bad,
    )
    with pytest.raises(CheckpointError, match="features has shape"):
        load_reference(with_reference, bad)
