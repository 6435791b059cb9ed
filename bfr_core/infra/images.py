"""Turning samples into pictures: image grids and 2-D scatter plots as PIL images / PNG."""

from __future__ import annotations

import math

import numpy as np
import torch
from PIL import Image, ImageDraw


def to_uint8(x: torch.Tensor) -> np.ndarray:
    """[-1, 1] floats → uint8 pixels (clipped)."""
    return ((x.clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8).numpy()


def image_grid(
    x: torch.Tensor, ncol: int | None = None, scale: int | None = None, pad: int = 1
) -> Image.Image:
    """Tile (N, C, H, W) images in [-1, 1] (C = 1: grayscale, C = 3: RGB) into one picture, upscaled
    ``scale``× by pixel repetition, never blurred (default: whatever makes the grid about 300 px wide,
    at least 2×)."""
    n, c, h, w = x.shape
    ncol = ncol or math.ceil(math.sqrt(n))
    scale = scale or max(2, 300 // (ncol * (w + pad)))
    nrow = math.ceil(n / ncol)
    colour = (3,) if c == 3 else ()
    canvas = np.full((nrow * (h + pad) + pad, ncol * (w + pad) + pad, *colour), 40, dtype=np.uint8)
    pix = to_uint8(x.permute(0, 2, 3, 1) if c == 3 else x[:, 0])
    for i in range(n):
        r, c = divmod(i, ncol)
        canvas[
            pad + r * (h + pad) : pad + r * (h + pad) + h, pad + c * (w + pad) : pad + c * (w + pad) + w
        ] = pix[i]
    return Image.fromarray(canvas).resize((canvas.shape[1] * scale, canvas.shape[0] * scale), Image.NEAREST)


def scatter(
    points: torch.Tensor,
    size: int = 384,
    extent: float = 3.5,
    color=(30, 90, 200),
    background: torch.Tensor | None = None,
) -> Image.Image:
    """Draw (N, 2) points on a white square covering [−extent, extent]², as 3×3 dots over the light grey
    points of ``background`` (e.g. the data they should lie on), when given."""
    img = Image.new("RGB", (size, size), "white")
    draw = ImageDraw.Draw(img)

    def pixels(p: torch.Tensor):
        return ((p.clamp(-extent, extent) + extent) / (2 * extent) * (size - 1)).numpy()

    if background is not None:
        for x, y in pixels(background):
            draw.point((float(x), float(size - 1 - y)), fill=(200, 200, 200))
    for x, y in pixels(points):
        x, y = float(x), float(size - 1 - y)
        draw.rectangle((x - 1, y - 1, x + 1, y + 1), fill=color)
    return img


def picture(x: torch.Tensor, **kw) -> Image.Image:
    """A grid for images, a scatter plot for 2-D points."""
    return image_grid(x, **kw) if x.dim() == 4 else scatter(x, **kw)
