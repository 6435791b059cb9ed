"""The rows of bench/report.py and the targets read from them: what is measured, by name.

A row is (group, name, spec); a spec is Settings fields for Pipeline.run plus the optional keys that
``rows()`` documents. Row names are the keys the targets and the README read: a target that names a row
``rows()`` does not define raises UndefinedRow, never a silent None.
"""

from __future__ import annotations

from bfr_core.refiners import refiner_for

ALPHAS = (0.0, 0.05, 0.1, 0.2, 0.3, 0.5)
ABLATION = {
    "none": "ablation/dfr_none",
    "noise 30%, std 0.01": "ablation/dfr_noise",
    "blur 30%, σ 0.01–0.02 px (paper)": "ablation/dfr_blur-paper",
    "blur 30%, σ 0.5–1 px (stronger)": "ablation/dfr_blur-strong",
}
PAPER_RECIPE_DFR = (
    "ablation/dfr_paper-recipe"  # OT within the 128-pair batch and the paper's blur, same steps as dfr
)
WIDE_OT_LFR = "ablation/lfr_ot1024"  # OT over 1,024 pairs per step (as the shipped DFR), else as lfr
SCRATCH_REFLOW = (
    "ablation/lfr_reflow_scratch"  # reflow-lfr --init scratch, same pairs and steps as lfr_reflow
)
RESCALED = "prior rescaled to the latents' RMS (training-free)"


def lfr(solver, nfe, alpha=None, variant="ode"):
    return {"mode": "lfr", "lfr_solver": solver, "lfr_nfe": nfe, "alpha": alpha, "lfr_variant": variant}


def dfr(solver, nfe):
    return {"mode": "dfr", "dfr_solver": solver, "dfr_nfe": nfe}


FIRST = (
    "base",
    "LFR rk4 x1 (paper)",
    "DFR rk4 x1 (paper)",
    "LFR reflow euler x1 (ours)",
    "LFR euler x1",
    "LFR euler x10",
    "LFR rk4 x1 -> DFR rk4 x1",
)  # computed first; then the table order, α sweep and LFR euler x2/x5 last
LAST = ("alpha", "LFR euler x2", "LFR euler x5")


def compute_order(row: tuple[str, str, dict]) -> int:
    group, name, _ = row
    if name in FIRST:
        return 0
    return 2 if group in LAST or name in LAST else 1


def rows() -> list[tuple[str, str, dict]]:
    """(group, row name, spec). A spec is Settings fields for Pipeline.run, plus optional keys:
    ``base`` ("early" = the base snapshot), ``lfr_file`` / ``dfr_file`` (a refiner variant),
    ``sdedit`` (t*), ``prior_scale``
    ("latents": draw G(s·z), s the RMS of the cached inverted latents),
    ``then_dfr`` (apply the default DFR to another row's samples)."""
    out = [("methods", "base", {"mode": "none"})]
    out += [("methods", f"LFR euler x{k}", lfr("euler", k)) for k in (1, 2, 5, 10)]
    out += [
        ("methods", "LFR rk4 x1 (paper)", lfr("rk4", 4)),
        ("methods", "LFR rk4 x1, OT over 1,024 pairs", {**lfr("rk4", 4), "lfr_file": WIDE_OT_LFR}),
        ("methods", "LFR reflow euler x1 (ours)", lfr("euler", 1, variant="reflow")),
        (
            "methods",
            "LFR reflow euler x1, fresh init",
            {**lfr("euler", 1, variant="reflow"), "lfr_file": SCRATCH_REFLOW},
        ),
        ("methods", RESCALED, {"mode": "none", "prior_scale": "latents"}),
    ]
    out += [("methods", f"DFR euler x{k}", dfr("euler", k)) for k in (1, 2, 5, 10)]
    out += [
        ("methods", "DFR rk4 x1 (paper)", dfr("rk4", 4)),
        ("methods", "DFR rk4 x1, paper's training recipe", {**dfr("rk4", 4), "dfr_file": PAPER_RECIPE_DFR}),
        ("methods", "LFR rk4 x1 -> DFR rk4 x1", {"then_dfr": "LFR rk4 x1 (paper)"}),
        ("methods", "rescaled prior -> DFR rk4 x1", {"then_dfr": RESCALED}),
    ]
    out += [
        ("methods", f"SDEdit t*={t} {s} x{k}", {"sdedit": t, "solver": s, "nfe": k})
        for t, s, k in (
            (0.1, "euler", 1),
            (0.25, "euler", 4),
            (0.5, "rk4", 4),
            (0.25, "euler", 10),
            (0.5, "euler", 10),
        )
    ]
    out += [("alpha", f"LFR rk4 x1, alpha={a}", lfr("rk4", 4, alpha=a)) for a in ALPHAS]
    out += [
        ("ablation", f"DFR rk4 x1, aug: {k}", {**dfr("rk4", 4), "dfr_file": v}) for k, v in ABLATION.items()
    ]
    early = {"base": "early"}
    out += [
        ("transfer", "early base", {"mode": "none", **early}),
        ("transfer", "early base + LFR rk4 x1", {**lfr("rk4", 4), **early}),
        ("transfer", "early base + DFR rk4 x1", {**dfr("rk4", 4), **early}),
        ("transfer", "early base + LFR -> DFR", {"then_dfr": "early base + LFR rk4 x1", **early}),
    ]
    return out


def refiner_files(spec: dict) -> dict[str, str]:
    """The refiner models a row runs, each mapped to the file stem it loads: the bundle's own
    (``lfr``, ``lfr_reflow``, ``dfr``) or the variant named by ``lfr_file`` / ``dfr_file``."""
    out = {}
    if spec.get("mode") == "lfr":
        model = refiner_for("latent", spec.get("lfr_variant", "ode")).name
        out[model] = spec.get("lfr_file", model)
    if spec.get("mode") == "dfr":
        out["dfr"] = spec.get("dfr_file", "dfr")
    return out


class UndefinedRow(Exception):
    """A target reads a row name that ``rows()`` does not define (a typo or a renamed row)."""


class RowValues(dict):
    """Values by row name: a defined row not computed raises KeyError, an undefined one UndefinedRow."""

    def __missing__(self, name):
        if name not in {row_name for _, row_name, _ in rows()}:
            raise UndefinedRow(f"a target reads the row {name!r}, which rows() does not define")
        raise KeyError(name)


def targets(r: dict) -> dict:
    """The issue's targets from the rows; None where a defined row was not computed in this run (a
    --report-only run); UndefinedRow where a target names a row that does not exist."""
    fid = RowValues({name: row["fid"] for name, row in r.items()})
    lfr4, dfr4 = "LFR rk4 x1 (paper)", "DFR rk4 x1 (paper)"

    def best_sdedit(k):
        return min(v for name, v in fid.items() if name.startswith("SDEdit") and r[name]["extra_nfe"] == k)

    formulas = {
        "lfr_rk4x1_fid_cut": lambda: 1 - fid[lfr4] / fid["base"],
        "dfr_rk4x1_fid_cut": lambda: 1 - fid[dfr4] / fid["base"],
        "reflow_share_of_4nfe_gain": lambda: (
            (fid["base"] - fid["LFR reflow euler x1 (ours)"]) / (fid["base"] - fid[lfr4])
        ),
        "lfr_euler10_vs_euler1": lambda: fid["LFR euler x10"] - fid["LFR euler x1"],
        "lfr_euler10_vs_rk4x1": lambda: fid["LFR euler x10"] - fid[lfr4],
        "best_sdedit_fid_at_extra_nfe": lambda: {k: best_sdedit(k) for k in (1, 4, 10)},
        "bfr_fid_at_extra_nfe": lambda: {
            1: fid["LFR reflow euler x1 (ours)"],
            4: min(fid[lfr4], fid[dfr4]),
            10: min(fid["LFR euler x10"], fid["DFR euler x10"]),
        },
        "rescaled_prior_fid_cut": lambda: 1 - fid[RESCALED] / fid["base"],
        "transfer_lfr_cut": lambda: 1 - fid["early base + LFR rk4 x1"] / fid["early base"],
        "transfer_dfr_cut": lambda: 1 - fid["early base + DFR rk4 x1"] / fid["early base"],
    }
    out = {"lfr_target": 0.5, "dfr_target": 0.3, "reflow_target": 0.8}
    for key, formula in formulas.items():
        try:
            out[key] = formula()
        except KeyError:  # a row this target needs was not computed in this run
            out[key] = None
        except ValueError:  # no SDEdit row at that extra NFE in this run (min of nothing)
            out[key] = None
    return out
