"""The scores a bundle stores for its sampling settings, looked up by what ran.

``bfr evaluate`` stores rows (``evaluate_seed0.json``: base, LFR, its reflow, DFR, LFR → DFR, their one- and
ten-step variants) and ``bfr sweep`` the refiners' Euler steps 1…10 (``overrefine.json``); each scored setting
is keyed here by ``evaluate.describe`` of its resolved settings (e.g. ``base rk4x20 + lfr eulerx1``), so a
request finds its own stored score, if any, by describing itself the same way.
"""

from __future__ import annotations

import json

from bfr_core.eval.evaluate import describe
from bfr_core.infra.checkpoint import CheckpointError
from bfr_core.pipeline import Settings
from bfr_core.views.sweep import load_sweep

EVALUATE_FILE = "evaluate_seed0.json"  # `bfr evaluate --out BUNDLE/evaluate_seed0.json`
QUALITY = ("fid", "fid2")  # lower is better; both must agree for a setting to count as better
DIVERSITY = "recall"  # the share of real data the samples cover (Kynkäänniemi et al. 2019)
KNOWN_BAD_RECALL = 0.5  # a setting whose stored recall is under half the base's has collapsed


def stage_nfe(s: Settings) -> dict:
    """The NFE of each stage of resolved settings ``s``, as ``Stages.nfe`` reports them."""
    nfe = {"base": s.base_nfe}
    for r in s.refiners():
        nfe[r.stage] = s.solver(r.stage)[1]
    return nfe


def stored_scores(pipe) -> dict[str, dict]:
    """{describe(setting): metrics + {"n", "source"}} for every setting the bundle stores a score of."""
    out = {}
    f = pipe.bundle.path / EVALUATE_FILE
    if f.is_file():
        try:
            rows = json.loads(f.read_text(encoding="utf-8"))
        except ValueError:
            raise CheckpointError(f"{f}: not valid JSON") from None
        n = rows.get("n") if isinstance(rows.get("n"), int) else None
        for name, row in rows.items():
            if isinstance(row, dict) and isinstance(row.get("solver"), str) and "fid" in row:
                out[row["solver"]] = row | {"n": n, "source": f"`bfr evaluate` row {name!r}"}
    stored = load_sweep(pipe.bundle)
    default_alpha = pipe.resolve(Settings(mode="none")).alpha
    if stored is not None and stored["alpha"] in (None, default_alpha):
        for key, metrics in stored["sweep"].get("metrics", {}).items():
            stage, _, k = key.partition(" ")
            if key == "base":
                s = pipe.resolve(Settings(mode="none"))
            elif stage in ("lfr", "dfr") and k.isdigit():
                s = pipe.resolve(Settings(mode=stage).with_stage(stage, "euler", int(k)))
            else:
                continue
            out.setdefault(describe(s, stage_nfe(s)), metrics | {"n": stored["n"], "source": "`bfr sweep`"})
    return out


def base_scores(pipe, scores: dict | None = None) -> dict | None:
    """The stored score of the base alone at its default setting, or None (``scores``: ``stored_scores(pipe)``
    when the caller has read it already)."""
    s = pipe.resolve(Settings(mode="none"))
    return (stored_scores(pipe) if scores is None else scores).get(describe(s, stage_nfe(s)))


def verdict(scores: dict, base: dict) -> list[str]:
    """Warnings a stored score earns against the base's: a collapse of diversity, or worse on both metrics."""
    warnings = []
    if DIVERSITY in scores and DIVERSITY in base and scores[DIVERSITY] < KNOWN_BAD_RECALL * base[DIVERSITY]:
        warnings.append(
            f"a known bad setting: its stored recall is {scores[DIVERSITY]:.2f} against the base's "
            f"{base[DIVERSITY]:.2f} — the samples cover a small part of the data (a collapse), however clean"
        )
    if all(m in scores and m in base and scores[m] > base[m] for m in QUALITY):
        warnings.append("worse than the base under both stored metrics")
    return warnings
