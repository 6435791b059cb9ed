"""BFR vs noise injection at matched extra NFE, over seeds, under every metric the bundle has.

    python -m bench.baselines --bundle checkpoints/digits --n 2000 --seeds 0 1 2

Rows: each registered refiner the bundle holds (LFR, DFR, the trained noise-injection refiner) at
one RK4 step and at 10 Euler steps (run by ``bfr_core.eval.runner.run_rows``), and training-free SDEdit at
t* = 0.25 and 0.5. Every row refines the same base samples (the bundle's default base solver and
NFE) and is scored against the held-out test split with ``evaluate.scorer_for`` (FID, and FID2
under the independent extractor when the bundle has one). Writes bench/results/<bundle>_baselines.{json,md}.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
from pathlib import Path


from bfr_core.eval.baselines import SDEdit
from bfr_core.eval.evaluate import scorer_for
from bfr_core.pipeline import Pipeline, Settings, refiner_settings
from bfr_core.refiners import REFINERS
from bfr_core.eval.runner import run_rows

ROOT = Path(__file__).resolve().parent.parent
REFINER_ROWS = ("lfr", "dfr", "noise_refiner")  # at (rk4, 4) and (euler, 10)
SDEDIT_ROWS = tuple(
    SDEdit(*s) for s in ((0.25, "euler", 4), (0.5, "rk4", 4), (0.5, "euler", 10), (0.25, "euler", 10))
)
METRICS = ("fid", "fid2")


def rows_for(bundle) -> list[tuple[str, int, tuple]]:
    """(row name, extra NFE, how) for what this bundle can run."""
    rows = []
    for nfe, solver in ((4, "rk4"), (10, "euler")):
        rows += [
            (
                f"{REFINERS[n].label} {solver}x{nfe // 4 if solver == 'rk4' else nfe}",
                nfe,
                ("refiner", n, solver, nfe),
            )
            for n in REFINER_ROWS
            if bundle.has(n)
        ]
        rows += [(sd.label, sd.nfe, sd) for sd in SDEDIT_ROWS if sd.nfe == nfe]
    return rows


def settings_of(how) -> Settings:
    """A trained refiner's row as pipeline settings."""
    _, name, solver, nfe = how
    return refiner_settings(REFINERS[name], solver, nfe)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--bundle", type=Path, required=True)
    ap.add_argument("--n", type=int, default=2000)
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    args = ap.parse_args()
    pipe = Pipeline(args.bundle)
    score = scorer_for(pipe.bundle)
    rows = rows_for(pipe.bundle)
    names = ["base"] + [r[0] for r in rows]
    if len(set(names)) != len(names):
        raise SystemExit("row names must be unique")
    scores = {name: [] for name in names}
    trained = {name: settings_of(how) for name, _, how in rows if not isinstance(how, SDEdit)}
    for seed in args.seeds:  # the trained refiners through the one evaluation path, on the shared base
        runs = dict(run_rows(pipe, {"base": Settings(mode="none"), **trained}, args.n, seed))
        base, base_net = runs["base"], pipe.bundle.models["base"]
        for name, _, how in [("base", 0, None), *rows]:
            x = runs[name].x if name in runs else how.apply(base_net, base.x, base.labels, seed)[0]
            scores[name].append(score(x, base.labels))
    metrics = [m for m in METRICS if m in scores["base"][0]]
    by_metric = {m: {name: [s[m] for s in v] for name, v in scores.items()} for m in metrics}
    extra = {"base": 0, **{r[0]: r[1] for r in rows}}
    command = "python -m bench.baselines " + " ".join(sys.argv[1:])
    lines = [
        f"Command: `{command}` (against the held-out test split; mean ± std over seeds {args.seeds}, "
        f"n = {args.n}; change vs base in brackets)",
        "",
        "| method | extra NFE | " + " | ".join(m.upper() for m in metrics) + " |",
        "|---|---|" + "---|" * len(metrics),
    ]
    for name in names:
        cells = []
        for m in metrics:
            v, b = by_metric[m][name], statistics.mean(by_metric[m]["base"])
            sd = statistics.stdev(v) if len(v) > 1 else 0.0
            change = "" if name == "base" else f" ({statistics.mean(v) / b - 1:+.0%})"
            cells.append(f"{statistics.mean(v):.3f} ± {sd:.3f}{change}")
        lines.append(f"| {name} | {extra[name]} | " + " | ".join(cells) + " |")
    out = ROOT / "bench" / "results" / f"{args.bundle.name}_baselines"
    out.with_suffix(".json").write_text(
        json.dumps(
            {"command": command, "n": args.n, "seeds": args.seeds, "scores": by_metric, "extra_nfe": extra},
            indent=1,
        )
        + "\n"
    )
    out.with_suffix(".md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
