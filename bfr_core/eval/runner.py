"""The one way settings are compared: every row on the same prior draws and the same base samples.

``evaluate``, the NFE sweep and refiner selection all ask the same question — "run these settings
on one z and one base, then score each" — and all go through :func:`run_rows`. A row whose base
settings are the bundle's default reuses the base samples G(z) computed once; a row may name its
own pipeline (a candidate refiner file on the same base) through ``pipes``.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass

import torch

from bfr_core.pipeline import Pipeline, Settings


@dataclass
class RowRun:
    """One row's samples and what producing them cost.

    Attributes:
        x: the final samples (after every refiner the settings run), on the CPU.
        labels: their class labels, or None for an unconditional base.
        nfe: network evaluations per sample, base included; ``extra_nfe`` the refiners' share.
        settings: the resolved settings that ran.
        wall_s: seconds to produce the samples, the shared base's time included.
    """

    x: torch.Tensor
    labels: torch.Tensor | None
    nfe: dict
    settings: Settings
    wall_s: float

    @property
    def extra_nfe(self) -> int:
        return sum(v for k, v in self.nfe.items() if k != "base")


@torch.no_grad()
def run_rows(
    pipe: Pipeline,
    rows: dict[str, Settings],
    n: int,
    seed: int,
    chunk: int | None = None,
    pipes: dict[str, Pipeline] | None = None,
    z: torch.Tensor | None = None,
    base: torch.Tensor | None = None,
) -> Iterator[tuple[str, RowRun]]:
    """Yield (name, RowRun) for each row, in order, all on the prior draws z of ``seed``.

    Args:
        pipe: the pipeline whose base makes the shared samples G(z).
        rows: row name → settings; base settings left None share G(z), computed once when a row needs it.
        n, seed: how many prior draws, and their seed (``Pipeline.prior``).
        chunk: run in chunks of this many draws (bounded memory); None: one batch. A multiple of
            the class count keeps the labels balanced as in one batch.
        pipes: row name → another pipeline on the same base (e.g. ``bundle.with_model``).
        z: the prior draws to use instead of ``pipe.prior(n, seed)`` (e.g. a rescaled prior), n of them.
        base: G(z) already computed for these z by ``pipe``'s base; a row's wall time then leaves it out.
    """
    z = pipe.prior(n, seed) if z is None else z
    if len(z) != n or (base is not None and len(base) != n):
        given = "no" if base is None else len(base)
        raise ValueError(f"run_rows: n = {n}, but {len(z)} prior draws and {given} base samples")
    parts = z.split(chunk or n)
    shared_base = {"parts": None if base is None else base.split(chunk or n), "wall": 0.0}

    def base_parts() -> list[torch.Tensor]:
        if shared_base["parts"] is None:
            t0 = time.perf_counter()
            runs = [pipe.run(len(zc), seed, Settings(mode="none"), z=zc) for zc in parts]
            shared_base["parts"], shared_base["wall"] = [r.base for r in runs], time.perf_counter() - t0
        return shared_base["parts"]

    for name, settings in rows.items():
        runner = (pipes or {}).get(name, pipe)
        shared = settings.base_solver is None and settings.base_nfe is None
        given = base_parts() if shared else [None] * len(parts)
        t0 = time.perf_counter()
        runs = [runner.run(len(zc), seed, settings, z=zc, base=b) for zc, b in zip(parts, given)]
        wall = time.perf_counter() - t0 + (shared_base["wall"] if shared else 0.0)
        labels = None if runs[0].labels is None else torch.cat([r.labels for r in runs])
        x = torch.cat([r.final for r in runs])
        yield name, RowRun(x, labels, runs[0].nfe, runs[0].settings, round(wall, 3))
