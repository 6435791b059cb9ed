"""Datasets: toy 2-D point clouds, scikit-learn's 8x8 digits, MNIST / Fashion-MNIST IDX files, and
CIFAR-10 from its official binary distribution or from a JPEG copy (``cifar10-jpeg-q75.tar.gz``).

Every loader returns a :class:`Dataset` with a fixed train / held-out test split. Images
live in [-1, 1] with shape (C, H, W); toy points have shape (2,). Nothing is downloaded.
"""

from __future__ import annotations

import gzip
import math
import os
import struct
from pathlib import Path

import numpy as np
import torch

from bfr_core.infra.cifar_jpeg import CIFAR_SHAPE, CLASSES as CIFAR_CLASSES, find_jpeg_copy, load_jpeg_copy
from bfr_core.infra.dataset import DataError, Dataset

TOY_SETS = ("moons", "8gaussians", "checkerboard", "spirals", "rings")
IMAGE_SETS = ("digits", "mnist", "fashion-mnist", "cifar10")
DATASETS = TOY_SETS + IMAGE_SETS
# what each class label means, where it is not the digit itself (label k is the k-th name)
CLASS_NAMES = {
    "cifar10": CIFAR_CLASSES,
    "fashion-mnist": (
        "T-shirt/top",
        "trouser",
        "pullover",
        "dress",
        "coat",
        "sandal",
        "shirt",
        "sneaker",
        "bag",
        "ankle boot",
    ),
}


def class_name(dataset: str, label: int) -> str:
    """``"3 cat"`` for CIFAR-10's label 3; the label alone (``"3"``) where the label is the digit itself."""
    names = CLASS_NAMES.get(dataset)
    return f"{label} {names[label]}" if names else str(label)


IDX_FILES = {
    "train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
    "test": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"),
}
REPO_ROOT = Path(__file__).resolve().parents[2]


def load_dataset(name: str, data_dir: str | os.PathLike | None = None, seed: int = 0) -> Dataset:
    """Load a dataset by name (one of :data:`DATASETS`).

    Args:
        name: a toy 2-D set, "digits" (8×8, bundled), "mnist", "fashion-mnist" or "cifar10".
        data_dir: where the MNIST-style IDX files or CIFAR-10 binary batches are (else BFR_DATA_DIR,
            the repository's ``data/``, then ``../shared/data`` beside it); never downloaded.
        seed: draws the toy sets' points.

    Returns:
        Dataset: train and test tensors in [-1, 1] (images N×C×H×W), labels, and the class count.
        Raises DataError naming the missing or malformed file and where it was looked for.
    """
    if name in TOY_SETS:
        return toy2d(name, n_train=20000, n_test=5000, seed=seed)
    if name == "digits":
        return digits()
    if name in ("mnist", "fashion-mnist"):
        return idx_dataset(name, data_dir)
    if name == "cifar10":
        return cifar10_dataset(data_dir)
    raise DataError(f"unknown dataset {name!r}; choose one of {', '.join(DATASETS)}")


# ----------------------------------------------------------------------------- toy 2-D
def toy_points(name: str, n: int, generator: torch.Generator) -> torch.Tensor:
    """Draw ``n`` points of a toy 2-D distribution, scaled to roughly unit spread."""
    g = generator
    if name == "moons":
        u = torch.rand(n, generator=g) * math.pi
        upper = torch.rand(n, generator=g) < 0.5
        x = torch.where(upper, torch.cos(u), 1 - torch.cos(u))
        y = torch.where(upper, torch.sin(u), 0.5 - torch.sin(u))
        pts = torch.stack([x - 0.5, y - 0.25], 1) * 1.5
        return pts + 0.06 * torch.randn(n, 2, generator=g)
    if name == "8gaussians":
        k = torch.randint(0, 8, (n,), generator=g).float() * (2 * math.pi / 8)
        centres = torch.stack([torch.cos(k), torch.sin(k)], 1) * 2.0
        return centres + 0.15 * torch.randn(n, 2, generator=g)
    if name == "checkerboard":
        x1 = torch.rand(n, generator=g) * 4 - 2
        x2 = torch.rand(n, generator=g) - torch.randint(0, 2, (n,), generator=g).float() * 2
        x2 = x2 + (torch.floor(x1) % 2)
        return torch.stack([x1, x2], 1)
    if name == "spirals":
        r = torch.sqrt(torch.rand(n, generator=g)) * 3 * math.pi
        arm = (torch.rand(n, generator=g) < 0.5).float() * 2 - 1
        pts = torch.stack([-torch.cos(r) * r, torch.sin(r) * r], 1) * arm[:, None] / 4.0
        return pts + 0.08 * torch.randn(n, 2, generator=g)
    if name == "rings":  # two concentric circles, radii 1 and 2, the outer holding twice the points
        radius = torch.where(torch.rand(n, generator=g) < 1 / 3, 1.0, 2.0)
        angle = torch.rand(n, generator=g) * 2 * math.pi
        pts = torch.stack([torch.cos(angle), torch.sin(angle)], 1) * radius[:, None]
        return pts + 0.08 * torch.randn(n, 2, generator=g)
    raise DataError(f"unknown toy set {name!r}; choose one of {', '.join(TOY_SETS)}")


def toy2d(name: str, n_train: int, n_test: int, seed: int = 0) -> Dataset:
    g = torch.Generator().manual_seed(seed)
    x = toy_points(name, n_train + n_test, g)
    y = torch.zeros(len(x), dtype=torch.long)
    return Dataset(name, x[:n_train], y[:n_train], x[n_train:], y[n_train:], num_classes=1)


# ----------------------------------------------------------------------------- digits
DIGITS_TEST_SIZE = 397  # 1,400 train / 397 held-out test, as in METHOD.md's check


def digits(split_seed: int = 0) -> Dataset:
    """scikit-learn's bundled 8x8 digits (1,797 images, values 0..16) scaled to [-1, 1].

    The split is a fixed permutation (``split_seed``) into 1,400 train / 397 test images.
    """
    from sklearn.datasets import load_digits

    raw = load_digits()
    x = torch.tensor(raw.images, dtype=torch.float32)[:, None] / 8.0 - 1.0
    y = torch.tensor(raw.target, dtype=torch.long)
    perm = torch.randperm(len(x), generator=torch.Generator().manual_seed(split_seed))
    test, train = perm[:DIGITS_TEST_SIZE], perm[DIGITS_TEST_SIZE:]
    return Dataset("digits", x[train], y[train], x[test], y[test], num_classes=10)


# ----------------------------------------------------------------------------- IDX (MNIST)
def candidate_dirs(name: str, data_dir: str | os.PathLike | None) -> list[Path]:
    """Directories searched for ``name``'s IDX files, in order."""
    roots = [Path(data_dir)] if data_dir else []
    if os.environ.get("BFR_DATA_DIR"):
        roots.append(Path(os.environ["BFR_DATA_DIR"]))
    roots += [REPO_ROOT / "data", REPO_ROOT.parent / "shared" / "data"]
    dirs = []
    for root in roots:
        dirs += [root / name, root]
    return dirs


def find_idx_file(stem: str, dirs: list[Path]) -> Path | None:
    for d in dirs:
        for candidate in (d / stem, d / f"{stem}.gz"):
            if candidate.is_file():
                return candidate
    return None


def read_idx(path: Path, expected_dims: int) -> np.ndarray:
    """Read one IDX file (plain or gzip): magic 0x0000 08 ``dims``, big-endian sizes, uint8 data."""
    opener = gzip.open if path.suffix == ".gz" else open
    try:
        with opener(path, "rb") as f:
            raw = f.read()
    except (OSError, EOFError) as e:
        raise DataError(f"{path}: cannot read ({e}); the file is damaged or not gzip") from None
    if len(raw) < 4 + 4 * expected_dims:
        raise DataError(f"{path}: only {len(raw)} bytes, too short for an IDX header")
    zero, dtype_code, dims = struct.unpack(">HBB", raw[:4])
    if zero != 0 or dtype_code != 0x08 or dims != expected_dims:
        raise DataError(
            f"{path}: not a uint8 IDX file with {expected_dims} dimension(s) "
            f"(header says type 0x{dtype_code:02x}, {dims} dimension(s))"
        )
    sizes = struct.unpack(f">{dims}I", raw[4 : 4 + 4 * dims])
    body = raw[4 + 4 * dims :]
    if len(body) != int(np.prod(sizes)):
        raise DataError(f"{path}: header promises {int(np.prod(sizes))} bytes of data, file has {len(body)}")
    return np.frombuffer(body, dtype=np.uint8).reshape(sizes)


def idx_dataset(name: str, data_dir: str | os.PathLike | None = None) -> Dataset:
    """MNIST or Fashion-MNIST from the original IDX files (60k train / 10k test, 28x28)."""
    dirs = candidate_dirs(name, data_dir)
    arrays = {}
    for split, (img_stem, lbl_stem) in IDX_FILES.items():
        for stem, dims in ((img_stem, 3), (lbl_stem, 1)):
            path = find_idx_file(stem, dirs)
            if path is None:
                searched = ", ".join(str(d) for d in dirs)
                raise DataError(
                    f"{name}: file {stem}[.gz] not found. Needed: "
                    f"{', '.join(s + '[.gz]' for pair in IDX_FILES.values() for s in pair)}. "
                    f"Searched: {searched}. Put the files in a directory and pass "
                    f"--data-dir DIR or set BFR_DATA_DIR=DIR (DIR or DIR/{name})."
                )
            arrays[stem] = read_idx(path, dims)
    out = {}
    for split, (img_stem, lbl_stem) in IDX_FILES.items():
        images, labels = arrays[img_stem], arrays[lbl_stem]
        if len(images) != len(labels):
            raise DataError(f"{name} {split}: {len(images)} images but {len(labels)} labels")
        out[split] = (
            torch.from_numpy(images.astype(np.float32) / 127.5 - 1.0)[:, None],
            torch.from_numpy(labels.astype(np.int64)),
        )
    return Dataset(name, *out["train"], *out["test"], num_classes=10)


# ----------------------------------------------------------------------------- CIFAR-10 (binary version)
CIFAR_FILES = {"train": tuple(f"data_batch_{i}.bin" for i in range(1, 6)), "test": ("test_batch.bin",)}
CIFAR_RECORD = 1 + 3 * 32 * 32  # one label byte, then 1,024 red, 1,024 green and 1,024 blue bytes, row-major


def read_cifar_batch(path: Path) -> tuple[np.ndarray, np.ndarray]:
    """One file of the CIFAR-10 *binary* version: (images uint8 (N, 3, 32, 32), labels uint8 (N,)).

    Never the pickled Python version: these files are plain bytes, records of 3,073 bytes each.
    """
    try:
        raw = path.read_bytes()
    except OSError as e:
        raise DataError(f"{path}: cannot read ({e})") from None
    if len(raw) == 0 or len(raw) % CIFAR_RECORD:
        raise DataError(
            f"{path}: {len(raw)} bytes is not a whole number of CIFAR-10 records ({CIFAR_RECORD} bytes: "
            "1 label byte + 3,072 image bytes); the file is truncated or not the binary version"
        )
    records = np.frombuffer(raw, dtype=np.uint8).reshape(-1, CIFAR_RECORD)
    labels = records[:, 0]
    if labels.max() > 9:
        bad = int(np.argmax(labels > 9))
        raise DataError(f"{path}: record {bad} has label {labels[bad]}, CIFAR-10 labels are 0..9")
    return records[:, 1:].reshape(-1, *CIFAR_SHAPE), labels


def cifar10_dataset(data_dir: str | os.PathLike | None = None) -> Dataset:
    """CIFAR-10 (50k train / 10k test, 3×32×32) from ``data_batch_{1..5}.bin`` and ``test_batch.bin``,
    found in DIR, DIR/cifar10 or DIR/cifar-10-batches-bin (DIR: --data-dir, BFR_DATA_DIR, data/); else
    from the JPEG copy (:mod:`bfr_core.infra.cifar_jpeg`) in the same folders."""
    dirs = []
    for d in candidate_dirs("cifar10", data_dir):
        dirs += [d, d / "cifar-10-batches-bin"]
    if not any((d / CIFAR_FILES["train"][0]).is_file() for d in dirs):
        source = find_jpeg_copy(candidate_dirs("cifar10", data_dir))
        if source is not None:
            return load_jpeg_copy(source)
    out = {}
    for split, names in CIFAR_FILES.items():
        parts = []
        for name in names:
            path = next((d / name for d in dirs if (d / name).is_file()), None)
            if path is None:
                raise DataError(
                    f"cifar10: file {name} not found. Needed: "
                    f"{', '.join(n for files in CIFAR_FILES.values() for n in files)} (the binary version, "
                    "cifar-10-binary.tar.gz, or the JPEG copy cifar10-jpeg-q75.tar.gz). Searched: "
                    f"{', '.join(str(d) for d in dirs)}. Pass --data-dir "
                    "DIR or set BFR_DATA_DIR=DIR."
                )
            parts.append(read_cifar_batch(path))
        images = np.concatenate([p[0] for p in parts])
        labels = np.concatenate([p[1] for p in parts])
        out[split] = (
            torch.from_numpy(images.astype(np.float32) / 127.5 - 1.0),
            torch.from_numpy(labels.astype(np.int64)),
        )
    return Dataset("cifar10", *out["train"], *out["test"], num_classes=10)
