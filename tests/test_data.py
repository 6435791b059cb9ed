import gzip
import struct

import numpy as np
import pytest
import torch

from bfr_core.infra.data import TOY_SETS, candidate_dirs, digits, idx_dataset, load_dataset, read_idx
from bfr_core.infra.dataset import DataError


@pytest.mark.parametrize("name", TOY_SETS)
def test_toy_sets_are_deterministic_2d(name):
    a, b = load_dataset(name), load_dataset(name)
    assert a.x_train.shape == (20000, 2) and a.x_test.shape == (5000, 2)
    assert torch.equal(a.x_train, b.x_train)
    assert a.x_train.abs().max() < 6


def test_rings_are_two_circles_of_radius_1_and_2_with_a_third_of_the_points_inside():
    x = load_dataset("rings").x_train
    norm = x.norm(dim=1)
    inner = norm < 1.5
    assert abs(inner.float().mean().item() - 1 / 3) < 0.01  # 20,000 draws: sd 0.0033
    assert abs(norm[inner].mean().item() - 1) < 0.01 and abs(norm[~inner].mean().item() - 2) < 0.01
    angle = torch.atan2(x[:, 1], x[:, 0])  # uniform around the circle: its mean direction is ~0
    assert torch.stack([angle.cos().mean(), angle.sin().mean()]).abs().max() < 0.02


def test_digits_split():
    ds = digits()
    assert ds.x_train.shape == (1400, 1, 8, 8) and ds.x_test.shape == (397, 1, 8, 8)
    assert ds.x_train.min() >= -1 and ds.x_train.max() <= 1
    train_rows = {tuple(r) for r in ds.x_train.flatten(1).tolist()}
    overlap = sum(tuple(r) in train_rows for r in ds.x_test.flatten(1).tolist())
    assert overlap <= 5  # scikit-learn's digits hold a few exact duplicates, nothing more
    assert sorted(torch.unique(ds.y_test).tolist()) == list(range(10))


def write_idx(path, array, gz):
    header = struct.pack(">HBB", 0, 8, array.ndim) + struct.pack(f">{array.ndim}I", *array.shape)
    data = header + array.astype(np.uint8).tobytes()
    with (gzip.open if gz else open)(path, "wb") as f:
        f.write(data)


def fake_mnist(root, gz=True, n_train=6, n_test=4):
    rng = np.random.default_rng(0)
    suffix = ".gz" if gz else ""
    for split, n in (("train", n_train), ("t10k", n_test)):
        write_idx(root / f"{split}-images-idx3-ubyte{suffix}", rng.integers(0, 256, (n, 28, 28)), gz)
        write_idx(root / f"{split}-labels-idx1-ubyte{suffix}", rng.integers(0, 10, (n,)), gz)


@pytest.mark.parametrize("gz", [True, False])
def test_idx_reader(tmp_path, gz, monkeypatch):
    monkeypatch.delenv("BFR_DATA_DIR", raising=False)
    fake_mnist(tmp_path, gz)
    ds = idx_dataset("mnist", tmp_path)
    assert ds.x_train.shape == (6, 1, 28, 28) and ds.x_test.shape == (4, 1, 28, 28)
    raw = read_idx(tmp_path / ("train-images-idx3-ubyte" + (".gz" if gz else "")), 3)
    expected = torch.tensor(raw / 127.5 - 1.0, dtype=torch.float32)
    assert (ds.x_train[:, 0] - expected).abs().max() < 1e-6, (ds.x_train[:, 0] - expected).abs().max()


def test_env_variable_is_used(tmp_path, monkeypatch):
    (tmp_path / "fashion-mnist").mkdir()
    fake_mnist(tmp_path / "fashion-mnist")
    monkeypatch.setenv("BFR_DATA_DIR", str(tmp_path))
    assert load_dataset("fashion-mnist").x_train.shape[0] == 6


def test_missing_file_message_says_what_and_where(tmp_path, monkeypatch):
    monkeypatch.delenv("BFR_DATA_DIR", raising=False)
    monkeypatch.setattr("bfr_core.infra.data.candidate_dirs", lambda name, d: [tmp_path])
    with pytest.raises(DataError) as e:
        idx_dataset("mnist", tmp_path)
    msg = str(e.value)
    assert "train-images-idx3-ubyte" in msg and "--data-dir" in msg and "BFR_DATA_DIR" in msg


@pytest.mark.parametrize(
    "damage,msg",
    [
        (lambda b: b[:2], "too short"),
        (lambda b: b"\x00\x00\x0d\x03" + b[4:], "not a uint8 IDX"),
        (lambda b: b[:-10], "header promises"),
    ],
)
def test_malformed_idx(tmp_path, damage, msg):
    p = tmp_path / "x-idx3-ubyte"
    write_idx(p, np.zeros((2, 28, 28)), gz=False)
    p.write_bytes(damage(p.read_bytes()))
    with pytest.raises(DataError, match=msg):
        read_idx(p, 3)


def test_unknown_dataset():
    with pytest.raises(DataError, match="unknown dataset 'cifar'"):
        load_dataset("cifar")


def test_real_mnist_when_present():
    dirs = candidate_dirs("mnist", None)
    if not any((d / "train-images-idx3-ubyte.gz").exists() for d in dirs):
        pytest.skip("MNIST IDX files are not on this machine")
    ds = load_dataset("mnist")
    assert ds.x_train.shape == (60000, 1, 28, 28) and ds.x_test.shape == (10000, 1, 28, 28)
    assert torch.bincount(ds.y_test).tolist()[:3] == [980, 1135, 1032]


def test_random_rows_draws_k_distinct_rows_in_file_order_reproducibly():
    from bfr_core.infra.dataset import random_rows

    x = torch.arange(100)
    a = random_rows(x, 10, seed=3)
    assert len(a) == 10 and len(set(a.tolist())) == 10 and a.tolist() == sorted(a.tolist())
    assert torch.equal(a, random_rows(x, 10, seed=3)) and not torch.equal(a, random_rows(x, 10, seed=4))
    assert a.tolist() != list(range(10)) and a.max() > 50  # not the first block
    assert torch.equal(random_rows(x, 200), x)  # k ≥ len: all of it
