"""PIL pictures for the UI: image grids, difference maps and rows, saved as content-named PNG files."""

from __future__ import annotations

import hashlib
import io

import numpy as np
import torch
from PIL import Image

from bfr_core.infra.checkpoint import atomic_write_bytes
from bfr_core.infra.images import picture

from .service import private_dir


PNG_DIR = private_dir("bfr-explorer-png-")  # this process's own (mode 0700), removed at exit


def grid(x: torch.Tensor) -> Image.Image:
    """Samples as a picture: an image grid about 300 px wide, or a scatter plot of points."""
    return picture(x) if x.dim() == 4 else picture(x, size=320)


def difference_map(a: torch.Tensor, b: torch.Tensor) -> Image.Image:
    """|b − a| per pixel, white = no change, dark red = a change of 1 or more."""
    d = (b - a).abs().clamp(0, 1)
    g = grid(1 - 2 * d).convert("RGB") if a.dim() == 4 else grid(b - a)
    arr = np.asarray(g).copy()
    if a.dim() == 4:
        arr[..., 1] = arr[..., 2] = arr[..., 0] // 2 + 127 * (arr[..., 0] > 250)
    return Image.fromarray(arr)


def picture_rows(rows: torch.Tensor) -> Image.Image:
    """(R, N, C, H, W) → one grid with a row per R (e.g. per NFE)."""
    r, n = rows.shape[:2]
    return picture(rows.reshape(r * n, *rows.shape[2:]), ncol=n)


def png_file(img: Image.Image) -> str:
    """Save ``img`` as PNG at a path named by its content hash, written atomically.

    Returning a file path (rather than a PIL image) matters under concurrency: Gradio writes
    PIL outputs non-atomically to a content-hashed cache path, so two users receiving the
    same picture at once could read a half-written file; file paths are copied atomically.
    """
    buf = io.BytesIO()
    img.save(buf, format="PNG")
    data = buf.getvalue()
    path = PNG_DIR / f"{hashlib.sha256(data).hexdigest()[:24]}.png"
    if not path.exists():
        atomic_write_bytes(data, path)
    return str(path)
