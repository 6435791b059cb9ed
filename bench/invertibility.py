"""How much non-invertibility does the LFR survive? Its gain against the inversion's round-trip error.

    python -m bench.invertibility [--bundle checkpoints/digits] [--n 1000] [--seeds 0 1 2]

The LFR learns N(0, I) → z_b = G⁻¹(x); it assumes the inversion is exact. Here the latents it trains on are
made worse on purpose, and for each an LFR is trained exactly as the shipped one (its recorded command, on
these latents instead), in a working copy of the bundle under runs/invertibility/ (the shipped bundle is
not touched):

- coarser inversion: z = G⁻¹(x) by Euler with 1, 2, 4 and RK4 with 4, 8 network evaluations (the shipped
  latents: RK4, 20);
- noisy latents: the shipped z_b + σ·ε for σ = 0.1, 0.3, 0.6, 1.0;
- a lossy base: the base itself sampled with 2 Euler steps (a map that the Euler-2 inversion does not undo),
  its LFR trained on the Euler-2 latents, its gain measured against that base's own samples.

Each point's x-axis is the round trip ‖G(z) − x‖ (mean absolute error per pixel on 500 training images, G at
the setting the samples are drawn with); its y-axis the LFR's gain in FID and in the independent FID2 (a
second classifier, trained once in the working copy when the bundle has none) over seeds, against the base
on the same prior draws, scored on held-out training images (bfr_core.eval.validation). A point **helps** /
**hurts** when both metrics' seed means are below / above the base's by more than the seed range
(bench.dfr_augment.regime). The failure point is the smallest round-trip error from which on the LFR no longer
helps, per kind of damage (bfr_core.views.invertibility.failure_points). Writes
bench/results/invertibility_BUNDLE.{json,md,png}; ``--store`` then copies the curve into the bundle, where the
app's Open questions tab draws it.
"""

from __future__ import annotations

import argparse
import json
import re
import shlex
import shutil
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import torch

from bench.dfr_augment import regime, seed_stats
from bfr_core.bundle import Bundle
from bfr_core.cli.main import main as bfr
from bfr_core.eval.validation import validation_scorer
from bfr_core.infra.checkpoint import load_tensors, save_tensors
from bfr_core.infra.data import load_dataset
from bfr_core.pipeline import Pipeline, Settings
from bfr_core.views.invertibility import INVERTIBILITY_FILE, failure_points

ROOT = Path(__file__).resolve().parent.parent
METRICS = ("fid", "fid2")
ROUND_TRIP_IMAGES = 500


@dataclass(frozen=True)
class Point:
    """One way of making the latents worse: how they are made and how the base samples."""

    kind: str  # "inversion", "noise" or "lossy base"
    label: str
    solver: str = "rk4"  # the inversion's
    nfe: int = 20
    sigma: float = 0.0  # noise added to the shipped latents
    base_solver: str | None = None  # None: the bundle's default sampling
    base_nfe: int | None = None

    @property
    def name(self) -> str:
        """The label as a model name (letters, digits, _): "euler×2" → "euler_2", "σ=0.3" → "noise_0p3"."""
        return re.sub(r"[^a-z0-9]+", "_", self.label.replace("σ=", "noise ").replace(".", "p").lower()).strip(
            "_"
        )


POINTS = (
    Point("inversion", "rk4×20 (as shipped)"),
    Point("inversion", "rk4×8", nfe=8),
    Point("inversion", "rk4×4", nfe=4),
    Point("inversion", "euler×4", solver="euler", nfe=4),
    Point("inversion", "euler×2", solver="euler", nfe=2),
    Point("inversion", "euler×1", solver="euler", nfe=1),
    *(Point("noise", f"σ={s:g}", sigma=s) for s in (0.1, 0.3, 0.6, 1.0)),
    Point("lossy base", "base euler×2", solver="euler", nfe=2, base_solver="euler", base_nfe=2),
)


def run_cli(*argv: str) -> None:
    if bfr(["--quiet", *argv]) != 0:
        raise SystemExit(f"failed: bfr {shlex.join(argv)}")


def working_copy(bundle: Path) -> Path:
    """runs/invertibility/NAME: the bundle's files (ablation/ left out), with a classifier2 if it has none."""
    work = ROOT / "runs" / "invertibility" / bundle.name
    if not work.exists():
        shutil.copytree(bundle, work, ignore=shutil.ignore_patterns("ablation", "capacity"))
    if not (work / "classifier2.safetensors").exists():
        run_cli("train-classifier", "--bundle", str(work), "--name", "classifier2", "--arch", "mlp",
                "--noise", "0.3", "--seed", "777")  # fmt: skip
    return work


def latents_for(work: Path, p: Point, shipped_lfr: dict) -> tuple[str, str]:
    """Write the point's latents and train its LFR (skipped when already there); returns (latents, lfr)
    file names under the working copy."""
    lat, lfr = f"ablation/latents_{p.name}", f"ablation/lfr_{p.name}"
    if p.sigma:
        tensors, meta = load_tensors(work / "latents.safetensors")
        g = torch.Generator().manual_seed(round(p.sigma * 1000))
        z = tensors["z"].float()
        tensors["z"] = (z + p.sigma * torch.randn(z.shape, generator=g)).half()
        meta |= {
            "noise_sigma": p.sigma,
            "command": f"{meta['command']} + {p.sigma:g}·ε (bench.invertibility)",
        }
        save_tensors(tensors, meta, work / f"{lat}.safetensors")
    elif not (work / f"{lat}.safetensors").exists():
        run_cli("invert", "--bundle", str(work), "--name", lat, "--solver", p.solver, "--nfe", str(p.nfe))
    if not (work / f"{lfr}.safetensors").exists():
        argv = shlex.split(shipped_lfr["command"])
        argv = argv[argv.index("train-lfr") :]
        argv[argv.index("--bundle") + 1] = str(work)
        run_cli(*argv, "--latents", lat, "--name", lfr)
    return lat, lfr


@torch.no_grad()
def measure_point(work: Path, p: Point, lat: str, lfr: str, n: int, seeds, score, ds) -> dict:
    """The point's round trip ‖G(z) − x‖ and its base / LFR scores per seed."""
    pipe = Pipeline(Bundle(work).with_model("lfr", work / f"{lfr}.safetensors"))
    s = pipe.resolve(Settings(mode="lfr", base_solver=p.base_solver, base_nfe=p.base_nfe))
    tensors, _ = load_tensors(work / f"{lat}.safetensors")
    k = ROUND_TRIP_IMAGES
    x_back = pipe.generate(tensors["z"][:k].float(), tensors["y"][:k], s).x
    round_trip = float((x_back - ds.x_train[:k]).abs().mean())
    base, refined = [], []
    for seed in seeds:
        r = pipe.run(n, seed, s)
        base.append(score(r.base))
        refined.append(score(r.x_from_refined))
    b = {m: seed_stats([x[m] for x in base]) for m in METRICS}
    f = {m: seed_stats([x[m] for x in refined]) for m in METRICS}
    return {
        "kind": p.kind,
        "label": p.label,
        "round_trip_mae": round(round_trip, 5),
        "base": b,
        "lfr": f,
        "gain_pct": {m: round(100 * (b[m]["mean"] - f[m]["mean"]) / b[m]["mean"], 1) for m in METRICS},
        "regime": regime(f, b),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--bundle", type=Path, default=ROOT / "checkpoints" / "digits")
    ap.add_argument("--n", type=int, default=1000)
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    ap.add_argument(
        "--store",
        action="store_true",
        help=f"measure nothing: copy the committed results into BUNDLE/{INVERTIBILITY_FILE} for the app",
    )
    args = ap.parse_args()
    results = ROOT / "bench" / "results" / f"invertibility_{args.bundle.name}.json"
    if args.store:
        out = json.loads(results.read_text())
        out["stored_by"] = shlex.join(["python", "-m", "bench.invertibility", *sys.argv[1:]])
        (args.bundle / INVERTIBILITY_FILE).write_text(json.dumps(out, indent=1) + "\n")
        print(f"wrote {args.bundle / INVERTIBILITY_FILE}")
        return
    t0 = time.perf_counter()
    work = working_copy(args.bundle)
    shipped_lfr = Bundle(args.bundle).meta["lfr"]  # its recorded command is every point's recipe
    copy = Bundle(work)
    score = validation_scorer(copy)
    ds = load_dataset(copy.dataset)
    points = []
    for p in POINTS:
        lat, lfr = latents_for(work, p, shipped_lfr)
        points.append(measure_point(work, p, lat, lfr, args.n, args.seeds, score, ds))
        print(json.dumps({k: points[-1][k] for k in ("label", "round_trip_mae", "gain_pct", "regime")}))
    out = {
        "command": shlex.join(["python", "-m", "bench.invertibility", *sys.argv[1:]]),
        "bundle": args.bundle.name,
        "lfr_command": shipped_lfr["command"],
        "reference": score.reference,
        "n": args.n,
        "seeds": args.seeds,
        "wall_s": round(time.perf_counter() - t0, 1),
        "points": points,
        "failure_points": {k: None if p is None else p["label"] for k, p in failure_points(points).items()},
    }
    dest = results
    dest.write_text(json.dumps(out, indent=1) + "\n")
    dest.with_suffix(".md").write_text(markdown(out))
    plot(out, dest.with_suffix(".png"))
    print(f"wrote {dest} (.md, .png); failure points: {out['failure_points']}")


def markdown(out: dict) -> str:
    lines = [
        f"# LFR gain against the inversion's round-trip error: {out['bundle']}",
        "",
        f"`{out['command']}` — each LFR trained as `{out['lfr_command']}` on the point's latents; "
        f"{out['n']} samples × seeds {out['seeds']}, FID / FID2 against the {out['reference']} "
        f"({out['wall_s']} s). Where the LFR stops helping for good, per kind of damage: "
        + "; ".join(
            f"{k}: **{v or 'never (helps at the largest error measured)'}**"
            for k, v in out["failure_points"].items()
        )
        + ".",
        "",
        "| latents | round trip MAE | base FID / FID2 | LFR FID / FID2 | gain FID / FID2 | regime |",
        "|---|---|---|---|---|---|",
    ]
    for p in sorted(out["points"], key=lambda p: p["round_trip_mae"]):
        cells = [" / ".join(f"{p[r][m]['mean']:.2f}" for m in METRICS) for r in ("base", "lfr")]
        gain = " / ".join(f"{p['gain_pct'][m]:+.1f}%" for m in METRICS)
        lines.append(
            f"| {p['kind']}: {p['label']} | {p['round_trip_mae']:.4f} | {cells[0]} | {cells[1]} | {gain} | "
            f"{p['regime']} |"
        )
    return "\n".join(lines) + "\n"


def plot(out: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6.5, 4))
    kinds = dict.fromkeys(p["kind"] for p in out["points"])
    for colour, kind in zip(("C0", "C1", "C3"), kinds):
        pts = sorted((p for p in out["points"] if p["kind"] == kind), key=lambda p: p["round_trip_mae"])
        for m, style in zip(METRICS, ("-o", "--s")):
            xs, ys = [p["round_trip_mae"] for p in pts], [p["gain_pct"][m] for p in pts]
            ax.plot(xs, ys, style, color=colour, label=f"{kind} · {m}")
    ax.axhline(0, color="grey", lw=0.8)
    ax.set_xscale("log")
    ax.set_xlabel("round trip ‖G(z) − x‖ (MAE per pixel)")
    ax.set_ylabel("LFR gain over the base (%)")
    ax.set_title(f"{out['bundle']}: LFR gain vs invertibility")
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


if __name__ == "__main__":
    main()
