"""Rendering of bench/report.py's result: the Markdown table and the figures (NFE, α, sample grids)."""

from __future__ import annotations

from pathlib import Path

from bfr_core.infra.images import image_grid


def fmt(value, spec: str) -> str:
    return "n/a" if value is None else format(value, spec)


def markdown(result: dict) -> str:
    cols = ("fid", "kid", "precision", "recall", "density", "coverage", "memorisation_ratio", "accuracy")
    lines = [
        f"Command: `{result['command']}` — n = {result['n']} samples (seed {result['seed']}) vs the "
        f"{result['test_images']} test images, classifier-feature metrics (relative: not Inception FID).",
        "",
    ]
    for group, title in (
        ("methods", "Methods and noise-injection baselines"),
        ("alpha", "LFR α sweep (one net, α is an input)"),
        ("ablation", "DFR augmentation ablation (each variant trained for the same steps)"),
        (
            "transfer",
            "Cross-model transfer: refiners of the final base on the earlier base snapshot, not retrained",
        ),
        ("reference", "Floor: real training images"),
    ):
        lines += [
            f"### {title}",
            "",
            "| row | solver (per sample) | NFE (extra) | " + " | ".join(cols) + " | wall s |",
            "|" + "---|" * (len(cols) + 4),
        ]
        for name, row in result["rows"].items():
            if row["group"] == group:
                vals = " | ".join(f"{row[c]:.4f}" if c == "kid" else f"{row[c]:.3f}" for c in cols)
                lines.append(
                    f"| {name} | {row['solver']} | {row['nfe']} (+{row['extra_nfe']}) | "
                    f"{vals} | {row['wall_s']} |"
                )
        lines.append("")
    t = result["targets"]
    bfr, sde = t["bfr_fid_at_extra_nfe"] or {}, t["best_sdedit_fid_at_extra_nfe"] or {}
    lines += [
        "### Targets",
        "",
        f"- LFR rk4 x1 cuts FID by {fmt(t['lfr_rk4x1_fid_cut'], '.1%')} (target ≥ 50%); "
        f"DFR rk4 x1 by {fmt(t['dfr_rk4x1_fid_cut'], '.1%')} (≥ 30%).",
        f"- Reflow LFR at one Euler NFE keeps {fmt(t['reflow_share_of_4nfe_gain'], '.1%')} "
        "of the 4-NFE gain (target ≥ 80%).",
        f"- Over-refinement: LFR euler x10 minus euler x1 = {fmt(t['lfr_euler10_vs_euler1'], '+.3f')} FID; "
        f"minus rk4 x1 = {fmt(t['lfr_euler10_vs_rk4x1'], '+.3f')}.",
        "- Best FID at equal extra NFE, BFR vs SDEdit: "
        + ", ".join(f"+{k}: {fmt(bfr.get(k), '.3f')} vs {fmt(sde.get(k), '.3f')}" for k in (1, 4, 10))
        + ".",
        "- Yardstick, no training and no extra NFE: the prior rescaled to the latents' RMS cuts FID by "
        f"{fmt(t['rescaled_prior_fid_cut'], '.1%')}.",
        f"- Transfer to the earlier base: LFR cuts its FID by {fmt(t['transfer_lfr_cut'], '.1%')}, "
        f"DFR by {fmt(t['transfer_dfr_cut'], '.1%')}.",
        "",
    ]
    if result.get("missing_rows"):
        lines += [
            "Rows not computed, their model files are not in the bundle: "
            + "; ".join(f"{row} ({', '.join(files)})" for row, files in result["missing_rows"].items()),
            "",
        ]
    if result.get("build_times_s"):
        lines += [
            "### Wall time of each build stage on this machine (s)",
            "",
            "| " + " | ".join(result["build_times_s"]) + " |",
            "|" + "---|" * len(result["build_times_s"]),
            "| " + " | ".join(str(v) for v in result["build_times_s"].values()) + " |",
            "",
        ]
    return "\n".join(lines)


def plots(result: dict, stem: Path, grids: dict) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    r = result["rows"]
    fig, ax = plt.subplots(figsize=(6.4, 4.2))
    for prefix, label in (("LFR euler x", "LFR, Euler"), ("DFR euler x", "DFR, Euler")):
        pts = sorted((row["extra_nfe"], row["fid"]) for name, row in r.items() if name.startswith(prefix))
        if pts:
            ax.plot(*zip(*pts), "o-", label=label)
    for name, marker in (
        ("LFR rk4 x1 (paper)", "s"),
        ("DFR rk4 x1 (paper)", "D"),
        ("LFR reflow euler x1 (ours)", "*"),
        ("LFR rk4 x1 -> DFR rk4 x1", "P"),
    ):
        if name in r:
            ax.plot(r[name]["extra_nfe"], r[name]["fid"], marker, markersize=9, label=name)
    sd = [(row["extra_nfe"], row["fid"]) for name, row in r.items() if name.startswith("SDEdit")] or [
        (None, None)
    ]
    ax.plot(*zip(*sd), "x", color="gray", markersize=8, label="SDEdit (noise injection)")
    ax.axhline(r["base"]["fid"], color="k", ls="--", lw=1, label="base")
    ax.axhline(r["real training images"]["fid"], color="g", ls=":", lw=1, label="real-data floor")
    ax.set(
        xlabel="extra NFE per sample",
        ylabel="classifier FID vs test (lower is better)",
        xscale="log",
        yscale="log",
    )
    ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(f"{stem}_nfe.png", dpi=120)
    fig, ax = plt.subplots(figsize=(5, 3.4))
    pts = [(row["alpha"], row["fid"]) for row in r.values() if row["group"] == "alpha"] or [(None, None)]
    ax.plot(*zip(*pts), "o-", label="LFR rk4 x1")
    ax.axhline(r["base"]["fid"], color="k", ls="--", lw=1, label="base")
    ax.set(xlabel="α (mixing coefficient)", ylabel="classifier FID vs test")
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(f"{stem}_alpha.png", dpi=120)
    plt.close("all")
    cols = [image_grid(x, ncol=10, scale=2) for x in grids.values()]
    width = sum(c.width for c in cols) + 10 * (len(cols) - 1)
    from PIL import Image

    canvas = Image.new("L", (width, cols[0].height), 255)
    for i, c in enumerate(cols):
        canvas.paste(c, (i * (c.width + 10), 0))
    canvas.save(f"{stem}_samples.png")
