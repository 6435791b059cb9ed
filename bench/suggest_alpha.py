"""Validate the α estimates from the latents against an α-conditioned LFR's measured curve.

    python -m bench.suggest_alpha --bundle BUNDLE [--alphas 0.05 0.1 0.2 0.3 0.5 0.7 1.0] [--n 1000]
        [--seeds 0 1 2] [--name NAME]

BUNDLE needs an LFR trained over an α range (``train-lfr --alpha-max``) that holds the grid. Each estimate of
``bfr_core/views/alpha_suggestion.py`` (from the inverted latents only) is rounded to 0.01 and measured
beside the grid: the LFR at the paper's end (one RK4 step to t = 1) for each α, FID and FID2 against the last
10,000 *training* images, on the same prior draws per seed. Reported per estimate and metric: the loss
against the grid's best α, (score(α̂) − best) / best; the target is ≤ 5% on both metrics. Writes
bench/results/suggest_alpha_NAME.json, .md and .png.
"""

from __future__ import annotations

import argparse
import json
import shlex
import sys
import time
from pathlib import Path

from bfr_core.eval.validation import validation_scorer
from bfr_core.pipeline import Pipeline
from bfr_core.views.alpha_suggestion import (
    ESTIMATORS,
    SUGGESTION_FILE,
    alpha_curve,
    estimate_loss,
    seed_mean,
    suggest_alpha,
)
from bfr_core.views.stop_rule import mean_sd

ROOT = Path(__file__).resolve().parent.parent
TARGET = 0.05  # the largest loss against the grid's best α that counts as a good estimate


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--bundle", type=Path, required=True)
    ap.add_argument("--alphas", type=float, nargs="+", default=[0.05, 0.1, 0.2, 0.3, 0.5, 0.7, 1.0])
    ap.add_argument("--n", type=int, default=1000)
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    ap.add_argument("--name", help="results name (default: the bundle folder's name)")
    ap.add_argument(
        "--store",
        type=Path,
        help="also write the check into this bundle's alpha_suggestion.json (`bfr suggest-alpha` of the "
        "same latents), where the app shows it",
    )
    args = ap.parse_args()
    pipe = Pipeline(args.bundle)
    suggestion = suggest_alpha(pipe.bundle.latents["z"])
    lo, hi = pipe.bundle.alpha_range() or (0.0, 0.0)
    estimates = {k: min(hi, max(lo, round(v, 2))) for k, v in suggestion["estimates"].items()}
    alphas = sorted(set(args.alphas) | set(estimates.values()))
    score = validation_scorer(pipe.bundle)
    t0 = time.perf_counter()
    curve = alpha_curve(pipe, score, alphas, args.n, args.seeds)
    metrics = score.metrics
    out = {
        "command": shlex.join(["python", "-m", "bench.suggest_alpha", *sys.argv[1:]]),
        "bundle": args.name or args.bundle.name,
        "lfr": pipe.bundle.meta["lfr"].get("command"),
        "reference": score.reference,
        "suggestion": suggestion,
        "measured_at": estimates,
        "wall_s": round(time.perf_counter() - t0, 1),
        "curve": curve,
        "losses": {e: {m: estimate_loss(curve, estimates[e], m) for m in metrics} for e in ESTIMATORS},
        "target": TARGET,
    }
    out["meets_target"] = {e: all(v["loss"] <= TARGET for v in out["losses"][e].values()) for e in ESTIMATORS}
    if args.store is not None:
        store(out, args.store, metrics)
    dest = ROOT / "bench" / "results" / f"suggest_alpha_{out['bundle']}"
    dest.with_suffix(".json").write_text(json.dumps(out, indent=1) + "\n")
    dest.with_suffix(".md").write_text(markdown(out, metrics))
    plot(out, metrics, dest.with_suffix(".png"))
    for e in ESTIMATORS:
        losses = ", ".join(f"{m} {out['losses'][e][m]['loss']:+.1%}" for m in metrics)
        print(f"{out['bundle']}: {e} α = {estimates[e]:g}: {losses} against the grid's best")


def store(out: dict, bundle: Path, metrics) -> None:
    """Add the check of the suggested estimate to BUNDLE/alpha_suggestion.json (same latents: same
    estimates, else refused)."""
    path = bundle / SUGGESTION_FILE
    stored = json.loads(path.read_text()) if path.is_file() else None
    if stored is None or stored["estimates"] != out["suggestion"]["estimates"]:
        raise SystemExit(
            f"{path}: missing or from other latents: run `bfr suggest-alpha --bundle {bundle}` first"
        )
    e = stored["suggested"]
    stored["validation"] = {
        "command": out["command"],
        "lfr": out["lfr"],
        "reference": out["reference"],
        "n": out["curve"]["n"],
        "seeds": out["curve"]["seeds"],
        "alphas": out["curve"]["alphas"],
        "measured_at": out["measured_at"][e],
        "losses": out["losses"][e],
        "base": {m: base_mean(out["curve"], m) for m in metrics},  # the same draws with no LFR
    }
    path.write_text(json.dumps(stored, indent=1) + "\n")
    print(f"stored the check in {path}")


def base_mean(curve: dict, metric: str) -> float:
    """The base's mean score over the curve's seeds (no LFR, the same prior draws)."""
    return round(seed_mean(curve, "base", metric), 3)


def markdown(out: dict, metrics) -> str:
    curve = out["curve"]
    lines = [
        f"# α from the latents: {out['bundle']}",
        "",
        f"`{out['command']}` — LFR `{out['lfr']}`; scored against the {out['reference']}, n = {curve['n']}, "
        f"seeds {', '.join(map(str, curve['seeds']))} ({out['wall_s']:.0f} s).",
        "",
        "| α | " + " | ".join(metrics) + " |",
        "|---|" + "---|" * len(metrics),
    ]
    marks = {}
    for e, a in out["measured_at"].items():
        marks.setdefault(f"{a:g}", []).append(e.replace("_", " "))
    for key in ["base"] + [f"{a:g}" for a in curve["alphas"]]:
        cells = [mean_sd([r[m] for r in curve["scores"][key]]) for m in metrics]
        label = key + (f" ← {', '.join(marks[key])}" if key in marks else "")
        lines.append(f"| {label} | " + " | ".join(cells) + " |")
    lines += ["", "| estimate | α̂ | " + " | ".join(f"{m}: best α, loss" for m in metrics) + " | ≤ 5%? |"]
    lines.append("|---|---|" + "---|" * (len(metrics) + 1))
    for e, a in out["measured_at"].items():
        cells = [
            f"{out['losses'][e][m]['best_alpha']:g}, {out['losses'][e][m]['loss']:+.1%}" for m in metrics
        ]
        ok = "yes" if out["meets_target"][e] else "no"
        lines.append(f"| {e.replace('_', ' ')} | {a:g} | " + " | ".join(cells) + f" | {ok} |")
    stats = out["suggestion"]["latent_stats"]
    lines += [
        "",
        "Latent statistics (first 1,000 inverted latents): "
        + ", ".join(f"{k} {v:g}" for k, v in stats.items()),
    ]
    return "\n".join(lines) + "\n"


def plot(out: dict, metrics, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    curve = out["curve"]
    fig, ax = plt.subplots(figsize=(6.5, 4))
    for m, colour in zip(metrics, ("C0", "C1")):
        means = [sum(r[m] for r in curve["scores"][f"{a:g}"]) / len(curve["seeds"]) for a in curve["alphas"]]
        ax.plot(curve["alphas"], means, "-o", color=colour, label=f"LFR {m}")
        base = sum(r[m] for r in curve["scores"]["base"]) / len(curve["seeds"])
        ax.axhline(base, color=colour, ls=":", lw=1, label=f"base {m}")
    for (e, a), style in zip(out["measured_at"].items(), ("--", "-.")):
        ax.axvline(a, color="grey", ls=style, lw=1, label=f"{e.replace('_', ' ')} α̂ = {a:g}")
    ax.set_xlabel("α (the LFR's mixing coefficient)")
    ax.set_ylabel("FID vs held-out training images")
    ax.set_title(f"{out['bundle']}: the α-conditioned LFR at one RK4 step")
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


if __name__ == "__main__":
    main()
