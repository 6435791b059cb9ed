"""CIFAR-10 from its binary distribution, on synthetic files in that format (no real data needed)."""

import json
import os
import subprocess
from pathlib import Path

import numpy as np
import pytest
import torch

from bfr_core.data import CIFAR_RECORD, DataError, load_dataset

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
    env = {**os.environ, "SMOKE": "1", "BFR_DATA_DIR": str(tmp_path / "data")}
    r = subprocess.run(
        ["bash", "scripts/build_bundle.sh", "cifar10", str(out)],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert r.returncode == 0, r.stdout[-2000:] + r.stderr[-2000:]
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
