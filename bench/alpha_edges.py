"""Where the stored α × NFE maps put their best α: inside the trained range, or at its edge.

    python -m bench.alpha_edges [--bundles digits mnist-alpha moons]

Reads each bundle's stored map (``bfr sweep --alphas``; nothing is computed) and reports, per NFE, the best α
and whether quality still improves at the grid's largest α — in which case the best α lies beyond the range
the LFR was trained on, and an α estimator cannot be validated on this map. Writes
bench/results/alpha_edges.json and .md.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from bfr_core.bundle import Bundle
from bfr_core.views.sweep import load_alpha_map

ROOT = Path(__file__).resolve().parent.parent


def edges(stored: dict) -> dict:
    """Per NFE: the best α of the map's column and its quality, and whether that α is the grid's largest."""
    m = stored["map"]
    out = {}
    for j, nfe in enumerate(m["nfes"]):
        column = [row[j] for row in m["quality"]]
        best = min(range(len(column)), key=column.__getitem__)
        out[nfe] = {
            "best_alpha": m["alphas"][best],
            "quality": column[best],
            "at_edge": best == len(column) - 1,
        }
    return out


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--bundles", nargs="+", default=["digits", "mnist-alpha", "moons"])
    args = ap.parse_args(argv)
    results, lines = (
        {},
        [
            "| bundle | metric | α grid | NFE with the best α at the grid's edge | overall best |",
            "|---|---|---|---|---|",
        ],
    )
    for name in args.bundles:
        stored = load_alpha_map(Bundle(ROOT / "checkpoints" / name))
        if stored is None:
            continue
        per_nfe, m = edges(stored), stored["map"]
        results[name] = {"metric": m["metric"], "alphas": m["alphas"], "per_nfe": per_nfe, "best": m["best"]}
        at_edge = [str(k) for k, v in per_nfe.items() if v["at_edge"]]
        grid, best = f"{m['alphas'][0]:g}…{m['alphas'][-1]:g}", m["best"]
        overall = f"α = {best['alpha']:g}, {best['nfe']} NFE: {best['quality']:.4g}"
        edge = f"{', '.join(at_edge) or 'none'} of {len(per_nfe)}"
        lines.append(f"| {name} | {m['metric']} | {grid} | {edge} | {overall} |")
    out = ROOT / "bench" / "results"
    (out / "alpha_edges.json").write_text(json.dumps(results, indent=1) + "\n")
    text = "\n".join(["Command: `python -m bench.alpha_edges`", "", *lines]) + "\n"
    (out / "alpha_edges.md").write_text(text)
    print(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
