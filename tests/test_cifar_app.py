"""The shipped CIFAR-10 bundle in every view of the app, with no dataset on disk: everything a view shows
comes from the bundle (its models, stored views, reference features and example images), colour pictures are
upscaled without blur, and every answer is computed without an error."""

import numpy as np
import pytest
from PIL import Image

from app import registry
from app.tabs import bundles, inspector, latents, overrefine, refine, trajectories
from bfr_core.infra.dataset import DataError

BUNDLE = "cifar10-cpu"


@pytest.fixture(autouse=True)
def no_dataset(monkeypatch, tmp_path):
    """As on a fresh clone without ../shared/data: the loader finds no dataset anywhere, so nothing may need
    one (the caches that read datasets start empty)."""
    import bfr_core.infra.data

    monkeypatch.setattr(bfr_core.infra.data, "candidate_dirs", lambda name, data_dir: [tmp_path])
    caches = (registry.scorer, registry.training_images, registry.examples)
    for cache in caches:
        cache.cache_clear()
    with pytest.raises(DataError):
        bfr_core.infra.data.load_dataset("cifar10")
    yield
    for cache in caches:
        cache.cache_clear()


def picture(path) -> np.ndarray:
    return np.asarray(Image.open(path["path"] if isinstance(path, dict) else path))


def test_the_cifar_bundle_is_offered_with_its_bias():
    assert BUNDLE in registry.available_bundles()
    assert registry.bias_description(BUNDLE).startswith("short training on a 2-core CPU")


def test_refine_shows_colour_samples_upscaled_without_blur_and_their_stored_score():
    *images, summary, _ = refine.refine(BUNDLE, 0, 4, "any", "rk4", 20, "lfr+dfr", "ode", 4, 0.2, 4, "dfr")
    first = picture(images[0])
    assert first.ndim == 3 and first.shape[2] >= 3  # RGB, not grey
    colours = first[..., :3].reshape(-1, 3).astype(int)
    assert (np.abs(colours[:, 0] - colours[:, 1]) > 10).mean() > 0.05  # channels differ: a colour picture
    # nearest-neighbour upscaling: each 32-px sample becomes blocks of equal pixels (no blur between them)
    row = first[first.shape[0] // 2, :, :3].astype(int)
    runs = np.flatnonzero(np.abs(np.diff(row, axis=0)).sum(1)) if len(row) > 1 else []
    assert len(runs) < len(row) / 2, "upscaled pixels should repeat in blocks"
    assert "lfr" in summary and "dfr" in summary and "Error" not in summary


def test_the_class_dropdown_names_cifars_classes_and_keeps_the_labels_as_values():
    choices = refine.class_hint(BUNDLE)["choices"]
    assert choices[0] == ("any", "any") and choices[4] == ("3 cat", "3") and choices[10] == ("9 truck", "9")
    assert refine.class_hint("mnist")["choices"][4] == ("3", "3")  # a digit names itself
    *_, summary, hist = refine.refine(BUNDLE, 0, 4, "3", "rk4", 20, "none", "ode", 4, 0.2, 4, "dfr")
    assert "Error" not in summary  # the value "3" still asks for class 3
    assert list(hist.data[0].x) == [name for name, _ in choices[1:]]  # the histogram names them too


def test_the_latents_map_its_clicked_ring_and_the_inspector_answer_from_the_bundle_alone():
    plane, umap_map, _, text, _ = latents.latents(BUNDLE, 0.2, 4, progress=lambda *a, **k: None)
    assert plane is not None and umap_map is not None and "Energy distance in all d dimensions" in text
    strip, ring_text, *_ = latents.inspect_latent(BUNDLE, 5, 0.2, 4)
    assert picture(strip).shape[2] >= 3 and "Biased latent #5" in ring_text
    strip, text, _ = inspector.inspect_example(BUNDLE, 3, "rk4", 8, 0.2)
    assert picture(strip).shape[2] >= 3 and "Bias meter" in text and "the dataset is not on disk" in text


def test_trajectories_over_refinement_and_the_bundle_card_answer():
    strip, text = trajectories.trajectory(BUNDLE, 0, 8, 2, 0.5)
    assert picture(strip).shape[2] >= 3 and "t = 0.50" in text
    answer = overrefine.overrefine(BUNDLE, 0.2, "precomputed", progress=lambda *a, **k: None)
    assert all(part is not None for part in answer)
    card = bundles.bundle_card(BUNDLE)
    assert "| base |" in card and "20,000" in card and "cifar10" in card
