"""Is refinement worth its NFE? At equal *total* network evaluations, spend the extra ones on more base
solver steps, or on a refiner after the base — every row on the same prior draws, scored alike.

Rows: the base at its default setting (NFE b), the base with ``EXTRA_BASE_NFE`` more evaluations of the
same solver (b + e), and every refiner the bundle holds at its default setting (b + its own NFE). A
refiner is worth its NFE when it beats the base given the same or more extra evaluations.
"""

from __future__ import annotations

import torch

from bfr_core.infra.checkpoint import load_stored_measurement
from bfr_core.eval.evaluate import Scorer, describe
from bfr_core.generative.ode import grid_steps
from bfr_core.pipeline import Pipeline, Settings, refiner_settings
from bfr_core.refiners import REFINERS
from bfr_core.eval.runner import run_rows

EXTRA_BASE_NFE = (4, 8, 16)
BUDGET_FILE = "worth_nfe.json"  # stored when the bundle is built (``bfr worth-nfe``)


def budget_rows(pipe: Pipeline) -> dict[str, Settings]:
    """Row name → settings: "base", "base +e" for each extra e the base solver's grid allows, and each
    refiner the bundle holds (its registry name) at its recorded default solver and NFE."""
    default = pipe.resolve(Settings(mode="none"))
    rows = {"base": Settings(mode="none")}
    for extra in EXTRA_BASE_NFE:
        try:
            grid_steps(default.base_solver, default.base_nfe + extra)
        except ValueError:  # e.g. midpoint needs an even NFE
            continue
        rows[f"base +{extra}"] = Settings(
            mode="none", base_solver=default.base_solver, base_nfe=default.base_nfe + extra
        )
    for r in REFINERS.values():
        if pipe.bundle.has(r.name):
            rows[r.name] = refiner_settings(r)
    return rows


@torch.no_grad()
def worth_its_nfe(pipe: Pipeline, score: Scorer, n: int = 1000, seed: int = 0, progress=None) -> list[dict]:
    """Score every :func:`budget_rows` row on the prior draws of ``seed``.

    Returns:
        One dict per row, in order: "row", "what" (e.g. ``base rk4x20 + lfr rk4x4``), "total_nfe",
        "extra_nfe" (beyond the default base) and every metric ``score`` gives.
    """
    rows = budget_rows(pipe)
    base_nfe = pipe.resolve(Settings(mode="none")).base_nfe
    out = []
    for done, (name, run) in enumerate(run_rows(pipe, rows, n, seed), 1):
        total = sum(run.nfe.values())
        out.append(
            {
                "row": name,
                "what": describe(run.settings, run.nfe),
                "total_nfe": total,
                "extra_nfe": total - base_nfe,
                **score(run.x, run.labels),
            }
        )
        if progress:
            progress(done / len(rows), name)
    return out


def load_budget(bundle) -> dict | None:
    """The bundle's stored equal-NFE comparison, validated, or None when it has none."""

    def valid(stored):
        return isinstance(stored["rows"], list) and all(
            isinstance(r["row"], str)
            and isinstance(r["total_nfe"], int)
            and isinstance(r[stored["metric"]], float)
            for r in stored["rows"]
        )

    return load_stored_measurement(bundle.path / BUDGET_FILE, valid, "equal-NFE comparison")
