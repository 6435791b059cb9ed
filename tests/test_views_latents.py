"""The Latents and Inspect views' library: latent distances, the UMAP map every slider setting shares, a
cached latent's round trip and the stored example images."""

import os

import numpy as np
import pytest
import torch

from bfr_core.views.latent_view import LatentMap, latent_distances, norm_per_dim
from bfr_core.eval.metrics import energy_distance
from bfr_core.pipeline import Pipeline, Settings


def test_norm_per_dim_is_the_norm_over_root_d():
    z = torch.stack([torch.ones(2, 3, 3), 2 * torch.ones(2, 3, 3), torch.zeros(2, 3, 3)])
    assert norm_per_dim(z).tolist() == [1.0, 2.0, 0.0]
    v = torch.tensor([[3.0, 4.0, 0.0, 0.0]])
    assert norm_per_dim(v).item() == pytest.approx(5 / 2)


def test_latent_distances_are_energy_distances_of_the_first_points():
    g = torch.Generator().manual_seed(0)
    prior, biased = torch.randn(40, 5, generator=g), 0.5 * torch.randn(40, 5, generator=g)
    d = latent_distances(prior, biased, biased.clone(), max_points=30)
    assert d["refined_to_biased"] == pytest.approx(0.0, abs=1e-12)
    assert d["refined_to_prior"] == pytest.approx(energy_distance(biased[:30], prior[:30]))
    assert d["prior_to_biased"] == d["refined_to_prior"] > 0


def test_latent_map_fits_all_three_clouds_jointly_and_reuses_stored_coordinates():
    g = torch.Generator().manual_seed(1)
    prior, biased = torch.randn(60, 4, generator=g), 0.3 * torch.randn(60, 4, generator=g)
    refined = 0.5 * prior
    lmap = LatentMap(prior, biased, None, refined=refined, n_neighbors=5)
    xy = lmap.fit().coords()
    assert lmap.fit().coords().equal(xy)  # idempotent
    assert xy.shape == (180, 2) and lmap.refined_xy.shape == (60, 2)
    assert np.array_equal(lmap.refined_xy, xy[120:].numpy()) and np.array_equal(
        lmap.prior_xy, xy[:60].numpy()
    )
    stored = LatentMap(prior, biased, None, refined=refined, coords=xy)
    assert stored.fitted and np.array_equal(stored.biased_xy, lmap.biased_xy)
    with pytest.raises(ValueError, match="stored map has"):
        LatentMap(prior, biased, None, coords=xy)  # coordinates for three clouds, two given


def test_umaps_kernels_are_compiled_once_a_machine_into_numbas_disk_cache():
    """After import_umap every module-level umap kernel caches on disk; a fit looks its kernels up there
    (a hit, or a miss that writes the file the next process reads) instead of compiling in every process."""
    from numba.core.caching import FunctionCache

    from bfr_core.views.latent_view import umap_2d
    from bfr_core.views.umap_kernels import cached_kernels, import_umap

    umap = import_umap()
    assert import_umap() is umap
    kernels = cached_kernels(umap.umap_) + cached_kernels(umap.layouts)
    assert len(kernels) > 10 and all(isinstance(k._cache, FunctionCache) for k in kernels)
    umap_2d(np.random.default_rng(0).normal(size=(40, 3)).astype(np.float32), 5, 0)
    used = umap.umap_.smooth_knn_dist
    assert sum(used.stats.cache_hits.values()) + sum(used.stats.cache_misses.values()) >= 1
    assert os.path.exists(used._cache._cache_file._index_path)


def test_latent_map_command_stores_every_slider_setting_on_one_map_the_app_reads(
    tiny_bundle, tmp_path, capsys
):
    import shutil

    from bfr_core.infra.checkpoint import CheckpointError, load_tensors, save_tensors
    from bfr_core.cli.main import main
    from bfr_core.views.latent_view import MAP_FILE, MAP_NFES, bundle_latent_map, slider_settings

    bundle = tmp_path / "digits"
    shutil.copytree(tiny_bundle, bundle)
    live = bundle_latent_map(Pipeline(bundle), alpha=0.3, lfr_nfe=3)  # nothing stored: refined here
    assert not live.fitted and live.refined is not None and live.setting["lfr_solver"] == "euler"
    assert main(["--quiet", "latent-map", "--bundle", str(bundle), "--refined-points", "520"]) == 0
    tensors, meta = load_tensors(bundle / f"{MAP_FILE}.safetensors")
    pipe = Pipeline(bundle)
    settings = slider_settings(pipe)  # α 0, 0.05, …, 0.5 (the LFR's range) × NFE 1..10, default first
    assert len(settings) == 11 * len(MAP_NFES) and len(meta["settings"]) == len(settings)
    s = pipe.resolve(Settings(mode="lfr"))
    assert {k: settings[0][k] for k in ("alpha", "lfr_solver", "lfr_nfe")} == {
        "alpha": s.alpha,
        "lfr_solver": s.lfr_solver,
        "lfr_nfe": s.lfr_nfe,
    }
    k = len(live.prior)
    shown = [x["shown"] for x in meta["settings"]]
    assert shown[0] == k and set(shown[1:]) == {(520 - k) // (len(settings) - 1)}
    assert tensors["xy"].shape == (2 * k + sum(shown), 2) and tensors["refined_norms"].shape == (
        len(settings),
        k,
    )
    # a stored setting is read, never refined: its figures are those of all its refined draws
    no_refining = Pipeline(bundle)
    no_refining.refine = lambda *a, **kw: pytest.fail("a stored setting was refined")
    stored = bundle_latent_map(no_refining, alpha=0.3, lfr_nfe=3)
    assert stored.fitted and stored.refined is None and len(stored.refined_xy) == shown[1]
    assert np.allclose(stored.cloud_norms()["LFR-refined"], live.cloud_norms()["LFR-refined"], atol=1e-6)
    for key, value in live.distances().items():
        assert stored.distances()[key] == pytest.approx(value, rel=1e-9)
    first = bundle_latent_map(no_refining)
    assert np.array_equal(first.prior_xy, stored.prior_xy)  # one map: only the refined cloud moves
    assert len(first.refined_xy) == k
    i = next(i for i, x in enumerate(meta["settings"]) if x["alpha"] == 0.3 and x["lfr_nfe"] == 3)
    start = 2 * k + sum(shown[:i])
    assert torch.equal(torch.from_numpy(stored.refined_xy), tensors["xy"][start : start + shown[i]])
    off_grid = bundle_latent_map(Pipeline(bundle), alpha=0.33, lfr_nfe=3)  # not on the slider grid: live
    assert not off_grid.fitted and off_grid.refined is not None
    assert main(["--quiet", "train-lfr", "--bundle", str(bundle), "--steps", "2", "--alpha-max", "0.5"]) == 0
    assert not bundle_latent_map(Pipeline(bundle)).fitted  # a retrained LFR: the stored map no longer fits
    assert main(["--quiet", "latent-map", "--bundle", str(bundle)]) == 2
    assert "already has a stored map" in capsys.readouterr().err
    (bundle / f"{MAP_FILE}.safetensors").unlink()  # a smaller map: the app reads its clouds at its size
    assert (
        main(["--quiet", "latent-map", "--bundle", str(bundle), "--points", "40", "--refined-points", "150"])
        == 0
    )
    small = bundle_latent_map(Pipeline(bundle), alpha=0.1, lfr_nfe=2)
    assert small.fitted and small.prior.shape[0] == small.biased.shape[0] == 40
    assert len(small.cloud_norms()["LFR-refined"]) == 40
    save_tensors(
        {"xy": torch.zeros(4, 2)}, {"points": 2, "prior_seed": 1}, bundle / f"{MAP_FILE}.safetensors"
    )
    with pytest.raises(CheckpointError, match="not a map of this bundle's first"):
        bundle_latent_map(Pipeline(bundle))
    save_tensors(
        {"xy": torch.zeros(2 * k, 2)},
        {"points": k, "prior_seed": 12345, "lfr": {}},
        bundle / f"{MAP_FILE}.safetensors",
    )
    with pytest.raises(CheckpointError, match="an old map without its settings list"):
        bundle_latent_map(Pipeline(bundle))


def test_decoding_a_cached_latent_is_the_second_half_of_the_round_trip(tiny_bundle):
    from bfr_core.generative.ode import flow_map
    from bfr_core.views.roundtrip import decode_latent, round_trip

    pipe = Pipeline(tiny_bundle)
    z, y = pipe.bundle.latents["z"][:1], int(pipe.bundle.latents["y"][0])
    label = torch.tensor([y])
    rt = decode_latent(pipe, z, y, "euler", 8, alpha=0.3, lfr_nfe=3)
    assert rt.image is None and rt.reconstruction_error is None
    decoded = flow_map(pipe.bundle.models["base"], z, label, None, 0, 1, "euler", 8).x
    assert torch.allclose(rt.regenerated, decoded, atol=1e-5)  # decoded in one batch with the LFR's latent
    s = pipe.resolve(Settings("lfr", "euler", 8, lfr_solver="euler", lfr_nfe=3, alpha=0.3))
    moved = pipe.refine("latent", z, label, s, torch.Generator()).x
    assert torch.allclose(rt.lfr_regenerated, pipe.generate(moved, label, s).x, atol=1e-5)
    x = torch.zeros(1, *pipe.bundle.shape)
    with_image = decode_latent(pipe, z, y, "euler", 8, alpha=0.3, lfr_nfe=3, image=x)
    assert with_image.reconstruction_error == pytest.approx(float(rt.regenerated.abs().mean()))
    whole = round_trip(pipe, x, y, "rk4", 8, alpha=0.3)  # invert, then the same decoding
    half = decode_latent(pipe, whole.latent, y, "rk4", 8, alpha=0.3, image=x)
    assert torch.equal(whole.regenerated, half.regenerated) and whole.latent_stats == half.latent_stats


def test_examples_round_trip_through_the_cli_and_the_round_trip_inspector(tiny_bundle, tmp_path):
    import shutil

    from bfr_core.cli.main import main
    from bfr_core.infra.data import load_dataset
    from bfr_core.generative.ode import flow_map
    from bfr_core.generative.inversion import invert
    from bfr_core.views.roundtrip import bias_meter, load_examples, round_trip

    bundle = tmp_path / "digits"
    shutil.copytree(tiny_bundle, bundle)
    assert main(["--quiet", "examples", "--bundle", str(bundle), "--n", "10"]) == 0
    pipe = Pipeline(bundle)
    x, y = load_examples(pipe.bundle)
    ds = load_dataset("digits")
    assert x.shape == (10, 1, 8, 8) and torch.equal(y, ds.y_test[:10])
    assert torch.allclose(x, ds.x_test[:10], atol=1e-3)  # stored as float16
    rt = round_trip(pipe, x[:1], int(y[0]), "rk4", 20, alpha=0.2)
    base, label = pipe.bundle.models["base"], y[:1]
    z = invert(base, x[:1], label, "rk4", 20, desc=None)
    assert torch.equal(rt.latent, z) and rt.latent_stats["norm_per_dim"] == pytest.approx(
        float(norm_per_dim(z))
    )
    back = flow_map(base, z, label, None, 0.0, 1.0, "rk4", 20).x
    # G(z_b) is decoded in one batch with the LFR's latent: the same to float rounding (~1e-8 per pixel)
    assert rt.reconstruction_error == pytest.approx(float((back - x[:1]).abs().mean()), abs=1e-6)
    meter = bias_meter(pipe, x, y, "euler", 8, seed=4)
    z_all = invert(base, x, y, "euler", 8, desc=None)
    prior = torch.randn(z_all.shape, generator=torch.Generator().manual_seed(4))
    assert meter["energy_to_prior"] == pytest.approx(energy_distance(z_all, prior))
    assert meter["shell_width"] == pytest.approx(1 / 128**0.5)


def test_examples_of_the_wrong_shape_are_refused(tiny_bundle, tmp_path):
    import shutil

    from bfr_core.infra.checkpoint import CheckpointError
    from bfr_core.views.roundtrip import EXAMPLES_FILE, load_examples, save_examples

    bundle = tmp_path / "digits"
    shutil.copytree(tiny_bundle, bundle)
    save_examples(torch.zeros(4, 1, 28, 28), torch.zeros(4, dtype=torch.long), {}, bundle / EXAMPLES_FILE)
    with pytest.raises(CheckpointError, match="needs 'x' of shape"):
        load_examples(Pipeline(bundle).bundle)
