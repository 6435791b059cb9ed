"""The bias plane: its two coordinates by their formulas, and on every shipped bundle the same order of
distances as in all d dimensions, with the one-Euler-step collapse drawn as a collapse."""

import pytest
import torch

from bfr_core.infra.checkpoint import load_tensors
from bfr_core.pipeline import Pipeline
from bfr_core.views.bias_plane import (
    COLLAPSE_RATIO,
    PLANE_FILE,
    bias_plane,
    contraction,
    low_variance_coordinates,
    plane_coordinates,
    plane_distances,
    stored_plane,
)
from bfr_core.views.latent_view import DISTANCE_KEYS, map_setting, read_stored_map, same_setting
from conftest import ROOT

PLANE_BUNDLES = [p.parent.name for p in sorted((ROOT / "checkpoints").glob(f"*/{PLANE_FILE}.safetensors"))]


def test_plane_coordinates_are_the_norm_per_dimension_and_the_rms_where_the_biased_latents_vary_least():
    g = torch.Generator().manual_seed(0)
    biased = torch.randn(50, 1, 4, 4, generator=g)
    biased[:, 0, 0, :] *= 0.01  # the first row barely varies: those 4 pixels are the quarter kept
    low = low_variance_coordinates(biased)
    assert sorted(low.tolist()) == [0, 1, 2, 3]
    z = torch.randn(7, 1, 4, 4, generator=g)
    xy = plane_coordinates(z, low)
    flat = z.flatten(1).double()
    assert torch.allclose(xy[:, 0].double(), flat.norm(dim=1) / 4, atol=1e-6)
    assert torch.allclose(xy[:, 1].double(), flat[:, :4].pow(2).mean(1).sqrt(), atol=1e-6)
    points = torch.randn(5, 2, generator=g)  # 2-D latents are their own map
    assert torch.equal(plane_coordinates(points, low_variance_coordinates(points)), points)


def test_contraction_is_the_ratio_of_mean_norms_and_flags_a_collapse():
    biased = torch.tensor([[0.8, 0.3], [0.6, 0.2]])
    plane = {"biased": biased, "refined": torch.tensor([[0.2, 0.1], [0.1, 0.1]]), "axes": ("‖z‖", "y")}
    assert contraction(plane) == pytest.approx(0.15 / 0.7)
    assert contraction(plane | {"refined": None}) is None


@pytest.mark.parametrize("name", PLANE_BUNDLES)
def test_on_every_stored_setting_the_plane_orders_distances_as_the_d_dimensional_ones(name):
    """refined → biased against refined → prior: the same winner on the plane as in d dimensions (the
    latent map's stored energy distances, on the same prior draws); a setting whose two d-dimensional
    distances are within 10% of each other is a tie and is not asked to agree."""
    pipe = Pipeline(ROOT / "checkpoints" / name)
    tensors, meta = read_stored_map(pipe)
    _, plane_meta = load_tensors(pipe.bundle.file(PLANE_FILE))
    checked = 0
    for setting in plane_meta["settings"]:
        index = next(i for i, s in enumerate(meta["settings"]) if same_setting(s, setting))
        d = dict(zip(DISTANCE_KEYS, tensors["refined_distances"][index].tolist()))
        plane = stored_plane(pipe, setting)
        flat = plane_distances(plane["prior"], plane["biased"], plane["refined"])
        rb, rp = d["refined_to_biased"], d["refined_to_prior"]
        if abs(rb - rp) < 0.1 * max(rb, rp):
            continue
        assert (rb < rp) == (flat["refined_to_biased"] < flat["refined_to_prior"]), (setting, d, flat)
        checked += 1
    assert checked >= 5


def test_the_one_euler_step_collapse_looks_like_a_collapse_and_rk4_does_not():
    """On mnist the LFR at one Euler step shrinks its draws far below the biased cloud; at one RK4 step
    (the paper's setting) its cloud lands on the biased one."""
    pipe = Pipeline(ROOT / "checkpoints" / "mnist")
    setting = {"alpha": 0.2, "lfr_solver": "euler", "lfr_nfe": 1}
    euler1, rk4 = bias_plane(pipe, map_setting(pipe, None, 1)), bias_plane(pipe, map_setting(pipe, None, 4))
    assert setting.items() <= map_setting(pipe, None, 1).items()
    assert contraction(euler1) < COLLAPSE_RATIO <= contraction(rk4)
    assert float(euler1["refined"][:, 0].max()) < float(euler1["biased"][:, 0].median())  # all below
    assert float(euler1["refined"][:, 1].std()) < float(euler1["biased"][:, 1].std())  # and tighter


def test_bfr_bias_plane_stores_what_the_view_would_compute_live(tiny_bundle, tmp_path):
    import shutil

    from bfr_core.cli.main import main

    bundle = tmp_path / "digits"
    shutil.copytree(tiny_bundle, bundle)
    assert main(["--quiet", "bias-plane", "--bundle", str(bundle), "--points", "50"]) == 0
    stored_pipe = Pipeline(bundle)
    setting = map_setting(stored_pipe, None, 4)
    stored = stored_plane(stored_pipe, setting)
    _, meta = load_tensors(bundle / f"{PLANE_FILE}.safetensors")
    assert meta["points"] == 50 and len(meta["settings"]) == 10 and meta["wall_s"] >= 0
    (bundle / f"{PLANE_FILE}.safetensors").unlink()
    live = bias_plane(Pipeline(bundle), setting, points=50)
    for cloud in ("prior", "biased", "refined"):
        assert torch.allclose(stored[cloud], live[cloud], atol=1e-6), cloud
