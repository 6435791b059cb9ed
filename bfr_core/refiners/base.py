"""The shape every refiner has.

A refiner is a flow F trained after the base generator G and applied with a fixed-step solver:
a *latent* refiner maps the prior draw z ↦ F(z) before the base runs (x = G(F(z))), a *data*
refiner maps the base's sample x ↦ F(x). Each one lives in its own file under ``refiners/``,
which says how its training pairs are built and defines its training command; ``refiners/__init__.py``
registers it. The pipeline, the CLI, ``evaluate`` and the app are derived from that registry.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from bfr_core.generative.ode import ODEResult, flow_map

SPACES = ("latent", "data")
STAGE_OF_SPACE = {"latent": "lfr", "data": "dfr"}  # the Settings fields <stage>_solver, <stage>_nfe it uses


def solver_rows(row: str) -> tuple:
    """The rows ``evaluate`` reports for a refiner: its recorded default, one and ten Euler steps."""
    return ((row, None, None), (f"{row}-euler1", "euler", 1), (f"{row}-euler10", "euler", 10))


@dataclass(frozen=True)
class Refiner:
    """One refiner.

    Attributes:
        name: its registry key and model file, ``BUNDLE/<name>.safetensors``.
        space: "latent" (acts on z before the base) or "data" (acts on the base's samples).
        variant: how settings choose it within its space (``Settings.lfr_variant`` for latent
            refiners, ``Settings.dfr_variant`` for data refiners).
        label: its name for people (app, benchmark tables).
        command: the CLI command that trains it.
        rows: the rows ``evaluate`` reports for it: (row name, solver, NFE), with None for the
            model's recorded default.
    """

    name: str
    space: str
    variant: str
    label: str
    command: str
    rows: tuple = ()

    @property
    def stage(self) -> str:
        return STAGE_OF_SPACE[self.space]

    def apply(
        self,
        bundle,
        x: torch.Tensor,
        labels,
        alpha: float | None,
        solver: str,
        nfe: int,
        generator: torch.Generator,
        return_trajectory: bool = False,
        t1: float = 1.0,
        share: tuple[int, slice] | None = None,
    ) -> ODEResult:
        """F(x): the refiner's flow integrated from t = 0 to ``t1`` (1: as trained) with ``nfe`` evaluations.

        Args:
            bundle: the Bundle holding this refiner's model.
            labels: class labels, used when the model is class-conditional.
            alpha: the mixing coefficient, passed as an input to an α-conditioned model.
            generator: the source of any randomness the refiner draws (none for LFR and DFR).
            t1: where the integration stops; past 1 it extrapolates the field beyond its training
                range (the Over-refinement view's overshoot).
            share: ``(total, rows)`` when ``x`` is only rows ``rows`` of a batch of ``total`` (a torchrun
                rank's part of ``bfr sample``): noise is drawn for the whole batch and sliced, so the rows
                equal one process's run of the whole batch.
        Returns:
            ODEResult with the refined rows, the NFE spent and optionally the trajectory.
        """
        net, spec = bundle.models[self.name], bundle.meta[self.name]["net"]
        y = labels if spec.get("num_classes") else None
        cond = torch.full((len(x), 1), float(alpha)) if spec.get("cond_dim") else None
        return flow_map(net, x, y, cond, 0.0, t1, solver, nfe, return_trajectory=return_trajectory)

    def add_command(self, sub, parents: list) -> None:
        """Add this refiner's training command to the CLI's subparsers."""
        raise NotImplementedError
