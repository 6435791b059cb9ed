"""DFR augmentation strength, from none to strong: is there a too-weak and a too-strong regime?

    python -m bench.dfr_augment [--bundle checkpoints/mnist] [--n 2000] [--seeds 7 8]

The paper trains its DFR on generated sources blurred or noised a little, and predicts that too little
augmentation leaves the refiner unstable and too much makes it learn the augmentation instead of the bias.
The sweep: DFRs trained alike (600 steps, pool 2,048, OT within the batch, 16 channels: the ``ablation-*``
stages of the mnist recipe in ``bfr_core/recipes.py``) that differ only in their augmentation — a blur of
σ ~ U(lo, hi) px on 30% of the sources (none, the paper's 0.01–0.02, 0.5–1, 1–2, 2–4; a 5-tap kernel, so the
strongest is close to a 5-px box) or N(0, std²) noise on 30% (0.01, 0.1, 0.3). Each is scored as
``bench/select_refiner.py`` scores a candidate — FID under the bundle's classifier and FID2 under its
independent classifier2, against the last 10,000 *training* images (never the test split), n samples a seed —
over several seeds. A point helps (hurts) when both metrics' seed means are below (above) the base's by more
than the seed-to-seed range. Writes bench/results/dfr_augment_<bundle>.{json,md,png}.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

from bench import select_refiner

ROOT = Path(__file__).resolve().parent.parent
METRICS = ("fid", "fid2")


@dataclass(frozen=True)
class Point:
    """One DFR of the sweep: its augmentation kind, strength label, strength value and file."""

    kind: str  # "blur" or "noise"; "none" sits at strength 0 of both
    label: str
    strength: float  # blur: the middle of σ's range in px; noise: the std
    file: str  # under the bundle's ablation/ folder


SWEEP = (
    Point("none", "none", 0.0, "dfr_none"),
    Point("blur", "σ 0.01–0.02 px (paper)", 0.015, "dfr_blur-paper"),
    Point("blur", "σ 0.5–1 px", 0.75, "dfr_blur-strong"),
    Point("blur", "σ 1–2 px", 1.5, "dfr_blur-1to2"),
    Point("blur", "σ 2–4 px", 3.0, "dfr_blur-2to4"),
    Point("noise", "std 0.01", 0.01, "dfr_noise"),
    Point("noise", "std 0.1", 0.1, "dfr_noise-10"),
    Point("noise", "std 0.3", 0.3, "dfr_noise-30"),
)


def seed_stats(values: list[float]) -> dict:
    """Mean and range (max − min) over seeds."""
    return {"mean": sum(values) / len(values), "range": max(values) - min(values), "per_seed": values}


def regime(point: dict, base: dict) -> str:
    """'helps' / 'hurts' when both metrics' means are below / above the base's by more than the larger of
    the two seed ranges; otherwise 'within the spread'."""
    sides = []
    for m in METRICS:
        gap = point[m]["mean"] - base[m]["mean"]
        spread = max(point[m]["range"], base[m]["range"])
        sides.append(0 if abs(gap) <= spread else (1 if gap > 0 else -1))
    if all(s < 0 for s in sides):
        return "helps"
    if all(s > 0 for s in sides):
        return "hurts"
    return "within the spread"


def aggregate(per_seed: dict[int, dict], bundle: Path) -> dict:
    """The per-seed select_refiner outputs as one record per sweep point, with regimes and the best point."""
    seeds = sorted(per_seed)
    base = {m: seed_stats([per_seed[s][f"base_{m}"] for s in seeds]) for m in METRICS}
    points = []
    for p in SWEEP:
        key = str(bundle / "ablation" / f"{p.file}.safetensors")
        got = {m: seed_stats([per_seed[s]["candidates"][key][m] for s in seeds]) for m in METRICS}
        points.append({"kind": p.kind, "label": p.label, "strength": p.strength, "file": key, **got})
    for p in points:
        p["regime"] = regime(p, base)
    best = min(points, key=lambda p: sum(p[m]["mean"] / base[m]["mean"] for m in METRICS))
    return {"seeds": seeds, "base": base, "points": points, "best": best["label"]}


def verdict(result: dict) -> str:
    """Too weak: the weakest points of each kind that do not help; too strong: points stronger than the best
    that are worse than it on both metrics beyond the spread."""
    best = next(p for p in result["points"] if p["label"] == result["best"])
    lines = [f"best: {best['kind']} {best['label']} ({best['regime']} against the base)"]
    for kind in ("blur", "noise"):
        axis = sorted(
            (p for p in result["points"] if p["kind"] in (kind, "none")), key=lambda p: p["strength"]
        )
        weak = [p["label"] for p in axis if p["regime"] != "helps" and p["strength"] < best["strength"]]
        strong = [
            p["label"]
            for p in axis
            if p["strength"] > best["strength"]
            and p is not best
            and all(p[m]["mean"] - best[m]["mean"] > max(p[m]["range"], best[m]["range"]) for m in METRICS)
        ]
        if kind != best["kind"]:
            helps = [p["label"] for p in axis if p["regime"] == "helps"]
            lines.append(f"{kind}: points that help: {', '.join(helps) or 'none'}")
            continue
        lines.append(f"{kind}: too weak (do not help): {', '.join(weak) or 'none'}")
        lines.append(
            f"{kind}: too strong (worse than the best on both metrics): {', '.join(strong) or 'none'}"
        )
    return "; ".join(lines)


def markdown(result: dict) -> str:
    b = result["base"]
    rows = [
        f"Command: `{result['command']}` — FID / FID2 against the last 10,000 training images, n = "
        f"{result['n']:,} a seed, seeds {result['seeds']}; mean (range over seeds)",
        "",
        "| augmentation (30% of sources) | FID | FID2 | vs base (FID / FID2) | regime |",
        "|---|---|---|---|---|",
        f"| base (no DFR) | {b['fid']['mean']:.2f} ({b['fid']['range']:.2f}) | "
        f"{b['fid2']['mean']:.2f} ({b['fid2']['range']:.2f}) | | |",
    ]
    for p in result["points"]:
        rel = " / ".join(f"{p[m]['mean'] / b[m]['mean'] - 1:+.0%}" for m in METRICS)
        rows.append(
            f"| {p['kind'] if p['kind'] != 'none' else ''} {p['label']} | {p['fid']['mean']:.2f} "
            f"({p['fid']['range']:.2f}) | {p['fid2']['mean']:.2f} ({p['fid2']['range']:.2f}) | {rel} | "
            f"{p['regime']} |"
        )
    return "\n".join([*rows, "", f"Verdict: {result['verdict']}"]) + "\n"


def plot(result: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    b = result["base"]
    fig, axes = plt.subplots(1, 2, figsize=(10, 3.8), sharey=True)
    for ax, kind in zip(axes, ("blur", "noise")):
        axis = sorted(
            (p for p in result["points"] if p["kind"] in (kind, "none")), key=lambda p: p["strength"]
        )
        xs = range(len(axis))
        for m, style in zip(METRICS, ("o-", "s--")):
            ys = [100 * (p[m]["mean"] / b[m]["mean"] - 1) for p in axis]
            err = [100 * p[m]["range"] / 2 / b[m]["mean"] for p in axis]
            ax.errorbar(xs, ys, yerr=err, fmt=style, capsize=3, label=m.upper())
        ax.axhline(0, color="grey", lw=1, ls=":")
        ax.set_xticks(list(xs), [p["label"].replace(" (paper)", "\n(paper)") for p in axis], fontsize=8)
        ax.set_title(f"DFR trained with {kind} on 30% of sources")
    axes[0].set_ylabel("change against the base (%)\n(lower is better; bars: seed range)")
    axes[0].legend()
    fig.tight_layout()
    fig.savefig(path, dpi=110)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--bundle", type=Path, default=Path("checkpoints/mnist"))
    ap.add_argument("--n", type=int, default=2000)
    ap.add_argument("--seeds", type=int, nargs="+", default=[7, 8])
    ap.add_argument("--out-dir", type=Path, default=ROOT / "bench" / "results")
    args = ap.parse_args(argv)
    missing = [p.file for p in SWEEP if not (args.bundle / "ablation" / f"{p.file}.safetensors").exists()]
    if missing:
        print(f"error: {args.bundle}/ablation lacks {', '.join(missing)} (the recipe's ablation stages)")
        return 2
    per_seed = {}
    with tempfile.TemporaryDirectory() as tmp:
        for seed in args.seeds:
            out = Path(tmp) / f"seed{seed}.json"
            cands = [
                a
                for p in SWEEP
                for a in ("--candidate", str(args.bundle / "ablation" / f"{p.file}.safetensors"))
            ]
            select_refiner.main(
                ["--bundle", str(args.bundle), "--role", "dfr", "--n", str(args.n), "--seed", str(seed)]
                + cands
                + ["--out", str(out)]
            )
            per_seed[seed] = json.loads(out.read_text())
    result = {
        "command": " ".join(["python -m bench.dfr_augment", *(sys.argv[1:] if argv is None else argv)]),
        "n": args.n,
        **aggregate(per_seed, args.bundle),
    }
    result["verdict"] = verdict(result)
    stem = args.out_dir / f"dfr_augment_{args.bundle.name}"
    stem.with_suffix(".json").write_text(json.dumps(result, indent=1) + "\n")
    stem.with_suffix(".md").write_text(markdown(result))
    plot(result, stem.with_suffix(".png"))
    print(markdown(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
