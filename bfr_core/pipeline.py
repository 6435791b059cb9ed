"""A bundle of trained models and the pipeline that composes them.

A bundle is a directory of safetensors files (see checkpoint.py):
``base`` (required), ``lfr``, ``lfr_reflow``, ``dfr``, ``classifier`` and ``latents``
(cached inverted latents), ``classifier2`` (an independent second metric). Bundles of one
dataset share their feature extractors instead of copying them: a ``shared.json`` such as
``{"classifier": "mnist", "classifier2": "mnist"}`` loads those files from the sibling bundle
directory ``../mnist``; any file may be shared that way, so a bundle can be one base sampled
differently. An optional ``bundle.json`` card says what the bundle's bias is and may override the
base's recorded sampling: ``{"description": "…", "base_sampling": {"solver": "euler", "nfe": 8}}``, and
say whether the DFR's images are clipped to the pixel range (``"dfr_clip": true``).
The pipeline draws z ~ N(0, I) for a seed and returns every
stage: prior latent z, LFR latent z' = F_LFR(z), base image G(z), LFR image G(z'), and the
final image after the optional DFR step x ↦ F_DFR(x).
"""

from __future__ import annotations

import copy
import json
import re
from dataclasses import dataclass, field, replace
from pathlib import Path

import torch

from .cards import ModelCard
from .checkpoint import CheckpointError, load_model, load_tensors
from .ode import FIXED_SOLVERS, ODEResult, flow_map, grid_steps
from .refiners import REFINERS, Refiner, refiner_for

MODE_SPACES = {"none": (), "lfr": ("latent",), "dfr": ("data",), "lfr+dfr": ("latent", "data")}
MODES = tuple(MODE_SPACES)  # "lfr" refines the latent, "dfr" the data, with the variants the settings name
FEATURE_EXTRACTORS = ("classifier", "classifier2")  # metric networks; never run by the pipeline
MODEL_FILES = ("base",) + tuple(REFINERS) + FEATURE_EXTRACTORS
# reference.safetensors: test features of the extractors; examples.safetensors: a few test images
SHAREABLE = MODEL_FILES + ("latents", "latent_map", "reference", "examples")
SHARED_FILE = "shared.json"
CARD_FILE = "bundle.json"
CARD_FIELDS = {"description", "base_sampling", "dfr_clip"}
MAX_SAMPLES = 10000  # one batch in memory: 10,000 MNIST images are ~31 MB per stage


def mode_spaces(mode: str) -> tuple[str, ...]:
    """The spaces a mode refines, in order: "lfr+dfr" → ("latent", "data"); a ValueError names a bad mode."""
    if mode not in MODE_SPACES:
        raise ValueError(f"unknown mode {mode!r}; choose one of {', '.join(MODES)}")
    return MODE_SPACES[mode]


@dataclass
class Settings:
    """Sampling settings; ``None`` means the bundle's default (recorded at training time).

    ``mode`` says which spaces are refined; ``lfr_variant`` / ``dfr_variant`` say by which refiner
    of the registry (``refiners.variants``), and ``lfr_*`` / ``dfr_*`` are that stage's solver and NFE.
    """

    mode: str = "lfr+dfr"
    base_solver: str | None = None
    base_nfe: int | None = None
    lfr_variant: str = "ode"  # "ode" (the paper's LFR) or "reflow" (1-Euler-step distilled)
    lfr_solver: str | None = None
    lfr_nfe: int | None = None
    alpha: float | None = None
    dfr_variant: str = "dfr"
    dfr_solver: str | None = None
    dfr_nfe: int | None = None

    def variant(self, space: str) -> str:
        return self.lfr_variant if space == "latent" else self.dfr_variant

    def refiners(self) -> list[Refiner]:
        """The refiners these settings run, latent before data."""
        return [refiner_for(space, self.variant(space)) for space in mode_spaces(self.mode)]

    def solver(self, stage: str) -> tuple[str | None, int | None]:
        """(solver, NFE) of a stage: "base", "lfr" (the latent refiner) or "dfr" (the data refiner)."""
        return getattr(self, f"{stage}_solver"), getattr(self, f"{stage}_nfe")


def refiner_settings(r: Refiner, solver: str | None = None, nfe: int | None = None, **more) -> Settings:
    """Settings that run refiner ``r`` alone at ``solver`` and ``nfe`` (None: its recorded default)."""
    return Settings(
        mode=r.stage,
        **{f"{r.stage}_variant": r.variant, f"{r.stage}_solver": solver, f"{r.stage}_nfe": nfe},
        **more,
    )


@dataclass
class Stages:
    """Every stage of one pipeline run (tensors on the CPU)."""

    z: torch.Tensor
    labels: torch.Tensor | None
    base: torch.Tensor  # G(z)
    z_refined: torch.Tensor | None = None  # F_latent(z)
    x_from_refined: torch.Tensor | None = None  # G(F_latent(z))
    final: torch.Tensor | None = None  # after the data refiner, if any
    nfe: dict = field(default_factory=dict)
    settings: Settings | None = None


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
                self.cards[name] = ModelCard.from_meta(self.meta[name], str(f))
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
        other.cards[name] = ModelCard.from_meta(other.meta[name], str(path))
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


class Pipeline:
    """Base generator + optional LFR + optional DFR, with all stages returned."""

    def __init__(self, bundle: Bundle | str | Path):
        self.bundle = bundle if isinstance(bundle, Bundle) else Bundle(bundle)

    def resolve(self, s: Settings) -> Settings:
        """Fill defaults from the bundle and validate every field (ValueError names it)."""
        b = self.bundle
        for r in s.refiners():  # raises a ValueError naming a bad mode or variant
            if not b.has(r.name):
                raise ValueError(
                    f"mode {s.mode!r} needs {r.name}.safetensors, which bundle {b.path} does not have"
                )
        out = replace(s)
        for stage, model in (
            ("base", "base"),
            ("lfr", refiner_for("latent", s.lfr_variant).name),
            ("dfr", refiner_for("data", s.dfr_variant).name),
        ):
            default = b.sampling_default(model) if b.has(model) else {"solver": "rk4", "nfe": 4}
            solver, nfe = s.solver(stage)
            solver = default["solver"] if solver is None else solver
            nfe = default["nfe"] if nfe is None else nfe
            if solver not in FIXED_SOLVERS:
                raise ValueError(f"{stage}_solver must be one of euler, midpoint, rk4, got {solver!r}")
            grid_steps(solver, nfe)  # raises a ValueError naming the problem
            setattr(out, f"{stage}_solver", solver)
            setattr(out, f"{stage}_nfe", nfe)
        if b.has("lfr"):
            rng = b.alpha_range()
            card = b.cards["lfr"]
            trained = card.alpha
            default = card.alpha_default if card.alpha_default is not None else (trained or 0.0)
            out.alpha = s.alpha if s.alpha is not None else float(default)
            if not isinstance(out.alpha, (int, float)) or out.alpha != out.alpha:
                raise ValueError(f"alpha must be a number, got {s.alpha!r}")
            if rng is not None and not rng[0] <= out.alpha <= rng[1]:
                raise ValueError(f"alpha must lie in [{rng[0]}, {rng[1]}] for this LFR, got {out.alpha}")
            if rng is None and s.alpha is not None and abs(s.alpha - trained) > 1e-9:
                raise ValueError(f"this LFR was trained at a fixed alpha={trained}; it cannot use {s.alpha}")
        return out

    def labels_for(self, n: int, label: int | None) -> torch.Tensor | None:
        """Balanced labels 0, 1, …, K−1, 0, … (or all ``label``) for a conditional base."""
        k = self.bundle.num_classes
        if k == 0:
            return None
        if label is None:
            return torch.arange(n) % k
        if not 0 <= int(label) < k:
            raise ValueError(f"class must be in 0..{k - 1}, got {label}")
        return torch.full((n,), int(label), dtype=torch.long)

    def prior(self, n: int, seed: int) -> torch.Tensor:
        return torch.randn((n, *self.bundle.shape), generator=torch.Generator().manual_seed(seed))

    def refine(self, space: str, x, labels, s: Settings, generator: torch.Generator, **ode) -> ODEResult:
        """F(x) by the refiner ``s`` names for ``space``, at that stage's solver and NFE.

        Args:
            space: "latent" (x is z; the LFR family) or "data" (x is G(z); DFR, the noise refiner).
            x, labels: the batch and its classes (None for an unconditional base).
            s: resolved settings (``Pipeline.resolve``).
            generator: feeds any noise the refiner draws (the noise-injection one), so a result never
                depends on process-wide random state.
            ode: ``return_trajectory`` (every solver step's state too), ``t1`` (integrate to this time;
                past 1 the field is extrapolated: the overshoot view) and ``share`` (x is some rows of a
                larger batch), as :meth:`Refiner.apply` takes them.

        Returns:
            ODEResult: the refined batch, the NFE used, the solver and the trajectory when asked.
        """
        r = refiner_for(space, s.variant(space))
        solver, nfe = s.solver(r.stage)
        return r.apply(self.bundle, x, labels, s.alpha, solver, nfe, generator, **ode)

    def generate(self, z, labels, s: Settings) -> ODEResult:
        """G(z) at the settings' base solver and NFE."""
        return flow_map(self.bundle.models["base"], z, labels, None, 0.0, 1.0, s.base_solver, s.base_nfe)

    @torch.no_grad()
    def run(
        self,
        n: int,
        seed: int,
        settings: Settings | None = None,
        label: int | None = None,
        z: torch.Tensor | None = None,
        base: torch.Tensor | None = None,
        rows: slice | None = None,
    ) -> Stages:
        """Run base + refiners for ``n`` samples of prior seed ``seed`` (or the given ``z``).

        Args:
            n: samples, 1..MAX_SAMPLES (a ValueError names the range otherwise).
            seed: seeds the prior draw z ~ N(0, I) (and, with seed + 1, any refiner's noise).
            settings: mode, per-stage solver and NFE, α; unset fields come from the bundle.
            label: the class to draw for a conditional base (None: balanced classes).
            z: prior latents to use instead of drawing them.
            base: G(z) already computed for this ``z`` at the same base settings, so that comparing
                several refiner settings on one batch does not regenerate it.
            rows: run only these rows of the ``n`` (a torchrun rank's share): the prior, the labels and
                any refiner noise are drawn for all ``n`` and sliced, so the rows equal those of one run.

        Returns:
            Stages: z, labels, the base samples G(z), the refined latents and G(z_refined) when an LFR
            ran, the final images, the NFE of each stage and the resolved settings.
        """
        if isinstance(n, bool) or not isinstance(n, int) or not 1 <= n <= MAX_SAMPLES:
            raise ValueError(f"number of samples must be an integer in 1..{MAX_SAMPLES}, got {n!r}")
        s = self.resolve(settings or Settings())
        labels = self.labels_for(n, label)
        z = self.prior(n, seed) if z is None else z
        share = None
        if rows is not None:
            share = (n, rows)
            z, labels = z[rows], None if labels is None else labels[rows]
            base = None if base is None else base[rows]
        if base is None:
            made = self.generate(z, labels, s)
            base, nfe_base = made.x, made.nfe
        else:
            nfe_base = s.base_nfe
        st = Stages(z=z, labels=labels, base=base, nfe={"base": nfe_base}, settings=s)
        generator = torch.Generator().manual_seed(seed + 1)  # for refiners that draw noise
        x = base
        for r in s.refiners():
            if r.space == "latent":
                res = self.refine("latent", z, labels, s, generator, share=share)
                st.z_refined, st.nfe[r.stage] = res.x, res.nfe
                st.x_from_refined = x = self.generate(st.z_refined, labels, s).x
            else:
                res = self.refine("data", x, labels, s, generator, share=share)
                x, st.nfe[r.stage] = res.x, res.nfe
        st.final = x
        return st
