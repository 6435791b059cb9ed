"""A bundle: one directory of trained models, loaded and cross-checked.

A bundle is a directory of safetensors files (see ``infra/checkpoint.py``): ``base`` (required), one file
per refiner of ``refiners.REFINERS`` (``lfr``, ``lfr_reflow``, ``dfr``, …), the feature extractors
``classifier`` and ``classifier2`` (an independent second metric) and ``latents`` (cached inverted
latents). Bundles of one dataset share files instead of copying them: a ``shared.json`` such as
``{"classifier": "mnist", "classifier2": "mnist"}`` loads those files from the sibling bundle directory
``../mnist``; any file may be shared that way, so a bundle can be one base sampled differently. An optional
``bundle.json`` card says what the bundle's bias is and may override the base's recorded sampling:
``{"description": "…", "base_sampling": {"solver": "euler", "nfe": 8}}``, and say whether the DFR's images
are clipped to the pixel range (``"dfr_clip": true``).
"""

from __future__ import annotations

import copy
import json
import re
from pathlib import Path

import torch

from bfr_core.generative.ode import FIXED_SOLVERS, grid_steps
from bfr_core.infra.cards import ModelCard
from bfr_core.infra.checkpoint import CheckpointError, load_model, load_tensors
from bfr_core.refiners import REFINERS

FEATURE_EXTRACTORS = ("classifier", "classifier2")  # metric networks; never run by the pipeline
MODEL_FILES = ("base",) + tuple(REFINERS) + FEATURE_EXTRACTORS
# reference.safetensors: test features of the extractors; examples.safetensors: a few test images
SHAREABLE = MODEL_FILES + (
    "latents",
    "latent_map",
    "bias_plane",
    "reference",
    "inception_reference",
    "examples",
)
SHARED_FILE = "shared.json"
CARD_FILE = "bundle.json"
CARD_FIELDS = {"description", "base_sampling", "dfr_clip"}


class Bundle:
    """Loads and cross-checks the models of one bundle directory."""

    def __init__(self, path: str | Path):
        self.path = Path(path)
        if not self.path.is_dir():
            raise CheckpointError(f"{self.path}: bundle directory not found")
        if self.file("base") is None:
            raise CheckpointError(f"{self.path}: no base.safetensors; not a bundle directory")
        self.card = load_card(self.path / CARD_FILE)
        self.models, self.meta, self.cards = {}, {}, {}
        for name in MODEL_FILES:
            f = self.file(name)
            if f is not None:
                self.models[name], self.meta[name] = load_model(f)
                self.cards[name] = ModelCard.from_meta(self.meta[name], str(f), MODEL_FILES)
        self.latents = None
        latents = self.file("latents")
        if latents is not None:
            tensors, meta = load_tensors(latents)
            if "z" not in tensors or tensors["z"].shape[1:] != self.shape:
                raise CheckpointError(f"{latents}: needs a tensor 'z' of shape (N, *{self.shape})")
            self.latents = {k: v.float() if v.is_floating_point() else v for k, v in tensors.items()}
            self.meta["latents"] = meta
        self.check_consistency()

    def flows_to(self, device: torch.device) -> "Bundle":
        """Move the flow networks (base and refiners) to ``device``; the feature extractors stay on the
        CPU, where scoring runs. ``flow_map`` feeds a network on a GPU there and returns to the CPU, so
        samples, draws and metrics are the same tensors either way (up to the GPU's arithmetic)."""
        for name, model in self.models.items():
            if name not in FEATURE_EXTRACTORS:
                model.to(device)
        return self

    def shared_files(self) -> dict[str, Path]:
        """Files taken from a sibling bundle, as ``shared.json`` names them."""
        f = self.path / SHARED_FILE
        spec = read_json(f)
        if not isinstance(spec, dict):
            raise CheckpointError(f"{f}: must map file names to sibling bundle names")
        out = {}
        for name, sibling in spec.items():
            if name not in SHAREABLE:
                raise CheckpointError(f"{f}: only {', '.join(SHAREABLE)} can be shared, not {name!r}")
            if not isinstance(sibling, str) or not re.fullmatch(r"[A-Za-z0-9_-]+", sibling):
                raise CheckpointError(f"{f}: {name!r} must name a sibling bundle directory, got {sibling!r}")
            if (self.path / f"{name}.safetensors").is_file():
                raise CheckpointError(f"{f}: {name} is both shared and present in the bundle")
            out[name] = self.path.parent / sibling / f"{name}.safetensors"
            if not out[name].is_file():
                raise CheckpointError(
                    f"{f}: the shared file {name}.safetensors is missing from bundle {sibling!r}"
                )
        return out

    def file(self, name: str) -> Path | None:
        """The bundle's own ``NAME.safetensors``, or the sibling's one that shared.json names, or None."""
        path = self.shared_files().get(name, self.path / f"{name}.safetensors")
        return path if path.is_file() else None

    def with_model(self, name: str, path: str | Path) -> "Bundle":
        """A copy of this bundle whose ``name`` model comes from another file, checked as usual.

        E.g. ``with_model("base", earlier_base)`` applies the trained refiners, without retraining,
        to another base generator (cross-model transfer), or ``with_model("dfr", variant)``.
        """
        if name not in MODEL_FILES:
            raise ValueError(f"model name must be one of {', '.join(MODEL_FILES)}, got {name!r}")
        other = copy.copy(self)
        other.models, other.meta, other.cards = dict(self.models), dict(self.meta), dict(self.cards)
        other.models[name], other.meta[name] = load_model(path)
        other.cards[name] = ModelCard.from_meta(other.meta[name], str(path), MODEL_FILES)
        role = other.meta[name].get("role")
        if name in REFINERS and role not in (None, name):
            raise CheckpointError(f"{path}: holds a {role} model, which cannot serve as {name}")
        other.check_consistency()
        if name == "base" and other.cards["base"].shape != self.shape:
            raise CheckpointError(f"{path}: data shape differs from the bundle's {list(self.shape)}")
        return other

    @property
    def shape(self) -> tuple[int, ...]:
        return self.cards["base"].shape

    @property
    def num_classes(self) -> int:
        return self.cards["base"].num_classes

    @property
    def dataset(self) -> str:
        return self.cards["base"].dataset

    def has(self, name: str) -> bool:
        return name in self.models

    def sampling_default(self, name: str) -> dict:
        """The solver and NFE model ``name`` runs at by default: the card's ``base_sampling`` for the
        base when it has one, else what was recorded at training time."""
        if name == "base" and "base_sampling" in self.card:
            return self.card["base_sampling"]
        sampling = self.cards[name].sampling
        return {"solver": sampling.solver, "nfe": sampling.nfe} if sampling else {"solver": "rk4", "nfe": 4}

    @property
    def description(self) -> str | None:
        """The card's one line on where this bundle's bias comes from, if it has one."""
        return self.card.get("description")

    def check_consistency(self) -> None:
        for name, meta in self.meta.items():
            if name in ("base", "latents") + FEATURE_EXTRACTORS:
                continue
            net = meta["net"]
            if tuple(net["shape"]) != self.shape:
                raise CheckpointError(
                    f"{self.path / name}.safetensors: data shape {net['shape']} "
                    f"differs from the base's {list(self.shape)}"
                )
            if int(net.get("num_classes", 0)) not in (0, self.num_classes):
                raise CheckpointError(
                    f"{self.path / name}.safetensors: {net['num_classes']} classes, "
                    f"base has {self.num_classes}"
                )
        for name in FEATURE_EXTRACTORS:
            if name in self.meta and tuple(self.meta[name]["net"]["shape"]) != self.shape:
                raise CheckpointError(f"{self.path / name}.safetensors: image shape differs from the base's")

    def alpha_range(self) -> tuple[float, float] | None:
        """(0, α_max) for an α-conditioned LFR, None for a fixed-α one."""
        card = self.cards.get("lfr")
        return (0.0, float(card.alpha_max)) if card is not None and card.alpha_max is not None else None


def read_json(path: Path):
    """The JSON value in ``path`` ({} when there is no such file); a CheckpointError when unreadable."""
    if not path.is_file():
        return {}
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (ValueError, UnicodeDecodeError):
        raise CheckpointError(f"{path}: not valid JSON") from None


def load_card(path: Path) -> dict:
    """A bundle card (``bundle.json``), validated: only ``description`` (a line of text),
    ``base_sampling`` ({"solver", "nfe"}, a fixed-step solver) and ``dfr_clip`` (clip the data
    refiner's images to the pixel range; chosen per bundle on held-out images) are allowed; absent → {}."""
    card = read_json(path)
    if not isinstance(card, dict) or not set(card) <= CARD_FIELDS:
        raise CheckpointError(f"{path}: a bundle card holds only {', '.join(sorted(CARD_FIELDS))}")
    if not isinstance(card.get("dfr_clip", False), bool):
        raise CheckpointError(f"{path}: 'dfr_clip' must be true or false")
    desc = card.get("description", "")
    if not isinstance(desc, str) or len(desc) > 200 or "\n" in desc:
        raise CheckpointError(f"{path}: 'description' must be one line of at most 200 characters")
    sampling = card.get("base_sampling")
    if sampling is not None:
        ok = isinstance(sampling, dict) and set(sampling) == {"solver", "nfe"}
        try:
            ok = ok and sampling["solver"] in FIXED_SOLVERS and type(sampling["nfe"]) is int
            ok = ok and grid_steps(sampling["solver"], sampling["nfe"]) > 0
        except ValueError:
            ok = False
        if not ok:
            want = '{"solver": euler|midpoint|rk4, "nfe": N}'
            raise CheckpointError(f"{path}: 'base_sampling' must be {want}")
    return card
