"""The Refine controls' defaults and the picture reader the app tests share."""

import numpy as np
from PIL import Image

from app import pictures
from app.tabs import refine


DEFAULTS = dict(
    bundle="digits",
    seed=3,
    n=16,
    label="any",
    base_solver="rk4",
    base_nfe=20,
    mode="lfr+dfr",
    lfr_variant="ode",
    lfr_nfe=4,
    alpha=0.2,
    dfr_nfe=4,
)


def call(**overrides):
    return refine.refine(**{**DEFAULTS, **overrides})


def pixels(path) -> np.ndarray:
    """A picture's pixels; the app's pictures without the white band over them (``pictures.framed``)."""
    path = path["path"] if isinstance(path, dict) else path
    array = np.asarray(Image.open(path))
    served = "bfr-explorer-" in str(path) or "/gradio/" in str(path)  # the app's, or a client's download
    return array[pictures.BAND :] if served else array
