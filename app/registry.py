"""Bundles found under ``checkpoints/``, loaded once per process and shared by every user."""

from __future__ import annotations

import os
import sys
import threading
from functools import lru_cache
from pathlib import Path

from bfr_core.infra.checkpoint import CheckpointError
from bfr_core.eval.evaluate import Scorer, scorer_for
from bfr_core.views.bias_plane import bias_plane
from bfr_core.views.scores import stored_scores
from bfr_core.views.latent_view import LatentMap, bundle_latent_map, map_setting
from bfr_core.infra.data import load_dataset
from bfr_core.infra.dataset import DataError
from bfr_core.bundle import SHARED_FILE, read_json
from bfr_core.pipeline import Pipeline
from bfr_core.views.roundtrip import load_examples

from .memo import single_flight

ROOT = Path(__file__).resolve().parent.parent
CHECKPOINTS = Path(os.environ.get("BFR_CHECKPOINTS", ROOT / "checkpoints"))
PREFERRED_ORDER = (
    "mnist",
    "mnist-wide",
    "mnist-alpha",
    "mnist-leak",
    "mnist-euler8",
    "fashion-mnist",
    "cifar10",
    "cifar10-cpu",
    "digits",
    "moons",
)


def available_bundles(root: Path | None = None) -> list[str]:
    """Bundle directory names (those holding base.safetensors or sharing one), preferred ones first."""
    root = root or CHECKPOINTS
    names = sorted({p.parent.name for p in root.glob("*/base.safetensors")} | shared_base_bundles(root))
    return sorted(names, key=lambda n: (PREFERRED_ORDER.index(n) if n in PREFERRED_ORDER else 99, n))


def shared_base_bundles(root: Path) -> set[str]:
    """Directories whose shared.json takes the base from a sibling (a base sampled differently)."""
    names = set()
    for f in root.glob(f"*/{SHARED_FILE}"):
        try:
            if "base" in read_json(f):
                names.add(f.parent.name)
        except (CheckpointError, TypeError):
            continue  # loading the bundle names the problem
    return names


def bias_description(name: str) -> str:
    """One line on where the bundle's bias comes from: its card's, or read from its base's metadata."""
    bundle = pipeline(name).bundle
    if bundle.description:
        return bundle.description
    meta = bundle.meta["base"]
    if meta.get("leak"):
        return f"signal leak: trained from √(1−l²)ε + l·x, l = {meta['leak']:g}, sampled from pure N(0, I)"
    return f"short training ({meta.get('steps', '?')} steps): model error"


def bundle_choices() -> list[tuple[str, str]]:
    """(menu label, bundle name) for the bundle pickers; a bundle that fails to load is left out of the
    menu, with its error on stderr, so one broken directory does not take the app down."""
    choices = []
    for n in available_bundles():
        try:
            choices.append((f"{n} — {bias_description(n)}", n))
        except CheckpointError as e:
            print(f"bundle {n!r} left out of the menu: {e}", file=sys.stderr)
    return choices


_lock = threading.Lock()


@lru_cache(maxsize=None)
def _pipeline(name: str) -> Pipeline:
    return Pipeline(CHECKPOINTS / name)


def pipeline(name: str) -> Pipeline:
    if name not in available_bundles():
        raise ValueError(f"unknown bundle {name!r}; available: {', '.join(available_bundles())}")
    with _lock:
        return _pipeline(name)


@lru_cache(maxsize=None)
def scorer(name: str) -> Scorer:
    """How bundle ``name``'s samples are scored: from its dataset when on disk, else its shipped reference."""
    return scorer_for(pipeline(name).bundle)


@single_flight(maxsize=16)
def _latent_map(name: str, alpha: float | None, lfr_nfe: int | None) -> LatentMap:
    return bundle_latent_map(pipeline(name), alpha, lfr_nfe)


def latent_map(name: str, alpha: float | None = None, lfr_nfe: int | None = None) -> LatentMap:
    """Bundle ``name``'s latent map at one LFR setting (None: its defaults, stored fitted in the bundle).
    Kept per setting; a request that arrives while the same map is being computed (by the start-up
    warm-up or another visitor) waits for that computation instead of repeating it."""
    return _latent_map(name, alpha, lfr_nfe)


@single_flight(maxsize=16)
def _bias_plane(name: str, alpha: float | None, lfr_nfe: int | None) -> dict:
    pipe = pipeline(name)
    return bias_plane(pipe, map_setting(pipe, alpha, lfr_nfe))


def bias_plane_of(name: str, alpha: float | None = None, lfr_nfe: int | None = None) -> dict:
    """Bundle ``name``'s bias plane at one LFR setting (None: its defaults), kept per setting like the map."""
    return _bias_plane(name, alpha, lfr_nfe)


@lru_cache(maxsize=None)
def scores(name: str) -> dict[str, dict]:
    """Bundle ``name``'s stored scores (``views.scores.stored_scores``), read from its files once."""
    return stored_scores(pipeline(name))


@lru_cache(maxsize=None)
def examples(name: str):
    """(images, labels) shipped in bundle ``name`` for the Inspect tab; a ValueError when it has none."""
    ex = load_examples(pipeline(name).bundle)
    if ex is None:
        raise ValueError(f"bundle {name!r} ships no example images (build them with `bfr examples`)")
    return ex


@lru_cache(maxsize=None)
def training_images(name: str):
    """The training images of bundle ``name``'s dataset when it is on disk, else None."""
    try:
        return load_dataset(pipeline(name).bundle.dataset).x_train
    except DataError:
        return None
