"""The pipeline that composes a bundle's models (``bundle.py``).

The pipeline draws z ~ N(0, I) for a seed and returns every stage: prior latent z, LFR latent
z' = F_LFR(z), base image G(z), LFR image G(z'), and the final image after the optional DFR step
x ↦ F_DFR(x).
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from pathlib import Path

import torch

from bfr_core.bundle import Bundle
from bfr_core.generative.ode import FIXED_SOLVERS, ODEResult, flow_map, grid_steps
from bfr_core.refiners import Refiner, refiner_for

MODE_SPACES = {"none": (), "lfr": ("latent",), "dfr": ("data",), "lfr+dfr": ("latent", "data")}
MODES = tuple(MODE_SPACES)  # "lfr" refines the latent, "dfr" the data, with the variants the settings name
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
        return {
            "base": (self.base_solver, self.base_nfe),
            "lfr": (self.lfr_solver, self.lfr_nfe),
            "dfr": (self.dfr_solver, self.dfr_nfe),
        }[stage]

    def with_stage(
        self, stage: str, solver: str | None, nfe: int | None, variant: str | None = None
    ) -> "Settings":
        """A copy with one stage's solver and NFE (and, for "lfr"/"dfr", its variant) set."""
        fields = {
            "base": {"base_solver": solver, "base_nfe": nfe},
            "lfr": {"lfr_solver": solver, "lfr_nfe": nfe} | ({"lfr_variant": variant} if variant else {}),
            "dfr": {"dfr_solver": solver, "dfr_nfe": nfe} | ({"dfr_variant": variant} if variant else {}),
        }
        if stage not in fields or (variant and stage == "base"):
            raise ValueError(
                f"stage must be one of base, lfr, dfr (a variant only for lfr/dfr), got {stage!r}"
            )
        return replace(self, **fields[stage])


def refiner_settings(r: Refiner, solver: str | None = None, nfe: int | None = None, **more) -> Settings:
    """Settings that run refiner ``r`` alone at ``solver`` and ``nfe`` (None: its recorded default)."""
    return Settings(mode=r.stage, **more).with_stage(r.stage, solver, nfe, r.variant)


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
        out = s
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
            out = out.with_stage(stage, solver, nfe)
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

    def base_pool(self, n: int, seed: int) -> tuple[torch.Tensor, torch.Tensor | None]:
        """``n`` base samples and their labels, drawn in runs of at most MAX_SAMPLES: run k takes prior
        seed ``seed + k``, so a pool of up to MAX_SAMPLES is exactly ``run(n, seed)``'s base."""
        runs = [
            self.run(min(MAX_SAMPLES, n - start), seed=seed + k, settings=Settings(mode="none"))
            for k, start in enumerate(range(0, n, MAX_SAMPLES))
        ]
        labels = None if runs[0].labels is None else torch.cat([r.labels for r in runs])
        return torch.cat([r.base for r in runs]), labels

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
