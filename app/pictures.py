"""PIL pictures for the UI: image grids, difference maps and rows, saved as content-named PNG files."""

from __future__ import annotations

import hashlib
import io
from pathlib import Path

import numpy as np
import torch
from PIL import Image, ImageDraw

from bfr_core.infra.checkpoint import atomic_write_bytes
from bfr_core.infra.images import picture

from .disk_cap import FolderCap
from .service import OWN_GRADIO_DIR, private_dir


PNG_DIR = private_dir("bfr-explorer-png-")  # this process's own (mode 0700), removed at exit
RESULT_FOLDER_CAP = 64 * 2**20  # bytes each of the result folders (ours, Gradio's when ours) may hold
RESULT_FOLDERS = FolderCap([PNG_DIR] + ([Path(OWN_GRADIO_DIR)] if OWN_GRADIO_DIR else []), RESULT_FOLDER_CAP)
DIFF_FULL = 1.0  # the |refined − base| drawn full red: half the pixel range
LEGEND_H = 30  # px under a difference map for its colour legend
ROWS_WIDTH = 720  # px a picture of rows (a round trip, a drift strip) is scaled towards
BAND = 34  # px of white above every picture, under the image viewer's label and buttons


def grid(x: torch.Tensor, background: torch.Tensor | None = None) -> Image.Image:
    """Samples as a picture: an image grid about 300 px wide, or a scatter plot of points (over the grey
    points of ``background``, e.g. the data, when given)."""
    return picture(x) if x.dim() == 4 else picture(x, size=320, background=background)


def difference_map(a: torch.Tensor, b: torch.Tensor) -> Image.Image:
    """|b − a| per pixel (the largest over colour channels) from white (no change) to red (a change of
    DIFF_FULL — half the pixel range [-1, 1] — or more), linear in between, with its colour legend below;
    2-D points: the displacements drawn as points."""
    if a.dim() != 4:
        return grid(b - a)
    d = ((b - a).abs().amax(1, keepdim=True) / DIFF_FULL).clamp(0, 1)
    white_to_red = torch.cat([torch.ones_like(d), 1 - 2 * d, 1 - 2 * d], dim=1)
    return with_legend(grid(white_to_red))


def with_legend(img: Image.Image) -> Image.Image:
    """``img`` above a white-to-red bar labelled with the |refined − base| each colour means."""
    w, h = img.size
    out = Image.new("RGB", (w, h + LEGEND_H), "white")
    out.paste(img.convert("RGB"), (0, 0))
    bar = np.linspace(255, 0, w - 20).round().astype(np.uint8)
    strip = np.stack([np.full_like(bar, 255), bar, bar], -1)[None].repeat(10, 0)
    out.paste(Image.fromarray(strip), (10, h + 4))
    draw = ImageDraw.Draw(out)
    for frac, text in ((0.0, "0"), (0.5, f"{DIFF_FULL / 2:g}"), (1.0, f">= {DIFF_FULL:g}")):
        x = 10 + frac * (w - 20)
        draw.text((min(x, w - 30), h + 16), text, fill=(0, 0, 0))
    return out


def picture_rows(rows: torch.Tensor) -> Image.Image:
    """(R, N, C, H, W) → one grid with a row per R (e.g. per NFE), about ROWS_WIDTH px wide (at least 2×)."""
    r, n = rows.shape[:2]
    scale = max(2, ROWS_WIDTH // (n * (rows.shape[-1] + 1)))
    return picture(rows.reshape(r * n, *rows.shape[2:]), ncol=n, scale=scale)


def framed(img: Image.Image) -> Image.Image:
    """``img`` under a white band BAND px tall, where the viewer's label and buttons sit."""
    out = Image.new(img.mode if img.mode in ("RGB", "L") else "RGB", (img.width, img.height + BAND), "white")
    out.paste(img, (0, BAND))
    return out


def png_file(img: Image.Image) -> str:
    """Save ``img`` as PNG at a path named by its content hash, written atomically.

    Returning a file path (rather than a PIL image) matters under concurrency: Gradio writes
    PIL outputs non-atomically to a content-hashed cache path, so two users receiving the
    same picture at once could read a half-written file; file paths are copied atomically.
    """
    buf = io.BytesIO()
    framed(img).save(buf, format="PNG")
    data = buf.getvalue()
    path = PNG_DIR / f"{hashlib.sha256(data).hexdigest()[:24]}.png"
    if not path.exists():
        atomic_write_bytes(data, path)
        RESULT_FOLDERS.tick()
    return str(path)
