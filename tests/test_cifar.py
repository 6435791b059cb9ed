"""CIFAR-10 from its binary distribution, on synthetic files in that format (no real data needed)."""

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from bfr_core.infra.data import CIFAR_RECORD, load_dataset
from bfr_core.infra.dataset import DataError
from bfr_core.cli.main import main

ROOT = Path(__file__).resolve().parent.parent


def write_cifar(root: Path, train_per_batch: int = 40, test: int = 100, seed: int = 0) -> np.ndarray:
    """data_batch_1..5.bin and test_batch.bin of random records; returns the first train record."""
    rng = np.random.default_rng(seed)
    root.mkdir(parents=True, exist_ok=True)
    first = None
    for name, n in [(f"data_batch_{i}.bin", train_per_batch) for i in range(1, 6)] + [
        ("test_batch.bin", test)
    ]:
        rec = rng.integers(0, 256, (n, CIFAR_RECORD), dtype=np.uint8)
        rec[:, 0] = np.arange(n) % 10
        rec.tofile(root / name)
        first = rec[0] if first is None else first
    return first


def test_records_decode_to_channel_planes_in_minus_one_one(tmp_path):
    first = write_cifar(tmp_path / "cifar-10-batches-bin")
    ds = load_dataset("cifar10", tmp_path)
    assert ds.x_train.shape == (200, 3, 32, 32) and ds.x_test.shape == (100, 3, 32, 32)
    assert ds.y_train[:12].tolist() == [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 0, 1] and ds.num_classes == 10
    # byte 1 + c·1024 + r·32 + col of a record is channel c, row r, column col; x = byte / 127.5 − 1
    for c, r, col in ((0, 0, 0), (1, 0, 0), (2, 31, 31), (1, 5, 7)):
        byte = first[1 + c * 1024 + r * 32 + col]
        assert ds.x_train[0, c, r, col].item() == pytest.approx(byte / 127.5 - 1.0, abs=1e-6)
    assert ds.x_train.min() >= -1 and ds.x_train.max() <= 1


@pytest.mark.parametrize(
    "damage,msg",
    [
        (lambda p: p.write_bytes(p.read_bytes()[:-100]), "not a whole number of CIFAR-10 records"),
        (lambda p: p.write_bytes(np.zeros((40, 3072), np.uint8).tobytes()), "not a whole number of CIFAR-10"),
        (lambda p: p.write_bytes(b""), "not a whole number of CIFAR-10 records"),
        (lambda p: p.write_bytes(bytes([12]) + bytes(3072)), "record 0 has label 12"),
        (lambda p: p.unlink(), "file data_batch_3.bin not found"),
    ],
    ids=["truncated", "record-without-label", "empty", "bad-label", "missing"],
)
def test_damaged_files_are_named_with_the_problem(tmp_path, damage, msg):
    write_cifar(tmp_path)
    damage(tmp_path / "data_batch_3.bin")
    with pytest.raises(DataError, match=msg):
        load_dataset("cifar10", tmp_path)


def test_smoke_recipe_builds_every_stage_on_synthetic_cifar(tmp_path):
    write_cifar(tmp_path / "data")
    out = tmp_path / "bundle"
    argv = ["--quiet", "build", "cifar10", "--smoke", "--out", str(out), "--data-dir", str(tmp_path / "data")]
    assert main(argv) == 0
    times = json.loads((out / "build_times.json").read_text())
    stages = "train-base train-classifier invert train-lfr reflow-lfr train-dfr evaluate".split()
    assert all(times[stage] > 0 for stage in stages), times
    from bfr_core.pipeline import Pipeline, Settings

    pipe = Pipeline(out)
    assert pipe.bundle.shape == (3, 32, 32) and pipe.bundle.meta["lfr"]["alpha"] == 0.5
    assert pipe.bundle.meta["dfr"]["augment"]["noise_p"] == 0.3
    st = pipe.run(4, 0, Settings(mode="lfr+dfr"))
    assert st.final.shape == (4, 3, 32, 32) and torch.isfinite(st.final).all()
    rows = json.loads((out / "evaluate_seed0.json").read_text())
    assert {"base", "lfr", "dfr", "lfr-reflow-euler1"} <= set(rows)


# ----------------------------------------------------------------------------- the JPEG copy
def write_jpeg_archive(path: Path, per_class: dict, drop: str | None = None, extra: str | None = None):
    """A cifar10-jpeg-q75.tar.gz in the real layout with ``per_class`` images per class and split; image k of
    class c is a flat colour (c·20, k·40, 100), so decoding and ordering can be checked."""
    import io
    import tarfile

    from PIL import Image

    from bfr_core.infra.cifar_jpeg import CLASSES

    with tarfile.open(path, "w:gz") as tar:
        entries = [(s, c, k) for s, n in per_class.items() for c in range(10) for k in range(n)]
        for split, c, k in entries:
            name = f"{split}/{CLASSES[c]}/{k:04d}.jpg"
            if name == drop:
                continue
            buf = io.BytesIO()
            Image.new("RGB", (32, 32), (c * 20, k * 40, 100)).save(buf, "JPEG", quality=95)
            info = tarfile.TarInfo(name)
            info.size = len(buf.getvalue())
            tar.addfile(info, io.BytesIO(buf.getvalue()))
        if extra:
            info = tarfile.TarInfo(extra)
            info.size = 1
            tar.addfile(info, io.BytesIO(b"x"))


@pytest.fixture
def small_copy(tmp_path, monkeypatch):
    monkeypatch.setattr("bfr_core.infra.cifar_jpeg.PER_CLASS", {"train": 3, "test": 2})
    monkeypatch.setenv("BFR_CACHE_DIR", str(tmp_path / "cache"))
    return tmp_path


def test_the_jpeg_copy_loads_in_class_order_interleaved_and_is_cached(small_copy, monkeypatch):
    from bfr_core.infra import cifar_jpeg

    write_jpeg_archive(small_copy / "cifar10-jpeg-q75.tar.gz", {"train": 3, "test": 2})
    ds = load_dataset("cifar10", small_copy)
    assert ds.x_train.shape == (30, 3, 32, 32) and ds.x_test.shape == (20, 3, 32, 32)
    assert ds.y_train.tolist() == [i % 10 for i in range(30)]  # row k·10 + c = image k of class c
    for row in (0, 7, 13, 29):
        k, c = divmod(row, 10)
        pixel = (ds.x_train[row, :, 16, 16] + 1) * 127.5
        assert pixel.tolist() == pytest.approx([c * 20, k * 40, 100], abs=3)  # JPEG rounding
    assert len(list((small_copy / "cache").glob("cifar10-jpeg-*.safetensors"))) == 1

    def no_decoding(source):
        raise AssertionError("decoded again although the cache matches")

    monkeypatch.setattr(cifar_jpeg, "decode", no_decoding)
    again = load_dataset("cifar10", small_copy)
    assert torch.equal(again.x_train, ds.x_train) and torch.equal(again.y_test, ds.y_test)


def test_a_damaged_cache_is_decoded_again(small_copy):
    write_jpeg_archive(small_copy / "cifar10-jpeg-q75.tar.gz", {"train": 3, "test": 2})
    first = load_dataset("cifar10", small_copy)
    (cache,) = (small_copy / "cache").glob("*.safetensors")
    cache.write_bytes(cache.read_bytes()[:100])  # truncated
    assert torch.equal(load_dataset("cifar10", small_copy).x_train, first.x_train)


def test_truncated_incomplete_or_foreign_archives_are_refused_by_name(small_copy):
    path = small_copy / "cifar10-jpeg-q75.tar.gz"
    write_jpeg_archive(path, {"train": 3, "test": 2})
    path.write_bytes(path.read_bytes()[:-200])
    with pytest.raises(DataError, match="truncated or not a gzip-compressed tar archive"):
        load_dataset("cifar10", small_copy)
    write_jpeg_archive(path, {"train": 3, "test": 2}, drop="test/cat/0001.jpg")
    with pytest.raises(DataError, match=r"1 of 20 test images missing \(first: test/cat/0001.jpg\)"):
        load_dataset("cifar10", small_copy)
    write_jpeg_archive(path, {"train": 3, "test": 2}, extra="train/unicorn/0000.jpg")
    with pytest.raises(DataError, match="unexpected entry 'train/unicorn/0000.jpg'"):
        load_dataset("cifar10", small_copy)
    assert not list((small_copy / "cache").glob("*.safetensors"))  # nothing cached from a bad archive


SHARED_COPY = ROOT.parent / "shared" / "data" / "cifar10" / "cifar10-jpeg-q75.tar.gz"


@pytest.mark.skipif(not SHARED_COPY.is_file(), reason="../shared/data is beside every clone in CI")
def test_the_real_jpeg_copy_has_the_official_split_and_balanced_classes():
    ds = load_dataset("cifar10", SHARED_COPY.parent)
    assert ds.x_train.shape == (50000, 3, 32, 32) and ds.x_test.shape == (10000, 3, 32, 32)
    assert torch.bincount(ds.y_train[-10000:]).tolist() == [1000] * 10  # held-out slices are balanced
    assert ds.x_train.min() == -1 and ds.x_train.max() == 1
