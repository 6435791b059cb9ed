"""The LFR capacity curve on one bundle: FID (both extractors) against LFR width and training steps.

    python -m bench.capacity --bundle checkpoints/mnist --candidate lfr.safetensors \
        --candidate capacity/lfr_c16_step2000.safetensors ...

Each candidate (a file of the bundle, e.g. a ``train-lfr --snapshot-at`` snapshot) is scored by
``bench/select_refiner.py`` on held-out *training* images (never the test split), at its own default
solver (one RK4 step) and α. The table adds what each model cost: width, parameters, steps, wall time
and the number of inverted latents it learned from.
Writes bench/results/capacity_<bundle>[_<tag>].{json,md,png}.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from bench import select_refiner
from bfr_core.infra.checkpoint import load_model
from bfr_core.bundle import Bundle

ROOT = Path(__file__).resolve().parent.parent


def describe(path: Path, bundle_latents: int) -> dict:
    """What a candidate is and what it cost, from its own metadata."""
    model, meta = load_model(path)
    return {
        "channels": meta["net"].get("channels"),
        "parameters": sum(p.numel() for p in model.parameters()),
        "steps": meta["steps"],
        "training_alpha": (
            f"input, ≤ {meta['alpha_max']:g}" if meta.get("alpha_max") is not None else meta["alpha"]
        ),
        "latents": meta.get("latents", bundle_latents),
        "train_wall_s": meta.get("wall_s"),
        "device": meta.get("device", "cpu"),  # files trained before it was recorded: all on the CPU
    }


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--bundle", type=Path, required=True)
    ap.add_argument("--candidate", action="append", required=True, help="an LFR file of the bundle (repeat)")
    ap.add_argument("--n", type=int, default=2000)
    ap.add_argument(
        "--tag", default="", help="a suffix for the result files, to keep several runs side by side"
    )
    args = ap.parse_args(argv)
    out = ROOT / "bench" / "results" / f"capacity_{args.bundle.name}{'_' + args.tag if args.tag else ''}"
    paths = [args.bundle / c for c in args.candidate]
    select_argv = [
        "--bundle",
        str(args.bundle),
        "--role",
        "lfr",
        "--n",
        str(args.n),
        "--out",
        str(out) + ".json",
    ]
    select_refiner.main(select_argv + [a for p in paths for a in ("--candidate", str(p))])
    result = json.loads(out.with_suffix(".json").read_text())
    result["command"] = "python -m bench.capacity " + " ".join(sys.argv[1:] if argv is None else argv)
    rows, latents = [], Bundle(args.bundle).meta["latents"]["n"]
    for p in paths:
        row = {
            "file": str(p.relative_to(args.bundle)),
            **describe(p, latents),
            **result["candidates"][str(p)],
        }
        row.update({f"{m}_cut": 1 - row[m] / result[f"base_{m}"] for m in ("fid", "fid2") if m in row})
        rows.append(row)
    result["rows"] = rows
    out.with_suffix(".json").write_text(json.dumps(result, indent=1) + "\n")
    lines = [
        f"Command: `{result['command']}` — FID on the last 10,000 *training* images (held out from "
        f"selection's point of view; the test split is not used), n = {result['n']}, seed {result['seed']}. "
        f"Base: FID {result['base_fid']:.3f}"
        + (f", FID2 {result['base_fid2']:.3f}" if "base_fid2" in result else ""),
        "",
        "| LFR file | width | parameters | steps | α in training | latents | trained on | train wall (s) "
        "| FID (cut) | FID2 (cut) |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        fid2 = f"{r['fid2']:.3f} ({r['fid2_cut']:.0%})" if "fid2" in r else "n/a"
        lines.append(
            f"| {r['file']} | {r['channels']} | {r['parameters']:,} | {r['steps']} | {r['training_alpha']} "
            f"| {r['latents']:,} | {r['device']} | {r['train_wall_s']} | {r['fid']:.3f} ({r['fid_cut']:.0%}) "
            f"| {fid2} |"
        )
    out.with_suffix(".md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))
    plot(rows, result, out.with_suffix(".png"))


def plot(rows: list[dict], result: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(9, 3.5), sharex=True)
    for ax, m in zip(axes, ("fid", "fid2")):
        if f"base_{m}" not in result:
            continue
        fixed = [r for r in rows if isinstance(r["training_alpha"], float)]
        for width, latents in sorted({(r["channels"], r["latents"]) for r in fixed}):
            pts = sorted(
                (r["steps"], r[m]) for r in fixed if (r["channels"], r["latents"]) == (width, latents)
            )
            ax.plot(*zip(*pts), "o-", label=f"fixed α, {width} ch, {latents:,} latents")
        ax.axhline(result[f"base_{m}"], color="grey", ls="--", label="base")
        ax.set_xlabel("LFR training steps")
        ax.set_ylabel(f"{m.upper()} (held-out training images)")
        ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)


if __name__ == "__main__":
    main()
