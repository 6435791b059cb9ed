"""CIFAR-10 from its JPEG copy: ``cifar10-jpeg-q75.tar.gz`` (as shipped) or the folder it unpacks to.

Layout: ``train/<class>/0000.jpg … 4999.jpg`` and ``test/<class>/0000.jpg … 0999.jpg``, classes in the
official label order (airplane = 0 … truck = 9). The images are JPEG re-encodings (quality 75) of the
official ones, so every score computed against them is a score *against the JPEG copy*.

Order: image k of class c becomes row ``k·10 + c`` of its split, so the classes are interleaved and any
contiguous slice (e.g. the last 10,000 training images held out for model choice) is class-balanced. The
official interleaved order is not recoverable from the copy.

Decoding 60,000 JPEGs takes a while, so the decoded uint8 pixels are cached once as safetensors under
``BFR_CACHE_DIR`` (default ``~/.cache/bfr-explorer``), named after the source's SHA-256; a cache whose
recorded source hash, shapes or labels do not match is decoded again. A truncated or foreign archive is
refused by name, and nothing is cached from it.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import sys
import tarfile
import zlib
from pathlib import Path

import numpy as np
import torch

from bfr_core.infra.checkpoint import save_tensors
from bfr_core.infra.dataset import DataError, Dataset

CIFAR_SHAPE = (3, 32, 32)
ARCHIVE_NAME = "cifar10-jpeg-q75.tar.gz"
FOLDER_NAMES = ("cifar10-jpeg-q75", "")  # the unpacked copy: DIR/cifar10-jpeg-q75/train/... or DIR/train/...
CLASSES = ("airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck")
PER_CLASS = {"train": 5000, "test": 1000}
CACHE_ENV = "BFR_CACHE_DIR"


def find_jpeg_copy(dirs: list[Path]) -> Path | None:
    """The first archive or unpacked folder of the JPEG copy in ``dirs``, or None."""
    for d in dirs:
        if (d / ARCHIVE_NAME).is_file():
            return d / ARCHIVE_NAME
        for name in FOLDER_NAMES:
            if (d / name / "train" / CLASSES[0]).is_dir():
                return d / name
    return None


def source_fingerprint(source: Path) -> str:
    """SHA-256 of the archive's bytes, or of a folder's sorted (relative name, size) list and file bytes."""
    h = hashlib.sha256()
    if source.is_file():
        with open(source, "rb") as f:
            for block in iter(lambda: f.read(1 << 20), b""):
                h.update(block)
        return h.hexdigest()
    for path in sorted(source.rglob("*.jpg")):
        h.update(str(path.relative_to(source)).encode() + b"\0")
        h.update(path.read_bytes())
    return h.hexdigest()


def _member_key(name: str) -> tuple[str, int, int] | None:
    """``train/cat/0042.jpg`` → ("train", 3, 42); None for folders and other non-image entries."""
    parts = name.strip("./").split("/")
    if len(parts) != 3 or not parts[2].endswith(".jpg"):
        return None
    split, cls, file = parts
    if split not in PER_CLASS or cls not in CLASSES or not file[:-4].isdigit():
        raise DataError(
            f"unexpected entry {name!r}: not the CIFAR-10 JPEG copy's layout (split/class/NNNN.jpg)"
        )
    return split, CLASSES.index(cls), int(file[:-4])


def _jpeg_files(source: Path):
    """Yield (name, bytes) of every entry of the archive or folder."""
    if source.is_dir():
        for path in sorted(source.rglob("*.jpg")):
            yield str(path.relative_to(source)), path.read_bytes()
        return
    try:
        with tarfile.open(source, "r:gz") as tar:
            for member in tar:
                if member.isfile():
                    yield member.name, tar.extractfile(member).read()
    except (tarfile.TarError, EOFError, zlib.error, OSError) as e:
        raise DataError(f"{source}: truncated or not a gzip-compressed tar archive ({e})") from None


def decode(source: Path) -> dict[str, np.ndarray]:
    """Decode every image: {"train": uint8 (50000, 3, 32, 32), "test": uint8 (10000, 3, 32, 32)},
    classes interleaved."""
    from PIL import Image

    out = {split: np.zeros((n * len(CLASSES), *CIFAR_SHAPE), np.uint8) for split, n in PER_CLASS.items()}
    seen = {split: np.zeros(n * len(CLASSES), bool) for split, n in PER_CLASS.items()}
    for name, data in _jpeg_files(source):
        key = _member_key(name)
        if key is None:
            continue
        split, label, k = key
        if k >= PER_CLASS[split]:
            raise DataError(
                f"{source}: {name}: index {k} past the {PER_CLASS[split]} images a class has in {split}"
            )
        try:
            with Image.open(io.BytesIO(data)) as im:
                pixels = np.asarray(im.convert("RGB"))
        except Exception as e:  # PIL raises many kinds on a damaged JPEG
            raise DataError(f"{source}: {name}: not a readable JPEG ({type(e).__name__})") from None
        if pixels.shape != (32, 32, 3):
            raise DataError(
                f"{source}: {name}: {pixels.shape[1]}×{pixels.shape[0]} pixels, CIFAR-10 is 32×32"
            )
        row = k * len(CLASSES) + label
        out[split][row] = pixels.transpose(2, 0, 1)
        seen[split][row] = True
    for split, flags in seen.items():
        if not flags.all():
            missing = int((~flags).sum())
            first = int(np.argmax(~flags))
            raise DataError(
                f"{source}: {missing} of {len(flags)} {split} images missing (first: "
                f"{split}/{CLASSES[first % 10]}/{first // 10:04d}.jpg); the archive is truncated or "
                "incomplete"
            )
    return out


def cache_path(fingerprint: str) -> Path:
    root = Path(os.environ.get(CACHE_ENV) or Path.home() / ".cache" / "bfr-explorer")
    return root / f"cifar10-jpeg-{fingerprint[:16]}.safetensors"


def _read_cache(path: Path, fingerprint: str) -> dict[str, np.ndarray] | None:
    from safetensors import safe_open

    try:
        with safe_open(str(path), "np") as f:
            meta = json.loads(f.metadata().get("bfr", "{}"))
            arrays = {split: f.get_tensor(split) for split in PER_CLASS}
    except Exception:  # missing, truncated or foreign: decode again
        return None
    ok = meta.get("source_sha256") == fingerprint and all(
        arrays[s].shape == (n * len(CLASSES), *CIFAR_SHAPE) and arrays[s].dtype == np.uint8
        for s, n in PER_CLASS.items()
    )
    return arrays if ok else None


def _write_cache(path: Path, arrays: dict[str, np.ndarray], fingerprint: str) -> None:
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        meta = {"source_sha256": fingerprint, "layout": "row k*10+c = image k of class c"}
        save_tensors({s: torch.from_numpy(a) for s, a in arrays.items()}, meta, path)
    except OSError as e:  # a read-only home: work without the cache
        print(
            f"cifar10: could not cache the decoded images at {path} ({e}); decoding each time",
            file=sys.stderr,
        )


def load_jpeg_copy(source: Path) -> Dataset:
    """The JPEG copy as a Dataset in [-1, 1] (decoded once, then read from the checked cache)."""
    fingerprint = source_fingerprint(source)
    path = cache_path(fingerprint)
    arrays = _read_cache(path, fingerprint)
    if arrays is None:
        arrays = decode(source)
        _write_cache(path, arrays, fingerprint)
    splits = []
    for split in PER_CLASS:
        x = torch.from_numpy(arrays[split].astype(np.float32) / 127.5 - 1.0)
        y = torch.arange(len(x)) % len(CLASSES)
        splits += [x, y]
    return Dataset("cifar10", *splits, num_classes=len(CLASSES))
